#include "kernels/rmsnorm.h"

#include <omp.h>

#include <cmath>
#include <vector>

namespace fw {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static)
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
// dw is reduced per thread and summed in a fixed order, so results are deterministic.
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C) {
  int nt = omp_get_max_threads();
  std::vector<float> dw_part(size_t(nt) * C, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    float* dwp = dw_part.data() + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < M; i++) {
      const float* xi = x + i * C;
      const float* dyi = dy + i * C;
      float* dxi = dx + i * C;
      float r = rstd[i];
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; c++) dot += dyi[c] * w[c] * xi[c];
      float k = r * r * r * dot / C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) {
        dxi[c] += r * dyi[c] * w[c] - k * xi[c];
        dwp[c] += dyi[c] * xi[c] * r;
      }
    }
  }
  for (int t = 0; t < nt; t++)
    for (int64_t c = 0; c < C; c++) dw[c] += dw_part[size_t(t) * C + c];
}

}  // namespace fw
