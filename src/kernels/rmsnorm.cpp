#include "kernels/rmsnorm.h"

#include <omp.h>

#include <cmath>

#include "core/threads.h"

namespace fw {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static) if (M * C >= kParallelFloats)
  for (int64_t i = 0; i < M; i++) {
    const float* xi = x + i * C;
    float* yi = y + i * C;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += xi[c] * xi[c];
    float r = 1.0f / std::sqrt(ss / C + kNormEps);
    rstd[i] = r;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) yi[c] = xi[c] * r * w[c];
  }
}

// With n = x·r:  dx = r·(dy∘w) − r³/C · x · Σ(dy∘w∘x),  dw = Σ_rows dy∘n.
// Two passes: rows in parallel for dx, then column ranges in parallel for dw, so
// each dw[c] is summed by one thread in row order (deterministic, no scratch).
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    const float* xi = x + i * C;
    const float* dyi = dy + i * C;
    float* dxi = dx + i * C;
    const float r = rstd[i];
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; c++) dot += dyi[c] * w[c] * xi[c];
    const float k = r * r * r * dot / C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) dxi[c] += r * dyi[c] * w[c] - k * xi[c];
  }
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
    for (int64_t i = 0; i < M; i++) {
      const float* xi = x + i * C;
      const float* dyi = dy + i * C;
      const float r = rstd[i];
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) dw[c] += dyi[c] * xi[c] * r;
    }
  }
}

}  // namespace fw
