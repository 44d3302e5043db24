// Mixed-precision matrix products: bf16 inputs, fp32 accumulation and output,
// through oneDNN's matmul primitive (AVX512-BF16 dot products run at twice the
// fp32 FMA rate on CPUs that have them). Same shapes and conventions as matmul.h;
// the activation operands arrive in fp32 and are rounded to bf16 on the way in.
#pragma once
#include <bit>
#include <cstdint>

namespace fw {

using bf16 = uint16_t;  // the upper half of an IEEE float

// Round to nearest even (NaN stays NaN): one value, and n of them (in parallel).
inline bf16 round_bf16(float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  const uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  return bf16(nan ? (u >> 16) | 0x40u : rounded >> 16);
}
void to_bf16(bf16* dst, const float* src, int64_t n);
// Exact; inline, so loops over it vectorise.
inline float bf16_to_float(bf16 x) { return std::bit_cast<float>(uint32_t(x) << 16); }

// y (M,N) = x (M,K) · w (N,K)ᵀ
void matmul_forward_bf16(float* y, const float* x, const bf16* w, int64_t M, int64_t K, int64_t N);

// dx (M,K) = dy (M,N) · w (N,K)   (dx may be null);  dw (N,K) += dy ᵀ · x
void matmul_backward_bf16(float* dx, float* dw, const float* dy, const float* x, const bf16* w,
                          int64_t M, int64_t K, int64_t N);

// Measured bf16 matmul throughput (FLOP/s): the MFU denominator in bf16 mode.
double bf16_peak_flops();

}  // namespace fw
