#include "kernels/fff.h"

#include <omp.h>

#include "kernels/vec_math.h"

namespace fw {

void fff_forward(float* y, float* path, float* lam, const float* x, const float* w_in,
                 const float* b, const float* w_out, const TreeShape& s, int64_t M) {
  const int64_t C = s.C, N = s.nodes(), P = s.path();
#pragma omp parallel for schedule(static) if (M > 1)
  for (int64_t t = 0; t < M; t++) {
    const float* xt = x + t * C;
    float* yt = y + t * C;
    for (int64_t c = 0; c < C; c++) yt[c] = 0.0f;
    for (int64_t k = 0; k < s.K; k++) {
      const int64_t base = k * N;  // tree k's first neuron
      float* pt = path + (t * s.K + k) * P;
      float* lt = lam + (t * s.K + k) * P;
      int64_t n = 0;
      for (int64_t level = 0; level < P; level++) {
        const float l = vdot(xt, w_in + (base + n) * C, C) + b[base + n];
        vaxpy(yt, vgelu(l), w_out + (base + n) * C, C);
        pt[level] = float(n);
        lt[level] = l;
        n = 2 * n + (l > 0 ? 2 : 1);
      }
    }
  }
}

void fff_backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy,
                  const float* x, const float* path, const float* lam, const float* w_in,
                  const float* w_out, const TreeShape& s, int64_t M) {
  const int64_t C = s.C, N = s.nodes(), P = s.path(), KP = s.K * P;
  // per token: dλ of each visited neuron, and the input gradient
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++) {
    float* dxt = dx + t * C;
    const float* dyt = dy + t * C;
    for (int64_t c = 0; c < C; c++) dxt[c] = 0.0f;
    for (int64_t v = t * KP; v < (t + 1) * KP; v++) {  // visit v: tree (v / P) % K, level v % P
      const int64_t row = ((v / P) % s.K) * N + int64_t(path[v]);
      dlam[v] = vgelu_grad(lam[v]) * vdot(dyt, w_out + row * C, C);
      vaxpy(dxt, dlam[v], w_in + row * C, C);
    }
  }
  // per neuron: weight gradients. Thread i owns the neurons with row % threads == i.
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), me = omp_get_thread_num();
    for (int64_t v = 0; v < M * KP; v++) {
      const int64_t row = ((v / P) % s.K) * N + int64_t(path[v]);
      if (row % threads != me) continue;
      const int64_t t = v / KP;
      vaxpy(dw_in + row * C, dlam[v], x + t * C, C);
      db[row] += dlam[v];
      vaxpy(dw_out + row * C, vgelu(lam[v]), dy + t * C, C);
    }
  }
}

}  // namespace fw
