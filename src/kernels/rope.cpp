#include "kernels/rope.h"

#include <cmath>

#include "core/threads.h"

namespace fw {

void rope_table(float* cos_t, float* sin_t, int64_t npos, int64_t hd) {
  const int64_t half = hd / 2;
  for (int64_t p = 0; p < npos; p++)
    for (int64_t i = 0; i < half; i++) {
      double inv_freq = std::pow(double(kRopeTheta), -2.0 * double(i) / double(hd));
      double ang = double(p) * inv_freq;
      cos_t[p * half + i] = float(std::cos(ang));
      sin_t[p * half + i] = float(std::sin(ang));
    }
}

static inline float to(float*, float v) { return v; }
static inline bf16 to(bf16*, float v) { return round_bf16(v); }  // a bf16 cache's keys

// Rotate pairs by +angle (sign = 1) or −angle (sign = −1, the transpose), in fp32;
// written as fp32 or rounded to bf16.
template <typename Out>
static inline void rotate(Out* out, const float* in, const float* c, const float* s, int64_t half, float sign) {
#pragma omp simd
  for (int64_t i = 0; i < half; i++) {
    float x0 = in[2 * i], x1 = in[2 * i + 1];
    float si = sign * s[i];
    out[2 * i] = to(out, x0 * c[i] - x1 * si);
    out[2 * i + 1] = to(out, x0 * si + x1 * c[i]);
  }
}

void rope_split_forward(float* q, const KvSlot& kv, const float* qkv, const int32_t* pos,
                        const float* cos_t, const float* sin_t, int64_t B, int64_t T, int64_t H,
                        int64_t hd) {
  const int64_t C = H * hd, half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static) if (B * T * 3 * C >= kParallelFloats)
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      const float* src = qkv + (b * T + t) * 3 * C;
      const int64_t p = pos[b * T + t];
      const float* c = cos_t + p * half;
      const float* s = sin_t + p * half;
      for (int64_t h = 0; h < H; h++) {
        rotate(q + ((b * H + h) * T + t) * hd, src + h * hd, c, s, half, 1.0f);
        const int64_t at = kv.head(b, h, H, hd) + (kv.past(b) + t) * hd;  // the token's cache row
        if (kv.bf16_cache()) {
          rotate(kv.k16 + at, src + C + h * hd, c, s, half, 1.0f);
          for (int64_t i = 0; i < hd; i++) kv.v16[at + i] = round_bf16(src[2 * C + h * hd + i]);
        } else {
          rotate(kv.k + at, src + C + h * hd, c, s, half, 1.0f);
          for (int64_t i = 0; i < hd; i++) kv.v[at + i] = src[2 * C + h * hd + i];
        }
      }
    }
}

void rope_split_backward(float* dqkv, const float* dq, const float* dk, const float* dv,
                         const int32_t* pos, const float* cos_t, const float* sin_t, int64_t B,
                         int64_t T, int64_t H, int64_t hd) {
  const int64_t C = H * hd, half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      float* dst = dqkv + (b * T + t) * 3 * C;
      const int64_t p = pos[b * T + t];
      const float* c = cos_t + p * half;
      const float* s = sin_t + p * half;
      for (int64_t h = 0; h < H; h++) {
        const int64_t row = ((b * H + h) * T + t) * hd;
        rotate(dst + h * hd, dq + row, c, s, half, -1.0f);
        rotate(dst + C + h * hd, dk + row, c, s, half, -1.0f);
        for (int64_t i = 0; i < hd; i++) dst[2 * C + h * hd + i] = dv[row + i];
      }
    }
}

}  // namespace fw
