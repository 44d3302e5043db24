// Plain reference versions of the kernels in this folder: straight loops, no threads,
// no BLAS, exact std:: functions (the kernels use vec_math.h's vectorised ones).
// Templated on the scalar so tests can run them in double for finite-difference
// gradient checks and in float to compare against the optimised kernels.
// Tensor layouts and the math are the kernels'. The argument lists differ where a kernel
// takes a struct or a table, and each such function says how: plain scalars instead of
// AdamWHyper, TreeShape, LeafShape and LeafWeights; separate k and v arrays of Tcap rows
// instead of a KvSlot; rotary angles computed directly instead of from rope_table; the
// RMSNorm epsilon as an argument (the kernel's is kNormEps); the tree backward without
// the kernel's dλ scratch. The leaf form's soft backward has no loop version here: its
// test checks it against finite differences of leaf_soft_forward below.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace fw::ref {

// y (M,N) = x (M,K) · w (N,K)ᵀ
template <typename T>
void matmul_forward(T* y, const T* x, const T* w, int64_t M, int64_t K, int64_t N) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t o = 0; o < N; o++) {
      T s = 0;
      for (int64_t c = 0; c < K; c++) s += x[i * K + c] * w[o * K + c];
      y[i * N + o] = s;
    }
}

// dx = dy·w (overwrite); dw += dyᵀ·x
template <typename T>
void matmul_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, int64_t M, int64_t K,
                     int64_t N) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t c = 0; c < K; c++) {
      T s = 0;
      for (int64_t o = 0; o < N; o++) s += dy[i * N + o] * w[o * K + c];
      if (dx) dx[i * K + c] = s;
    }
  for (int64_t o = 0; o < N; o++)
    for (int64_t c = 0; c < K; c++) {
      T s = 0;
      for (int64_t i = 0; i < M; i++) s += dy[i * N + o] * x[i * K + c];
      dw[o * K + c] += s;
    }
}

template <typename T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, int64_t M, int64_t C, T eps) {
  for (int64_t i = 0; i < M; i++) {
    T ss = 0;
    for (int64_t c = 0; c < C; c++) ss += x[i * C + c] * x[i * C + c];
    T r = T(1) / std::sqrt(ss / T(C) + eps);
    rstd[i] = r;
    for (int64_t c = 0; c < C; c++) y[i * C + c] = x[i * C + c] * r * w[c];
  }
}

// dx += ..., dw += ...
template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t M,
                      int64_t C) {
  for (int64_t i = 0; i < M; i++) {
    const T r = rstd[i];
    T dot = 0;  // Σ_c dy·w·x
    for (int64_t c = 0; c < C; c++) dot += dy[i * C + c] * w[c] * x[i * C + c];
    for (int64_t c = 0; c < C; c++) {
      dx[i * C + c] += r * dy[i * C + c] * w[c] - r * r * r * dot / T(C) * x[i * C + c];
      dw[c] += dy[i * C + c] * x[i * C + c] * r;
    }
  }
}

// x (M,C) = wte[tokens], wte (V,C); the backward: dwte[tokens[i]] += dx[i].
template <typename T>
void embedding_forward(T* x, const int32_t* tokens, const T* wte, int64_t M, int64_t C) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t c = 0; c < C; c++) x[i * C + c] = wte[int64_t(tokens[i]) * C + c];
}
template <typename T>
void embedding_backward(T* dwte, const T* dx, const int32_t* tokens, int64_t M, int64_t C) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t c = 0; c < C; c++) dwte[int64_t(tokens[i]) * C + c] += dx[i * C + c];
}

template <typename T>
T sigmoid(T z) {
  return T(1) / (T(1) + std::exp(-z));
}

template <typename T>
T gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2))));
}
template <typename T>
T gelu_grad(T x) {
  const T pdf = std::exp(-x * x / T(2)) / std::sqrt(T(2) * T(M_PI));
  return T(0.5) * (T(1) + std::erf(x / std::sqrt(T(2)))) + x * pdf;
}

// Rotary split: see kernels/rope.h. Angles computed directly (no table).
template <typename T>
void rope_split_forward(T* q, T* k, T* v, const T* qkv, const int32_t* pos, int64_t B, int64_t Tn,
                        int64_t H, int64_t hd, int64_t Tcap, int64_t off) {
  const int64_t C = H * hd;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < Tn; t++)
      for (int64_t h = 0; h < H; h++) {
        const T* src = qkv + (b * Tn + t) * 3 * C + h * hd;
        T* qd = q + ((b * H + h) * Tn + t) * hd;
        T* kd = k + ((b * H + h) * Tcap + off + t) * hd;
        T* vd = v + ((b * H + h) * Tcap + off + t) * hd;
        for (int64_t i = 0; i < hd / 2; i++) {
          double ang = double(pos[b * Tn + t]) * std::pow(10000.0, -2.0 * double(i) / double(hd));
          T c = T(std::cos(ang)), s = T(std::sin(ang));
          qd[2 * i] = src[2 * i] * c - src[2 * i + 1] * s;
          qd[2 * i + 1] = src[2 * i] * s + src[2 * i + 1] * c;
          kd[2 * i] = src[C + 2 * i] * c - src[C + 2 * i + 1] * s;
          kd[2 * i + 1] = src[C + 2 * i] * s + src[C + 2 * i + 1] * c;
        }
        for (int64_t i = 0; i < hd; i++) vd[i] = src[2 * C + i];
      }
}

template <typename T>
void rope_split_backward(T* dqkv, const T* dq, const T* dk, const T* dv, const int32_t* pos,
                         int64_t B, int64_t Tn, int64_t H, int64_t hd) {
  const int64_t C = H * hd;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < Tn; t++)
      for (int64_t h = 0; h < H; h++) {
        T* dst = dqkv + (b * Tn + t) * 3 * C + h * hd;
        const int64_t row = ((b * H + h) * Tn + t) * hd;
        for (int64_t i = 0; i < hd / 2; i++) {
          double ang = double(pos[b * Tn + t]) * std::pow(10000.0, -2.0 * double(i) / double(hd));
          T c = T(std::cos(ang)), s = T(std::sin(ang));
          dst[2 * i] = dq[row + 2 * i] * c + dq[row + 2 * i + 1] * s;
          dst[2 * i + 1] = -dq[row + 2 * i] * s + dq[row + 2 * i + 1] * c;
          dst[C + 2 * i] = dk[row + 2 * i] * c + dk[row + 2 * i + 1] * s;
          dst[C + 2 * i + 1] = -dk[row + 2 * i] * s + dk[row + 2 * i + 1] * c;
        }
        for (int64_t i = 0; i < hd; i++) dst[2 * C + i] = dv[row + i];
      }
}

// Attention: see kernels/attention.h. Query i of row b sees keys j < visible(b, i):
// j ≤ q_off + i when causal, else j < lengths[b] (every key when lengths is null).
inline int64_t visible_keys(bool causal, const int32_t* lengths, int64_t b, int64_t i, int64_t q_off, int64_t Tk) {
  return causal ? std::min(Tk, q_off + i + 1) : lengths ? std::min<int64_t>(Tk, lengths[b]) : Tk;
}

template <typename T>
void attention_forward(T* y, T* P, const T* q, const T* k, const T* v, int64_t B, int64_t H,
                       int64_t Tq, int64_t Tk, int64_t Tcap, int64_t hd, int64_t q_off, bool causal = true,
                       const int32_t* lengths = nullptr) {
  const int64_t C = H * hd;
  const T scale = T(1) / std::sqrt(T(hd));
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < Tq; i++) {
        const T* qi = q + ((b * H + h) * Tq + i) * hd;
        T* p = P + ((b * H + h) * Tq + i) * Tk;
        const int64_t n = visible_keys(causal, lengths, b, i, q_off, Tk);
        T mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
          T s = 0;
          for (int64_t c = 0; c < hd; c++) s += qi[c] * k[((b * H + h) * Tcap + j) * hd + c];
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        T sum = 0;
        for (int64_t j = 0; j < n; j++) sum += (p[j] = std::exp(p[j] - mx));
        for (int64_t j = 0; j < n; j++) p[j] /= sum;
        for (int64_t j = n; j < Tk; j++) p[j] = 0;
        for (int64_t c = 0; c < hd; c++) {
          T s = 0;
          for (int64_t j = 0; j < n; j++) s += p[j] * v[((b * H + h) * Tcap + j) * hd + c];
          y[(b * Tq + i) * C + h * hd + c] = s;
        }
      }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dy, const T* P, const T* q, const T* k,
                        const T* v, int64_t B, int64_t H, int64_t Tn, int64_t hd, bool causal = true,
                        const int32_t* lengths = nullptr) {
  const int64_t C = H * hd;
  const T scale = T(1) / std::sqrt(T(hd));
  std::vector<T> dp(Tn);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++) {
      const int64_t o = (b * H + h) * Tn * hd;
      std::fill(dq + o, dq + o + Tn * hd, T(0));
      std::fill(dk + o, dk + o + Tn * hd, T(0));
      std::fill(dv + o, dv + o + Tn * hd, T(0));
      for (int64_t i = 0; i < Tn; i++) {
        const T* p = P + ((b * H + h) * Tn + i) * Tn;
        const T* dyi = dy + (b * Tn + i) * C + h * hd;
        T dot = 0;
        const int64_t n = visible_keys(causal, lengths, b, i, 0, Tn);
        for (int64_t j = 0; j < n; j++) {
          dp[j] = 0;
          for (int64_t c = 0; c < hd; c++) {
            dp[j] += dyi[c] * v[o + j * hd + c];
            dv[o + j * hd + c] += p[j] * dyi[c];
          }
          dot += p[j] * dp[j];
        }
        for (int64_t j = 0; j < n; j++) {
          T ds = p[j] * (dp[j] - dot) * scale;
          for (int64_t c = 0; c < hd; c++) {
            dq[o + i * hd + c] += ds * k[o + j * hd + c];
            dk[o + j * hd + c] += ds * q[o + i * hd + c];
          }
        }
      }
    }
}

// Returns losses; logits become probabilities.
template <typename T>
void softmax_xent_forward(T* logits, T* losses, const int32_t* targets, int64_t M, int64_t V) {
  for (int64_t i = 0; i < M; i++) {
    T* row = logits + i * V;
    T mx = *std::max_element(row, row + V), sum = 0;
    for (int64_t j = 0; j < V; j++) sum += (row[j] = std::exp(row[j] - mx));
    for (int64_t j = 0; j < V; j++) row[j] /= sum;
    losses[i] = -std::log(row[targets[i]]);
  }
}

// In-place softmax of each row of x (M,V).
template <typename T>
void softmax_rows(T* x, int64_t M, int64_t V) {
  for (int64_t i = 0; i < M; i++) {
    T* row = x + i * V;
    const T mx = *std::max_element(row, row + V);
    T sum = 0;
    for (int64_t j = 0; j < V; j++) sum += row[j] = std::exp(row[j] - mx);
    for (int64_t j = 0; j < V; j++) row[j] /= sum;
  }
}

// probs (M,V) → dlogits = (p − onehot(target)) · scale
template <typename T>
void softmax_xent_backward(T* probs, const int32_t* targets, int64_t M, int64_t V, T scale) {
  for (int64_t i = 0; i < M; i++) {
    probs[i * V + targets[i]] -= T(1);
    for (int64_t j = 0; j < V; j++) probs[i * V + j] *= scale;
  }
}

template <typename T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, T lr, T b1, T b2, T eps, T wd,
                  int64_t step, T grad_scale) {
  for (int64_t i = 0; i < n; i++) {
    T gi = g[i] * grad_scale;
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    T mhat = m[i] / (1 - std::pow(b1, T(step))), vhat = v[i] / (1 - std::pow(b2, T(step)));
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
  }
}


// Fast feedforward tree (kernels/fff.h), as the explicit per-token sum over the
// visited neurons. path, lam (M, K, D+1); path holds neuron indices within a tree.
template <typename T>
void fff_forward(T* y, T* path, T* lam, const T* x, const T* w_in, const T* b, const T* w_out,
                 int64_t M, int64_t K, int64_t D, int64_t C) {
  const int64_t N = (int64_t(2) << D) - 1;
  for (int64_t t = 0; t < M; t++) {
    for (int64_t c = 0; c < C; c++) y[t * C + c] = 0;
    for (int64_t k = 0; k < K; k++) {
      int64_t n = 0;
      for (int64_t level = 0; level <= D; level++) {
        const int64_t row = k * N + n, v = (t * K + k) * (D + 1) + level;
        T l = b[row];
        for (int64_t c = 0; c < C; c++) l += x[t * C + c] * w_in[row * C + c];
        for (int64_t c = 0; c < C; c++) y[t * C + c] += gelu(l) * w_out[row * C + c];
        path[v] = T(n);
        lam[v] = l;
        n = l > 0 ? 2 * n + 2 : 2 * n + 1;
      }
    }
  }
}

// dx overwritten; dw_in, db, dw_out accumulate.
template <typename T>
void fff_backward(T* dx, T* dw_in, T* db, T* dw_out, const T* dy, const T* x, const T* path,
                  const T* lam, const T* w_in, const T* w_out, int64_t M, int64_t K, int64_t D,
                  int64_t C) {
  const int64_t N = (int64_t(2) << D) - 1;
  for (int64_t t = 0; t < M; t++) {
    for (int64_t c = 0; c < C; c++) dx[t * C + c] = 0;
    for (int64_t k = 0; k < K; k++)
      for (int64_t level = 0; level <= D; level++) {
        const int64_t v = (t * K + k) * (D + 1) + level, row = k * N + int64_t(path[v]);
        T g = 0;
        for (int64_t c = 0; c < C; c++) g += dy[t * C + c] * w_out[row * C + c];
        const T dl = gelu_grad(lam[v]) * g;
        for (int64_t c = 0; c < C; c++) {
          dx[t * C + c] += dl * w_in[row * C + c];
          dw_in[row * C + c] += dl * x[t * C + c];
          dw_out[row * C + c] += gelu(lam[v]) * dy[t * C + c];
        }
        db[row] += dl;
      }
  }
}


// Original FFF (kernels/fff_leaf.h), soft: every leaf weighted by its path probability;
// flip (M, K·R) says which routers' children swap. Returns the mean router entropy.
template <typename T>
T leaf_soft_forward(T* y, const T* x, const T* r_w, const T* r_b, const T* w1, const T* b1, const T* w2,
                    const T* b2, const float* flip, int64_t M, int64_t K, int64_t D, int64_t l, int64_t C) {
  const int64_t R = (int64_t(1) << D) - 1, L = int64_t(1) << D;
  T entropy = 0;
  for (int64_t t = 0; t < M; t++) {
    const T* xt = x + t * C;
    for (int64_t c = 0; c < C; c++) y[t * C + c] = 0;
    for (int64_t k = 0; k < K; k++)
      for (int64_t leaf = 0; leaf < L; leaf++) {
        // the probability of this leaf: the product of the decisions along its path
        T prob = 1;
        for (int64_t n = 0, level = D - 1; level >= 0; level--) {
          const int64_t right = (leaf >> level) & 1;
          T r = r_b[k * R + n];
          for (int64_t c = 0; c < C; c++) r += xt[c] * r_w[(k * R + n) * C + c];
          T p = sigmoid(r);
          if (flip[t * K * R + k * R + n] != 0) p = 1 - p;
          prob *= right ? p : 1 - p;
          n = 2 * n + 1 + right;
        }
        const int64_t first = (k * L + leaf) * l;
        for (int64_t j = 0; j < l; j++) {
          T h = b1[first + j];
          for (int64_t c = 0; c < C; c++) h += xt[c] * w1[(first + j) * C + c];
          for (int64_t c = 0; c < C; c++) y[t * C + c] += prob * gelu(h) * w2[(first + j) * C + c];
        }
        for (int64_t c = 0; c < C; c++) y[t * C + c] += prob * b2[(k * L + leaf) * C + c];
      }
    for (int64_t k = 0; k < K; k++)
      for (int64_t n = 0; n < R; n++) {
        T r = r_b[k * R + n];
        for (int64_t c = 0; c < C; c++) r += xt[c] * r_w[(k * R + n) * C + c];
        const T p = sigmoid(r);
        entropy -= p * std::log(p) + (1 - p) * std::log(1 - p);
      }
  }
  return R > 0 ? entropy / T(M * K * R) : T(0);
}

// Original FFF, hard (inference): each tree descends by σ(r) > 0.5 (r > 0: right) and
// runs its one leaf MLP. leaf (M, K) gets the chosen leaf of each tree.
template <typename T>
void leaf_hard_forward(T* y, T* leaf, const T* x, const T* r_w, const T* r_b, const T* w1, const T* b1,
                       const T* w2, const T* b2, int64_t M, int64_t K, int64_t D, int64_t l, int64_t C) {
  const int64_t R = (int64_t(1) << D) - 1, L = int64_t(1) << D;
  for (int64_t t = 0; t < M; t++) {
    const T* xt = x + t * C;
    for (int64_t c = 0; c < C; c++) y[t * C + c] = 0;
    for (int64_t k = 0; k < K; k++) {
      int64_t n = 0;  // heap index among the tree's routers, then past them: the leaf
      for (int64_t level = 0; level < D; level++) {
        T r = r_b[k * R + n];
        for (int64_t c = 0; c < C; c++) r += xt[c] * r_w[(k * R + n) * C + c];
        n = 2 * n + (sigmoid(r) > T(0.5) ? 2 : 1);
      }
      const int64_t chosen = n - R, first = (k * L + chosen) * l;
      leaf[t * K + k] = T(chosen);
      for (int64_t j = 0; j < l; j++) {
        T h = b1[first + j];
        for (int64_t c = 0; c < C; c++) h += xt[c] * w1[(first + j) * C + c];
        for (int64_t c = 0; c < C; c++) y[t * C + c] += gelu(h) * w2[(first + j) * C + c];
      }
      for (int64_t c = 0; c < C; c++) y[t * C + c] += b2[(k * L + chosen) * C + c];
    }
  }
}

}  // namespace fw::ref
