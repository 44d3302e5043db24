#include "kernels/fff_leaf.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "kernels/row_ops.h"
#include "kernels/vec_math.h"

namespace fw {


// Entropy of a decision with probability p, in nats (0 at p = 0 or 1).
static inline double entropy(double p) {
  double h = 0;
  if (p > 0) h -= p * std::log(p);
  if (p < 1) h -= (1 - p) * std::log(1 - p);
  return h;
}

double leaf_soft_forward(float* y, LeafSoftActs& a, const float* x, const LeafWeights& w, const LeafShape& s,
                         int64_t M, double transpose_prob, uint64_t seed) {
  const int64_t C = s.C, K = s.K, R = s.R(), L = s.L(), H = 2 * L - 1, KR = K * R, KL = K * L,
                KLl = KL * s.l;
  // routers and path probabilities
  if (KR > 0) {
    matmul_forward(a.logits, x, w.r_w, M, C, KR);
    add_bias(a.logits, w.r_b, M, KR);
  }
  const uint64_t flip_below = uint64_t(transpose_prob * 18446744073709551616.0);  // ρ·2^64
  double entropy_sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : entropy_sum)
  for (int64_t t = 0; t < M; t++)
    for (int64_t k = 0; k < K; k++) {
      float* prob = a.prob + (t * K + k) * H;
      prob[0] = 1.0f;
      for (int64_t n = 0; n < R; n++) {
        const int64_t j = t * KR + k * R + n;
        const float p = vsigmoid(a.logits[j]);
        const bool swap = transpose_prob > 0 && hash64(seed ^ hash64(uint64_t(j))) < flip_below;
        a.flip[j] = swap ? 1.0f : 0.0f;
        const float right = swap ? 1.0f - p : p;
        prob[2 * n + 1] = prob[n] * (1.0f - right);
        prob[2 * n + 2] = prob[n] * right;
        entropy_sum += entropy(double(p));
      }
      for (int64_t i = 0; i < L; i++) a.pl[t * KL + k * L + i] = prob[R + i];
    }
  // every leaf, weighted by its probability
  matmul_forward(a.h1, x, w.w1, M, C, KLl);
  add_bias(a.h1, w.b1, M, KLl);
  gelu_forward(a.g, a.h1, M * KLl);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++)
    for (int64_t i = 0; i < KL; i++) {
      const float p = a.pl[t * KL + i];
      const int64_t o = t * KLl + i * s.l;
      for (int64_t j = 0; j < s.l; j++) a.gs[o + j] = a.g[o + j] * p;
    }
  sgemm('N', 'N', M, C, KLl, 1.0f, a.gs, KLl, w.w2, C, 0.0f, y, C);
  sgemm('N', 'N', M, C, KL, 1.0f, a.pl, KL, w.b2, C, 1.0f, y, C);
  return KR > 0 ? entropy_sum / double(M * KR) : 0.0;
}

void leaf_soft_backward(float* dx, const LeafGrads& dw, LeafSoftScratch& sc, const float* dy, const float* x,
                        const LeafSoftActs& a, const LeafWeights& w, const LeafShape& s, int64_t M,
                        float hardening_grad) {
  const int64_t C = s.C, K = s.K, R = s.R(), L = s.L(), H = 2 * L - 1, KR = K * R, KL = K * L,
                KLl = KL * s.l;
  // y = gs·w2 + pl·b2
  sgemm('N', 'T', M, KLl, C, 1.0f, dy, C, w.w2, C, 0.0f, sc.dgs, KLl);
  sgemm('T', 'N', KLl, C, M, 1.0f, a.gs, KLl, dy, C, 1.0f, dw.w2, C);
  sgemm('T', 'N', KL, C, M, 1.0f, a.pl, KL, dy, C, 1.0f, dw.b2, C);
  sgemm('N', 'T', M, KL, C, 1.0f, dy, C, w.b2, C, 0.0f, sc.dpl, KL);
  // gs = g·p: ∂p += Σ_j ∂gs·g, and ∂g = ∂gs·p (in place)
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++)
    for (int64_t i = 0; i < KL; i++) {
      const int64_t o = t * KLl + i * s.l;
      sc.dpl[t * KL + i] += row_dot(sc.dgs + o, a.g + o, s.l);
      const float p = a.pl[t * KL + i];
      for (int64_t j = 0; j < s.l; j++) sc.dgs[o + j] *= p;
    }
  gelu_backward(sc.dgs, sc.dgs, a.h1, M * KLl);  // now ∂h1
  matmul_backward(dx, dw.w1, sc.dgs, x, w.w1, M, C, KLl);
  add_colsum(dw.b1, sc.dgs, M, KLl);
  if (KR == 0) return;
  // path probabilities back to the router logits, leaves to root
  const float hscale = hardening_grad / float(M * KR);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++)
    for (int64_t k = 0; k < K; k++) {
      const float* prob = a.prob + (t * K + k) * H;
      float* dprob = sc.dprob + (t * K + k) * H;
      for (int64_t i = 0; i < L; i++) dprob[R + i] = sc.dpl[t * KL + k * L + i];
      for (int64_t n = R - 1; n >= 0; n--) {
        const int64_t j = t * KR + k * R + n;
        const float p = vsigmoid(a.logits[j]);
        const bool swap = a.flip[j] != 0.0f;
        const float right = swap ? 1.0f - p : p;
        dprob[n] = dprob[2 * n + 1] * (1.0f - right) + dprob[2 * n + 2] * right;
        const float dright = prob[n] * (dprob[2 * n + 2] - dprob[2 * n + 1]);
        const float dp = swap ? -dright : dright;
        // dH/dr = −r·p(1−p) for H the entropy of σ(r)
        sc.dlogit[j] = (dp - hscale * a.logits[j]) * p * (1.0f - p);
      }
    }
  sgemm('N', 'N', M, C, KR, 1.0f, sc.dlogit, KR, w.r_w, C, 1.0f, dx, C);
  sgemm('T', 'N', KR, C, M, 1.0f, sc.dlogit, KR, x, C, 1.0f, dw.r_w, C);
  add_colsum(dw.r_b, sc.dlogit, M, KR);
}

namespace {

// Token t's hard walk in every tree, its leaf's neurons, and its output row.
void leaf_hard_token(float* y, float* leaf, float* hidden, const float* x, const LeafWeights& w, const LeafShape& s,
                     int64_t t) {
  const int64_t C = s.C, K = s.K, R = s.R(), L = s.L();
  constexpr int64_t kRows = 64;  // rows per weighted sum
  const float* xt = x + t * C;
  float* yt = y + t * C;
  for (int64_t k = 0; k < K; k++) {
    int64_t n = 0;
    for (int64_t level = 0; level < s.D; level++) {  // σ(r) > 0.5 ⇔ r > 0: go right
      const float r = row_dot(xt, w.r_w + (k * R + n) * C, C) + w.r_b[k * R + n];
      n = 2 * n + (r > 0 ? 2 : 1);
    }
    const int64_t i = k * L + (n - R), first = i * s.l;  // the leaf, and its first neuron
    leaf[t * K + k] = float(n - R);
    // the leaf's hidden neurons, four at a time against the token
    float* h = hidden + (t * K + k) * s.l;
    int64_t j = 0;
    for (; j + 4 <= s.l; j += 4) {
      const float* rows[4] = {w.w1 + (first + j) * C, w.w1 + (first + j + 1) * C, w.w1 + (first + j + 2) * C,
                              w.w1 + (first + j + 3) * C};
      row_dot4(xt, rows, C, h + j);
    }
    for (; j < s.l; j++) h[j] = row_dot(xt, w.w1 + (first + j) * C, C);
#pragma omp simd
    for (j = 0; j < s.l; j++) h[j] = vgelu(h[j] + w.b1[first + j]);
    // y (+)= Σ_j h_j·w2[j] + b2[leaf], in that order
    for (int64_t j0 = 0; j0 < s.l; j0 += kRows) {
      const float* rows[kRows];
      const int64_t count = std::min(kRows, s.l - j0);
      for (int64_t u = 0; u < count; u++) rows[u] = w.w2 + (first + j0 + u) * C;
      rows_combine(yt, h + j0, rows, count, C, k > 0 || j0 > 0);
    }
    const float one = 1.0f, *bias = w.b2 + i * C;
    rows_combine(yt, &one, &bias, 1, C, k > 0 || s.l > 0);
  }
}

}  // namespace

// One token starts no parallel region: with libgomp even a region that an if clause
// makes serial costs ~2 µs per call (measured on the tree kernel at d=768, D=11: 2.7
// against 0.95 µs per token), more than a small leaf walk itself.
void leaf_hard_forward(float* y, float* leaf, float* hidden, const float* x, const LeafWeights& w,
                       const LeafShape& s, int64_t M) {
  if (M == 1) return leaf_hard_token(y, leaf, hidden, x, w, s, 0);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++) leaf_hard_token(y, leaf, hidden, x, w, s, t);
}

}  // namespace fw
