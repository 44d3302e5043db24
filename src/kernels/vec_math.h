// exp, erf, GELU, sigmoid and softmax written as plain arithmetic so `#pragma omp simd`
// loops vectorise them (glibc's scalar expf/erff would run one lane at a time). Every
// kernel and layer uses these, so the dense MLP, the trees, the leaf form and the router
// compute the same functions; kernels/reference.h has them in exact (std::) form.
#pragma once
#include <bit>
#include <cstdint>

namespace fw {

// e^x, relative error < 2e-7 over the float range; flushes to 0 below −87.
inline float vexp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact product)
  const float n = __builtin_rintf(x * 1.44269504088896341f);  // rint vectorises; roundeven does not
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  // Taylor series of e^r to degree 7: truncation error < 1e-8 on |r| ≤ 0.347
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;  // 2^n
  return p * std::bit_cast<float>(bits);
}

// erf(x) by Abramowitz & Stegun 7.1.26 (formula error 1.5e-7); evaluated in float
// the absolute error stays below 5e-7.
inline float verf(float x) {
  const float a = x < 0 ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * vexp(-a * a);
  return x < 0 ? -y : y;
}

// GELU, the exact form x·Φ(x) (PyTorch's default nn.GELU), and its derivative
// GELU'(x) = Φ(x) + x·φ(x).
inline float vgelu(float x) { return 0.5f * x * (1.0f + verf(x * 0.70710678118654752f)); }
inline float vgelu_grad(float x) {
  const float cdf = 0.5f * (1.0f + verf(x * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * vexp(-0.5f * x * x);
  return cdf + x * pdf;
}

// σ(z) = 1 / (1 + e^−z); 0.5 exactly at z = 0, so σ(z) > 0.5 ⇔ z > 0.
inline float vsigmoid(float z) { return 1.0f / (1.0f + vexp(-z)); }

// In-place softmax of row[0..n), max-subtracted for range.
inline void softmax_inplace(float* row, int64_t n) {
  float mx = row[0];
  for (int64_t j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) {
    row[j] = vexp(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; j++) row[j] *= inv;
}

}  // namespace fw
