#include "kernels/adamw.h"

#include <cmath>

namespace fw {

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) {
  const float bc1 = 1.0f - std::pow(h.beta1, float(h.step));
  const float bc2 = 1.0f - std::pow(h.beta2, float(h.step));
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] * h.grad_scale;
    float mi = h.beta1 * m[i] + (1.0f - h.beta1) * gi;
    float vi = h.beta2 * v[i] + (1.0f - h.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float mhat = mi / bc1, vhat = vi / bc2;
    p[i] -= h.lr * (mhat / (std::sqrt(vhat) + h.eps) + h.weight_decay * p[i]);
  }
}

double sum_squares(const float* g, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; i++) s += double(g[i]) * g[i];
  return s;
}

}  // namespace fw
