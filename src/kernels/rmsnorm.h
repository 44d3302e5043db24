// RMSNorm: y = x / sqrt(mean(x²) + eps) · w, over the last dimension C.
#pragma once
#include <cstdint>

namespace fw {

constexpr float kNormEps = 1e-5f;

// x, y (M,C); w (C); rstd (M) saved for backward.
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t C);

// dx (M,C) += ∂L/∂x;  dw (C) += ∂L/∂w.  dy (M,C).
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t M, int64_t C);

}  // namespace fw
