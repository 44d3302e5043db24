#include "kernels/gelu.h"

#include "core/threads.h"
#include "kernels/vec_math.h"

namespace fw {

void gelu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelFloats)
  for (int64_t i = 0; i < n; i++) y[i] = vgelu(x[i]);
}

void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * vgelu_grad(x[i]);
}

}  // namespace fw
