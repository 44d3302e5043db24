#include "kernels/fff.h"

#include <omp.h>

#include <algorithm>
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

// Tokens tok[0..n), with vectors xs[0..n) (operand_rows), now at nodes node[0..n),
// walk levels [l0, l1) of tree k: λ, path and the next node, four tokens at a time.
template <typename W>
void walk_levels(const int32_t* tok, const W* const* xs, int64_t n, int32_t* node, int64_t l0, int64_t l1,
                 const Tree<W>& w, int64_t k, float* path, float* lam, const TreeShape& s) {
  const int64_t C = s.C, P = s.path(), K = s.K;
  for (int64_t level = l0; level < l1; level++) {
    auto step = [&](int64_t i, float dot) {  // token i's λ recorded, and its next node
      const int64_t nd = node[i], v = (int64_t(tok[i]) * K + k) * P + level;
      lam[v] = dot + w.b[nd];
      path[v] = float(nd);
      node[i] = int32_t(2 * nd + (lam[v] > 0 ? 2 : 1));
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
  for (int64_t k = 0; k < s.K; k++) {
    int32_t node = 0;
    walk_levels(&tok, &xt, 1, &node, 0, s.path(), f.tree(k), k, path, lam, s);
  }
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
  for (int64_t k = 0; k < s.K; k++) {
    const Tree<W> w = f.tree(k);
    for (int64_t i = 0; i < M; i++) {
      tok[i] = int32_t(t0 + i);
      node[i] = 0;
    }
    for (int64_t i0 = 0; i0 < M; i0 += kTile) {
      const int64_t n = std::min(kTile, M - i0);
      operand_rows(xs, tok.data() + i0, n, x, s.C, buf);
      walk_levels(tok.data() + i0, xs, n, node.data() + i0, 0, S, w, k, path, lam, s);
      if (S == P && !after_all_trees)
        for (int64_t i = i0; i < i0 + n; i++) tree_output(y, tok[i], k, w, path, lam, s);
    }
    if (S == P) continue;
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

template <typename W>
void backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy, const float* x,
              const float* path, const float* lam, const W* w_in, const W* w_out, const TreeShape& s, int64_t M) {
  check_shape(s);
  const int64_t C = s.C, N = s.nodes(), P = s.path(), K = s.K, KP = K * P;
  // Per token: dλ of each visited neuron (four of its rows at a time against dy_t),
  // then dx_t = Σ dλ·w_in[n] over its visits, in visit order. Tiles of tokens, one
  // tree at a time within a tile, so a tree's rows serve the whole tile from cache.
  // Between the two, GELU'(λ) and GELU(λ) (for the weight side) over the tile's
  // visits in one vector loop: a token's K·P visits are contiguous. (Per visit, as
  // scalars in the weight side, GELU took ~10% of the backward at d=256, K=16, D=5.)
  constexpr int64_t kGradTile = 128;
  std::vector<float> gelu_lam(static_cast<size_t>(M * KP));  // GELU(λ) of every visit
#pragma omp parallel for schedule(static)
  for (int64_t t0 = 0; t0 < M; t0 += kGradTile) {
    const int64_t n = std::min(kGradTile, M - t0);
    static thread_local std::vector<W> buf;  // bf16: the tile's dy, rounded
    int32_t tok[kGradTile];
    const W* dys[kGradTile];
    for (int64_t i = 0; i < n; i++) tok[i] = int32_t(t0 + i);
    operand_rows(dys, tok, n, dy, C, buf);
    for (int64_t k = 0; k < K; k++)
      for (int64_t i = 0; i < n; i++) {
        const int64_t v0 = ((t0 + i) * K + k) * P;
        const W* dy4[4] = {dys[i], dys[i], dys[i], dys[i]};
        const W* out_rows[64];
        for (int64_t level = 0; level < P; level++) out_rows[level] = w_out + (k * N + int64_t(path[v0 + level])) * C;
        int64_t level = 0;
        for (; level + 4 <= P; level += 4) row_dot4(dy4, out_rows + level, C, dlam + v0 + level);
        for (; level < P; level++) dlam[v0 + level] = row_dot(dys[i], out_rows[level], C);
      }
    const int64_t v_begin = t0 * KP, v_end = (t0 + n) * KP;
#pragma omp simd
    for (int64_t v = v_begin; v < v_end; v++) {
      dlam[v] *= vgelu_grad(lam[v]);
      gelu_lam[v] = vgelu(lam[v]);
    }
    for (int64_t k = 0; k < K; k++)
      for (int64_t i = 0; i < n; i++) {
        const int64_t t = t0 + i, v0 = (t * K + k) * P;
        const W* in_rows[64];
        for (int64_t level = 0; level < P; level++) in_rows[level] = w_in + (k * N + int64_t(path[v0 + level])) * C;
        rows_combine(dx + t * C, dlam + v0, in_rows, P, C, k > 0);
      }
  }
  // Per neuron: the visits sorted by row, stably (within a row, tokens in order), and
  // each row's gradients summed over its visits by the one thread that owns the row
  // (row % threads), so no two threads write one row and the sums' order never
  // depends on the thread count. The owners walk the tokens in chunks whose x and dy
  // stay in cache while every owned row takes its visits from the chunk. The counting
  // sort runs in parallel: each thread counts the visits of its range of tokens, the
  // prefix sum runs row by row and thread by thread, each thread places its own visits.
  const int64_t rows = K * N;
  std::vector<int64_t> start(static_cast<size_t>(rows + 1), 0), cursor(static_cast<size_t>(rows));
  std::vector<int32_t> by_row(static_cast<size_t>(M * KP)), token_of(by_row.size());  // visit, its token
  const int64_t threads = num_threads();
  std::vector<int64_t> at(static_cast<size_t>(threads * rows), 0);  // (thread, row): count, then offset
  const int64_t chunk = std::max<int64_t>(64, (512 << 10) / (8 * C));  // tokens: 512 KiB of x and dy
#pragma omp parallel num_threads(threads)
  {
    const int64_t me = omp_get_thread_num(), n_th = omp_get_num_threads();
    const int64_t t_begin = M * me / n_th, t_end = M * (me + 1) / n_th;
    int64_t* mine = at.data() + me * rows;
    for (int64_t t = t_begin; t < t_end; t++)
      for (int64_t k = 0; k < K; k++)
        for (int64_t level = 0; level < P; level++) mine[k * N + int64_t(path[(t * K + k) * P + level])]++;
#pragma omp barrier
#pragma omp single
    {
      int64_t offset = 0;
      for (int64_t r = 0; r < rows; r++) {
        start[r] = offset;
        for (int64_t th = 0; th < n_th; th++) {
          const int64_t c = at[th * rows + r];
          at[th * rows + r] = offset;
          offset += c;
        }
      }
      start[rows] = offset;
    }
    for (int64_t t = t_begin; t < t_end; t++)
      for (int64_t k = 0; k < K; k++)
        for (int64_t level = 0; level < P; level++) {
          const int64_t v = (t * K + k) * P + level;
          const int64_t at_row = mine[k * N + int64_t(path[v])]++;
          by_row[at_row] = int32_t(v);
          token_of[at_row] = int32_t(t);
        }
#pragma omp barrier
    // A row with fewer visits than there are chunks (deep in the tree) takes them all
    // in one pass: its gradient rows are fetched once, and its tokens would not be in
    // cache together anyway. The others take their visits chunk by chunk.
    const int64_t chunks = (M + chunk - 1) / chunk;
    for (int64_t r = me; r < rows; r += n_th) cursor[r] = start[r];
    constexpr int64_t kBatch = 32;  // visits combined per pass over a row
    for (int64_t c1 = chunk; c1 < M + chunk; c1 += chunk)
      for (int64_t r = me; r < rows; r += n_th) {
        const int64_t until = start[r + 1] - start[r] < chunks ? M : c1;  // tokens below this
        int64_t i = cursor[r];
        float db_r = db[r];  // in a register: through memory, each add waited for the last store
        while (i < start[r + 1] && token_of[i] < until) {
          float dl[kBatch], g[kBatch];
          const float *xs[kBatch], *dys[kBatch];
          int64_t n = 0;
          for (; n < kBatch && i < start[r + 1] && token_of[i] < until; n++, i++) {
            const int64_t v = by_row[i], t = token_of[i];
            dl[n] = dlam[v];
            g[n] = gelu_lam[v];
            xs[n] = x + t * C;
            dys[n] = dy + t * C;
            db_r += dl[n];
          }
          rows_combine(dw_in + r * C, dl, xs, n, C, true);
          rows_combine(dw_out + r * C, g, dys, n, C, true);
        }
        db[r] = db_r;
        cursor[r] = i;
      }
  }
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
