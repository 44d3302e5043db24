// GELU, exact form x·Φ(x) with the error function (PyTorch's default nn.GELU).
#pragma once
#include <cstdint>

namespace fw {

void gelu_forward(float* y, const float* x, int64_t n);
// dx = dy · GELU'(x)   (overwrites dx; dx may alias dy)
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n);

}  // namespace fw
