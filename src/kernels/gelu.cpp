#include "kernels/gelu.h"

#include "kernels/vec_math.h"

namespace fw {

static constexpr float kInvSqrt2 = 0.70710678118654752f;
static constexpr float kInvSqrt2Pi = 0.39894228040143268f;

void gelu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + verf(x[i] * kInvSqrt2));
}

// GELU'(x) = Φ(x) + x·φ(x)
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float xi = x[i];
    float cdf = 0.5f * (1.0f + verf(xi * kInvSqrt2));
    float pdf = kInvSqrt2Pi * vexp(-0.5f * xi * xi);
    dx[i] = dy[i] * (cdf + xi * pdf);
  }
}

}  // namespace fw
