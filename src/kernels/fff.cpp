#include "kernels/fff.h"

#include <algorithm>
#include <bit>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/row_ops.h"
#include "kernels/vec_math.h"

namespace fw {

namespace {

// Kernels keep a path's rows on the stack and node numbers in 32 bits.
void check_shape(const TreeShape& s) {
  FW_CHECK(s.K >= 1 && s.D >= 0 && s.D <= 24 && s.C >= 1, "fff: tree shape K=", s.K, " D=", s.D, " C=", s.C,
           " is outside K >= 1, 0 <= D <= 24, C >= 1");
}

// Below this many tokens every token walks alone (one per thread); from it on, the
// batched form. Measured with flopwise bench fff --batch N at d=768, D=11: 0.57
// µs/token walking alone at 32 tokens, 0.60 batched at 64, 0.55 at 128.
constexpr int64_t kBatchedFrom = 64;

// Tokens walked level by level together: 32 tokens' vectors (96 KiB at d=768) stay
// in L2 while the tree's top rows are reused across them.
constexpr int64_t kTile = 32;

// The split level S: levels [0, S) run over the tokens in their own order, levels
// [S, D] over the tokens bucketed by the node they reached at level S, one subtree at
// a time, so each subtree's rows are fetched once per bucket and not once per token.
// S is the deepest level whose rows above it fit in 256 KiB (per w_in), so the top of
// the tree stays in L2 during the first phase.
int64_t split_level(const TreeShape& s) {
  int64_t S = 1;
  while (S < s.path() && ((int64_t(2) << S) - 1) * s.C * int64_t(sizeof(float)) <= 256 * 1024) S++;
  return S;
}

template <typename W>  // float, or bf16 in bf16 mode
struct Tree {             // one tree's weights
  const W* w_in;
  const float* b;
  const W* w_out;
};

template <typename W>
struct Forest {  // the K trees' weights, tree after tree: w_in, w_out (K·N, C), b (K·N)
  const W* w_in;
  const float* b;
  const W* w_out;
  int64_t N, C;
  Tree<W> tree(int64_t k) const { return {w_in + k * N * C, b + k * N, w_out + k * N * C}; }
};

// A buffer kept across calls by the thread that calls (grown, never shrunk, not
// cleared): a training step's kernels would otherwise allocate and zero megabytes per call.
template <typename T>
T* scratch(std::vector<T>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}

// One visit: node nd's λ (its dot product plus its bias) and the node recorded at
// visit v, and the child the token goes to next (right if λ > 0).
inline int32_t visit(float* lam, float* path, int64_t v, int64_t nd, float dot, float bias) {
  lam[v] = dot + bias;
  path[v] = float(nd);
  return int32_t(2 * nd + (lam[v] > 0 ? 2 : 1));
}

// Tree node at `level` above leaf `leaf` (numbered 0..2^D − 1 across the last level).
inline int64_t ancestor(int64_t leaf, int64_t level, int64_t D) { return (int64_t(1) << level) - 1 + (leaf >> (D - level)); }
// The first level at which leaves a and b have different ancestors (D + 1 if a == b).
inline int64_t first_split_level(int64_t a, int64_t b, int64_t D) { return D + 1 - std::bit_width(uint64_t(a ^ b)); }

// Tokens [t0, t1) sorted by the leaf they reached in tree k, stably (within a leaf, in
// token order): order[i] the i-th token, leaf[i] its leaf. In that order the tokens
// below any node come in one run, and a run of one leaf shares all its path's rows.
void sort_by_leaf(int32_t* order, int32_t* leaf, const float* path, const TreeShape& s, int64_t k, int64_t t0,
                  int64_t t1) {
  const int64_t K = s.K, P = s.path(), M = t1 - t0, leaves = int64_t(1) << s.D, first = leaves - 1;
  auto leaf_of = [&](int64_t t) { return int64_t(path[(t * K + k) * P + s.D]) - first; };
  if (leaves <= 4 * M + 1024) {  // a counting sort
    static thread_local std::vector<int64_t> count_buf;
    int64_t* count = scratch(count_buf, leaves + 1);
    std::fill(count, count + leaves + 1, 0);
    for (int64_t t = t0; t < t1; t++) count[leaf_of(t) + 1]++;
    for (int64_t l = 0; l < leaves; l++) count[l + 1] += count[l];
    for (int64_t t = t0; t < t1; t++) {
      const int64_t l = leaf_of(t), at = count[l]++;
      order[at] = int32_t(t);
      leaf[at] = int32_t(l);
    }
  } else {  // far more leaves than tokens: sort (leaf, token) pairs
    static thread_local std::vector<uint64_t> key_buf;
    uint64_t* key = scratch(key_buf, M);
    for (int64_t t = t0; t < t1; t++) key[t - t0] = uint64_t(leaf_of(t)) << 32 | uint64_t(t);
    std::sort(key, key + M);
    for (int64_t i = 0; i < M; i++) {
      order[i] = int32_t(key[i] & 0xFFFFFFFF);
      leaf[i] = int32_t(key[i] >> 32);
    }
  }
}

// Tokens tok[0..n), with vectors xs[0..n) (operand_rows), now at nodes node[0..n),
// walk levels [l0, l1) of tree k: λ, path and the next node, four tokens at a time.
template <typename W>
void walk_levels(const int32_t* tok, const W* const* xs, int64_t n, int32_t* node, int64_t l0, int64_t l1,
                 const Tree<W>& w, int64_t k, float* path, float* lam, const TreeShape& s) {
  const int64_t C = s.C, P = s.path(), K = s.K;
  for (int64_t level = l0; level < l1; level++) {
    auto step = [&](int64_t i, float dot) {  // token i's λ recorded, and its next node
      node[i] = visit(lam, path, (int64_t(tok[i]) * K + k) * P + level, node[i], dot, w.b[node[i]]);
    };
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const W* ws[4];
      float l[4];
      for (int j = 0; j < 4; j++) ws[j] = w.w_in + int64_t(node[i + j]) * C;
      row_dot4(xs + i, ws, C, l);
      for (int j = 0; j < 4; j++) step(i + j, l[j]);
    }
    for (; i < n; i++) step(i, row_dot(xs[i], w.w_in + int64_t(node[i]) * C, C));
  }
}

// Tokens tok[0..n) (vectors xs) walk trees [k0, k0 + 4) together, all their levels:
// each token's four dot products of a level share its vector (row_dot4, loaded once
// for four rows) and are four independent chains, where one tree at a time waits on
// each dot product before the next level's row is known. node (n, 4): scratch.
template <typename W>
void walk_trees4(const int32_t* tok, const W* const* xs, int64_t n, int32_t (*node)[4], const Forest<W>& f,
                 int64_t k0, float* path, float* lam, const TreeShape& s) {
  const int64_t C = s.C, P = s.path(), K = s.K;
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < 4; j++) node[i][j] = 0;
  for (int64_t level = 0; level < P; level++)
    for (int64_t i = 0; i < n; i++) {
      const W* ws[4];
      float l[4];
      for (int j = 0; j < 4; j++) ws[j] = f.w_in + ((k0 + j) * f.N + node[i][j]) * C;
      row_dot4(xs[i], ws, C, l);
      for (int j = 0; j < 4; j++)
        node[i][j] = visit(lam, path, (int64_t(tok[i]) * K + k0 + j) * P + level, node[i][j], l[j],
                           f.b[(k0 + j) * f.N + node[i][j]]);
    }
}

// Tokens tok[0..n) walk every tree from the root to a leaf: four trees at a time, the
// rest one at a time. node: scratch of 4n.
template <typename W>
void walk_all_trees(const int32_t* tok, const W* const* xs, int64_t n, int32_t* node, const Forest<W>& f, float* path,
                    float* lam, const TreeShape& s) {
  int64_t k = 0;
  for (; k + 4 <= s.K; k += 4) walk_trees4(tok, xs, n, reinterpret_cast<int32_t(*)[4]>(node), f, k, path, lam, s);
  for (; k < s.K; k++) {
    std::fill(node, node + n, 0);
    walk_levels(tok, xs, n, node, 0, s.path(), f.tree(k), k, path, lam, s);
  }
}

// y_t (+)= Σ_levels GELU(λ)·w_out[node] over token t's path in tree k (= for k > 0).
template <typename W>
void tree_output(float* y, int64_t t, int64_t k, const Tree<W>& w, const float* path, const float* lam,
                 const TreeShape& s) {
  const int64_t P = s.path(), v0 = (t * s.K + k) * P;
  float g[64];
  const W* rows[64];
#pragma omp simd
  for (int64_t level = 0; level < P; level++) g[level] = vgelu(lam[v0 + level]);
  for (int64_t level = 0; level < P; level++) rows[level] = w.w_out + int64_t(path[v0 + level]) * s.C;
  rows_combine(y + t * s.C, g, rows, P, s.C, k > 0);
}

// y_t = Σ_k Σ_levels GELU(λ)·w_out[node] over token t's paths in every tree, in one
// weighted sum: the same fused multiply-adds in the same order as tree_output tree
// after tree, but y_t loaded and stored once and GELU over the K·P contiguous λ in
// one vector loop.
template <typename W>
void token_output(float* y, int64_t t, const Forest<W>& f, const float* path, const float* lam, const TreeShape& s) {
  constexpr int64_t kRows = 64;
  const int64_t P = s.path(), KP = s.K * P;
  for (int64_t j0 = 0; j0 < KP; j0 += kRows) {
    const int64_t n = std::min(kRows, KP - j0), v0 = t * KP + j0;
    float g[kRows];
    const W* rows[kRows];
#pragma omp simd
    for (int64_t j = 0; j < n; j++) g[j] = vgelu(lam[v0 + j]);
    for (int64_t j = 0; j < n; j++) rows[j] = f.w_out + ((j0 + j) / P * f.N + int64_t(path[v0 + j])) * s.C;
    rows_combine(y + t * s.C, g, rows, n, s.C, j0 > 0);
  }
}

// Token t alone, every tree.
template <typename W>
void forward_token(float* y, float* path, float* lam, const float* x, const Forest<W>& f, const TreeShape& s,
                   int64_t t) {
  static thread_local std::vector<W> buf;
  const int32_t tok = int32_t(t);
  const W* xt;
  operand_rows(&xt, &tok, 1, x, s.C, buf);
  int32_t node[4];
  walk_all_trees(&tok, &xt, 1, node, f, path, lam, s);
  token_output(y, t, f, path, lam, s);
}

// Each token alone: the batch-1 form (and small batches), tokens in parallel. One
// token starts no parallel region: with libgomp even a region that an if clause makes
// serial costs ~1.8 µs per call, twice the walk itself (d=768, D=11, 32 tokens one
// call each: 3.2 µs/token with `if (M > 1)`, 1.2 without a region).
template <typename W>
void forward_per_token(float* y, float* path, float* lam, const float* x, const Forest<W>& f, const TreeShape& s,
                       int64_t M) {
  if (M == 1) return forward_token(y, path, lam, x, f, s, 0);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++) forward_token(y, path, lam, x, f, s, t);
}

// Tokens [t0, t1), one tree at a time, on one thread: levels [0, S) over tiles of
// tokens in order; then the tokens sorted by their node at level S (a stable counting
// sort) and each subtree's bucket walked to the leaves, so a subtree's rows are
// fetched once per bucket. The outputs: a small forest's (w_out ≤ 1 MiB) after every
// tree is walked, token by token over all trees (token_output); a larger one's as
// each token's walk in a tree ends, while the subtree's w_out rows are in cache.
// Measured forward, us/token on 2 cores, per tree / after all trees: d=256 K=16 D=5
// (1 MiB) 1.19 / 1.05; d=512 K=16 D=5 (2 MiB) 2.10 / 2.12; d=256 K=16 D=7 (4 MiB)
// 1.37 / 1.48; d=768 K=16 D=7 4.27 / 4.74; d=768 K=1 D=11 0.47 / 0.54.
template <typename W>
void forward_chunk(float* y, float* path, float* lam, const float* x, const Forest<W>& f, const TreeShape& s,
                   int64_t t0, int64_t t1) {
  const int64_t P = s.path(), S = split_level(s), M = t1 - t0;
  const int64_t first = (int64_t(1) << S) - 1, buckets = int64_t(1) << S;  // level S's nodes
  std::vector<int32_t> tok(static_cast<size_t>(M)), node(static_cast<size_t>(M)), order(static_cast<size_t>(M)),
      start(static_cast<size_t>(buckets + 1));
  std::vector<W> buf;  // bf16: the tile's vectors, rounded
  const W* xs[kTile];
  const bool after_all_trees = s.K * s.nodes() * s.C * int64_t(sizeof(W)) <= (1 << 20);
  for (int64_t i = 0; i < M; i++) tok[i] = int32_t(t0 + i);
  if (S == P) {  // small trees: each tile of tokens walks every tree, four trees at a time
    int32_t nodes[4 * kTile];
    for (int64_t i0 = 0; i0 < M; i0 += kTile) {
      const int64_t n = std::min(kTile, M - i0);
      operand_rows(xs, tok.data() + i0, n, x, s.C, buf);
      walk_all_trees(tok.data() + i0, xs, n, nodes, f, path, lam, s);
      if (!after_all_trees)
        for (int64_t i = i0; i < i0 + n; i++)
          for (int64_t k = 0; k < s.K; k++) tree_output(y, tok[i], k, f.tree(k), path, lam, s);
    }
  }
  for (int64_t k = 0; S < P && k < s.K; k++) {  // deep trees: one at a time, levels [0, S) then buckets
    const Tree<W> w = f.tree(k);
    std::fill(node.begin(), node.end(), 0);
    for (int64_t i0 = 0; i0 < M; i0 += kTile) {
      const int64_t n = std::min(kTile, M - i0);
      operand_rows(xs, tok.data() + i0, n, x, s.C, buf);
      walk_levels(tok.data() + i0, xs, n, node.data() + i0, 0, S, w, k, path, lam, s);
    }
    std::fill(start.begin(), start.end(), 0);
    for (int64_t i = 0; i < M; i++) start[node[i] - first + 1]++;
    for (int64_t b = 0; b < buckets; b++) start[b + 1] += start[b];
    for (int64_t i = 0; i < M; i++) order[start[node[i] - first]++] = tok[i];  // start[b] moves to b's end
    for (int64_t b = buckets - 1; b >= 0; b--) start[b + 1] = start[b];
    start[0] = 0;
    for (int64_t b = 0; b < buckets; b++)
      for (int64_t i0 = start[b]; i0 < start[b + 1]; i0 += kTile) {
        const int64_t n = std::min<int64_t>(kTile, start[b + 1] - i0);
        int32_t at[kTile];
        for (int64_t i = 0; i < n; i++) at[i] = int32_t(first + b);
        operand_rows(xs, order.data() + i0, n, x, s.C, buf);
        walk_levels(order.data() + i0, xs, n, at, S, P, w, k, path, lam, s);
        if (!after_all_trees)
          for (int64_t i = i0; i < i0 + n; i++) tree_output(y, order[i], k, w, path, lam, s);
      }
  }
  if (after_all_trees)
    for (int64_t t = t0; t < t1; t++) token_output(y, t, f, path, lam, s);
}

// Many tokens: chunks of tokens in parallel, each chunk all trees on one thread. One
// tree: one chunk per thread, as large as can be, so deep subtrees get full buckets
// (d=768, D=11, 16384 tokens on 2 cores: 0.53 us/token, against 0.61 with chunks of
// 4096 and 0.72 with 256). Several trees: each tree re-reads the chunk's vectors, so
// chunks of about 3 MiB of them, which stay in cache from tree to tree (K=16, D=7:
// 4.6 us/token, against 6.9 with one chunk per thread and 6.1 with 256 tokens).
template <typename W>
void forward_batched(float* y, float* path, float* lam, const float* x, const Forest<W>& f, const TreeShape& s,
                     int64_t M) {
  const int64_t per_thread = (M + num_threads() - 1) / num_threads();
  const int64_t chunk = s.K == 1 ? per_thread : std::min(per_thread, std::max(kTile, (3 << 20) / (4 * s.C)));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t0 = 0; t0 < M; t0 += chunk) forward_chunk(y, path, lam, x, f, s, t0, std::min(M, t0 + chunk));
}

template <typename W>
void forward(float* y, float* path, float* lam, const float* x, const W* w_in, const float* b, const W* w_out,
             const TreeShape& s, int64_t M, FffForm form) {
  check_shape(s);
  const Forest<W> f{w_in, b, w_out, s.nodes(), s.C};
  if (form == FffForm::per_token || (form == FffForm::automatic && M < kBatchedFrom))
    forward_per_token(y, path, lam, x, f, s, M);
  else
    forward_batched(y, path, lam, x, f, s, M);
}

// One gradient's sums over one tree's visits, for the levels [l0, l0 + L) and the
// columns [c0, c0 + 16·NB) of C:
//   dw[n] += Σ_t scale(t, level(n))·src_t
// over the tokens t that visit n, taken in leaf order (order, leaf from sort_by_leaf;
// scale (M, P): the tree's factors of the i-th token in that order, in row i).
// In that order the tokens below a node come in one run, so each level's sum stays in
// registers while the node stays the same and goes to the node's row when it changes
// (at a new leaf, the levels below the two leaves' common ancestor): each token's
// slice of src is loaded once for L·NB fused multiply-adds, where a row-by-row sum
// loads a row of src and reads and writes a row of dw for each. Each node's run is
// one, so each row is added to once. A small tree's sums go to a staging block of its
// rows' slices (N × 16·NB floats, at most 64 KiB, in L1) that is added to dw at the
// end, in row order: added in place as the runs end, the rows were cache misses the
// loop waited on (d=256, K=16, D=5: the weight side took 0.47 us/token instead of
// 0.39; prefetching each run's rows as it started did not help). Every loop over l
// and b unrolls completely, so the sums are registers (captured by a lambda, or
// indexed by a loop that stays a loop, they would be kept in memory).
constexpr int64_t kAhead = 8;  // tokens ahead whose rows are prefetched: sorted, they are anywhere in src

template <int L, int NB>
void accumulate_levels(float* dw, const float* src, const float* scale, const int32_t* order, const int32_t* leaf,
                       int64_t M, int64_t l0, int64_t c0, const TreeShape& s) {
  const int64_t C = s.C, P = s.path(), D = s.D;
#if defined(__AVX512F__)
  __mmask16 mask[NB];  // the block's columns that are inside C
  for (int b = 0; b < NB; b++) mask[b] = __mmask16((1u << std::clamp<int64_t>(C - c0 - 16 * b, 0, 16)) - 1);
  // the sums of node n go to row n of the staging block (rows [n0, n1): the levels'
  // nodes), or of dw
  const int64_t n0 = (int64_t(1) << l0) - 1, n1 = (int64_t(2) << (l0 + L - 1)) - 1;
  const bool staged = s.nodes() * 16 * NB * int64_t(sizeof(float)) <= (64 << 10);
  static thread_local std::vector<float> stage_buf;
  float* stage = staged ? scratch(stage_buf, s.nodes() * 16 * NB) : nullptr;
  if (staged) std::fill(stage + n0 * 16 * NB, stage + n1 * 16 * NB, 0.0f);
  float* const out = staged ? stage : dw + c0;
  const int64_t stride = staged ? 16 * NB : C;
  __m512 acc[L][NB];
#pragma GCC unroll 64
  for (int j = 0; j < L * NB; j++) acc[j / NB][j % NB] = _mm512_setzero_ps();
  for (int64_t i = 0; i <= M; i++) {
    if (i > 0 && (i == M || leaf[i] != leaf[i - 1])) {  // levels from `from` on enter new nodes (all at the end)
      const int64_t from = i == M ? 0 : first_split_level(leaf[i], leaf[i - 1], D), last = leaf[i - 1];
#pragma GCC unroll 64
      for (int j = 0; j < L * NB; j++)
        if (l0 + j / NB >= from) {
          float* row = out + ancestor(last, l0 + j / NB, D) * stride + 16 * (j % NB);
          const __mmask16 m = mask[j % NB];
          _mm512_mask_storeu_ps(row, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, row), acc[j / NB][j % NB]));
          acc[j / NB][j % NB] = _mm512_setzero_ps();
        }
    }
    if (i == M) break;
    const int64_t t = order[i];
    if (i + kAhead < M) {
      const int64_t u = order[i + kAhead];
      for (int b = 0; b < NB; b++) _mm_prefetch(reinterpret_cast<const char*>(src + u * C + c0 + 16 * b), _MM_HINT_T0);
    }
    __m512 v[NB];
#pragma GCC unroll 16
    for (int b = 0; b < NB; b++) v[b] = _mm512_maskz_loadu_ps(mask[b], src + t * C + c0 + 16 * b);
    const float* sc = scale + i * P + l0;
#pragma GCC unroll 64
    for (int j = 0; j < L * NB; j++)
      acc[j / NB][j % NB] = _mm512_fmadd_ps(_mm512_set1_ps(sc[j / NB]), v[j % NB], acc[j / NB][j % NB]);
  }
  if (staged)  // the levels' rows, to dw
    for (int64_t n = n0; n < n1; n++)
      for (int b = 0; b < NB; b++) {
        float* row = dw + n * C + c0 + 16 * b;
        const __m512 sum = _mm512_loadu_ps(stage + n * 16 * NB + 16 * b);
        _mm512_mask_storeu_ps(row, mask[b], _mm512_add_ps(_mm512_maskz_loadu_ps(mask[b], row), sum));
      }
#else  // portable: the same sums, each visit added to its row at once
  const int64_t c1 = std::min(C, c0 + 16 * NB);
  for (int64_t i = 0; i < M; i++)
    for (int64_t l = l0; l < l0 + L; l++) {
      float* row = dw + ancestor(leaf[i], l, D) * C;
      const float g = scale[i * P + l];
      for (int64_t c = c0; c < c1; c++) row[c] += g * src[int64_t(order[i]) * C + c];
    }
#endif
}

// accumulate_levels over all P levels of one tree, six at a time (6·NB sums, NB
// slices of src and a scale: 29 of the 32 vector registers at NB = 4).
template <int NB>
void accumulate_path(float* dw, const float* src, const float* scale, const int32_t* order, const int32_t* leaf,
                     int64_t M, int64_t c0, const TreeShape& s) {
  constexpr int64_t kLevels = 6;
  for (int64_t l0 = 0; l0 < s.path(); l0 += kLevels) {
    auto run = [&]<int L>() { accumulate_levels<L, NB>(dw, src, scale, order, leaf, M, l0, c0, s); };
    switch (std::min(kLevels, s.path() - l0)) {
      case 1: run.template operator()<1>(); break;
      case 2: run.template operator()<2>(); break;
      case 3: run.template operator()<3>(); break;
      case 4: run.template operator()<4>(); break;
      case 5: run.template operator()<5>(); break;
      default: run.template operator()<6>(); break;
    }
  }
}

// db[n] += Σ scale over one tree's visits of n, in the same leaf order: each level's
// sum in a register while its node stays the same.
void accumulate_bias(float* db, const float* scale, const int32_t* leaf, int64_t M, const TreeShape& s) {
  const int64_t P = s.path();
  float sum[64] = {};
  for (int64_t i = 0; i <= M; i++) {
    if (i > 0 && (i == M || leaf[i] != leaf[i - 1])) {
      const int64_t from = i == M ? 0 : first_split_level(leaf[i], leaf[i - 1], s.D);
      for (int64_t l = from; l < P; l++) {
        db[ancestor(leaf[i - 1], l, s.D)] += sum[l];
        sum[l] = 0.0f;
      }
    }
    if (i == M) break;
    for (int64_t l = 0; l < P; l++) sum[l] += scale[i * P + l];
  }
}

// The weight gradients over every visit, deterministically:
//   dw_in[n] += Σ dλ·x_t,  db[n] += Σ dλ,  dw_out[n] += Σ GELU(λ)·dy_t.
// Work items are (gradient, column block of 64, tree) and (db, tree), so each
// gradient element has one writer, which sums its tokens in leaf order: the result is
// the same for any thread count. In order, a thread's items share their column
// block, whose slice of x or dy stays in cache from tree to tree. Each tree's dλ and
// GELU(λ) are first copied into leaf order, so the sums read them in sequence.
void weight_gradients(float* dw_in, float* db, float* dw_out, const float* dy, const float* x, const float* path,
                      const float* dlam, const float* gelu_lam, const TreeShape& s, int64_t M) {
  constexpr int NB = 4;
  const int64_t K = s.K, N = s.nodes(), C = s.C, P = s.path(), blocks = (C + 16 * NB - 1) / (16 * NB);
  static thread_local std::vector<int32_t> order_buf, leaf_buf;
  int32_t *order = scratch(order_buf, K * M), *leaf = scratch(leaf_buf, K * M);
  static thread_local std::vector<float> sorted_buf;
  float* sorted = scratch(sorted_buf, 2 * K * M * P);  // (2, K, M, P): dλ, GELU(λ) in leaf order
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < K; k++) {
    sort_by_leaf(order + k * M, leaf + k * M, path, s, k, 0, M);
    for (int64_t i = 0; i < M; i++) {
      const int64_t v = (int64_t(order[k * M + i]) * K + k) * P, at = (k * M + i) * P;
      for (int64_t l = 0; l < P; l++) {
        sorted[at + l] = dlam[v + l];
        sorted[K * M * P + at + l] = gelu_lam[v + l];
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < 2 * blocks * K + K; item++) {
    const int64_t k = item % K, c0 = item / K % blocks * 16 * NB;
    const int32_t *o = order + k * M, *lf = leaf + k * M;
    const float *d = sorted + k * M * P, *g = sorted + (K + k) * M * P;
    if (item < blocks * K)
      accumulate_path<NB>(dw_in + k * N * C, x, d, o, lf, M, c0, s);
    else if (item < 2 * blocks * K)
      accumulate_path<NB>(dw_out + k * N * C, dy, g, o, lf, M, c0, s);
    else
      accumulate_bias(db + k * N, d, lf, M, s);
  }
}

template <typename W>
void backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy, const float* x,
              const float* path, const float* lam, const W* w_in, const W* w_out, const TreeShape& s, int64_t M) {
  check_shape(s);
  const int64_t C = s.C, N = s.nodes(), P = s.path(), K = s.K, KP = K * P;
  // Per token: dλ of each visited neuron (four of its rows at a time against dy_t),
  // then dx_t = Σ dλ·w_in[n] over its visits, in visit order. Tiles of tokens, a few
  // trees at a time within a tile, so their rows serve the whole tile from cache.
  // Between the two, GELU'(λ) and GELU(λ) (for the weight side) over the tile's
  // visits in one vector loop: a token's K·P visits are contiguous. (Per visit, as
  // scalars in the weight side, GELU took ~10% of the backward at d=256, K=16, D=5.)
  constexpr int64_t kGradTile = 128;
  // Trees in groups of G whose G·P visits are a multiple of four, so that all of a
  // token's dot products run four at a time (at P = 6, one tree at a time left two
  // of six to run alone, each a chain of dependent multiply-adds), and dx_t is read
  // and written once per group.
  const int64_t G = 4 / std::gcd(P, int64_t(4));
  constexpr int64_t kGroupVisits = 4 * 25;  // G·P at most, D ≤ 24
  static thread_local std::vector<float> gelu_buf;
  float* gelu_lam = scratch(gelu_buf, M * KP);  // GELU(λ) of every visit
#pragma omp parallel for schedule(static)
  for (int64_t t0 = 0; t0 < M; t0 += kGradTile) {
    const int64_t n = std::min(kGradTile, M - t0);
    static thread_local std::vector<W> buf;  // bf16: the tile's dy, rounded
    int32_t tok[kGradTile];
    const W* dys[kGradTile];
    for (int64_t i = 0; i < n; i++) tok[i] = int32_t(t0 + i);
    operand_rows(dys, tok, n, dy, C, buf);
    for (int64_t k0 = 0; k0 < K; k0 += G)
      for (int64_t i = 0; i < n; i++) {
        const int64_t v0 = ((t0 + i) * K + k0) * P, V = std::min(G, K - k0) * P;  // the group's visits
        const W* out_rows[kGroupVisits];
        for (int64_t j = 0; j < V; j++) out_rows[j] = w_out + ((k0 + j / P) * N + int64_t(path[v0 + j])) * C;
        int64_t j = 0;
        for (; j + 4 <= V; j += 4) row_dot4(dys[i], out_rows + j, C, dlam + v0 + j);
        for (; j < V; j++) dlam[v0 + j] = row_dot(dys[i], out_rows[j], C);
      }
    const int64_t v_begin = t0 * KP, v_end = (t0 + n) * KP;
#pragma omp simd
    for (int64_t v = v_begin; v < v_end; v++) {
      dlam[v] *= vgelu_grad(lam[v]);
      gelu_lam[v] = vgelu(lam[v]);
    }
    for (int64_t k0 = 0; k0 < K; k0 += G)
      for (int64_t i = 0; i < n; i++) {
        const int64_t t = t0 + i, v0 = (t * K + k0) * P, V = std::min(G, K - k0) * P;
        const W* in_rows[kGroupVisits];
        for (int64_t j = 0; j < V; j++) in_rows[j] = w_in + ((k0 + j / P) * N + int64_t(path[v0 + j])) * C;
        rows_combine(dx + t * C, dlam + v0, in_rows, V, C, k0 > 0);
      }
  }
  weight_gradients(dw_in, db, dw_out, dy, x, path, dlam, gelu_lam, s, M);
}

}  // namespace

void fff_forward(float* y, float* path, float* lam, const float* x, const float* w_in, const float* b,
                 const float* w_out, const TreeShape& s, int64_t M, FffForm form) {
  forward(y, path, lam, x, w_in, b, w_out, s, M, form);
}

void fff_forward(float* y, float* path, float* lam, const float* x, const bf16* w_in, const float* b,
                 const bf16* w_out, const TreeShape& s, int64_t M, FffForm form) {
  forward(y, path, lam, x, w_in, b, w_out, s, M, form);
}

void fff_backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy,
                  const float* x, const float* path, const float* lam, const float* w_in,
                  const float* w_out, const TreeShape& s, int64_t M) {
  backward(dx, dw_in, db, dw_out, dlam, dy, x, path, lam, w_in, w_out, s, M);
}

void fff_backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy,
                  const float* x, const float* path, const float* lam, const bf16* w_in,
                  const bf16* w_out, const TreeShape& s, int64_t M) {
  backward(dx, dw_in, db, dw_out, dlam, dy, x, path, lam, w_in, w_out, s, M);
}

}  // namespace fw
