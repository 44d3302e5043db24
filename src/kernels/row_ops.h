// Row operations of the conditional kernels (fast feedforward trees, the leaf form):
// dot products of a token's vector with one weight row, and weighted sums of rows.
// Each token there meets its own rows, so these are the unit of work instead of a
// matrix product. Two things make them fast:
//   - independent accumulators: a dot product of C floats is a chain of C/16 fused
//     multiply-adds, each waiting ~4 cycles for the one before; two chains per token
//     and four tokens in lockstep (row_dot4) keep both FMA units busy;
//   - one summation order: row_dot and row_dot4 add in exactly the same order, so a
//     token's λ, and so its path down the tree, is the same bit for bit whichever
//     kernel (per-token walk or batched) and whichever neighbours it was computed with.
// Each comes in fp32 and in bf16 (train.matmul_bf16): there the dot products take the
// token's vector already rounded to bf16 (round_bf16, once per token, not once per row)
// and sum pairs of exact products in fp32 (AVX512-BF16's vdpbf16ps: half the bytes of
// each row to fetch, twice the products per instruction); weighted sums widen bf16
// rows to fp32.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul_bf16.h"  // bf16

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fw {

// Tokens' vectors as the dot products take them: out[i] points at row tok[i] of
// x (n rows of C): x's own rows in fp32; in bf16, rounded copies made in buf.
inline void operand_rows(const float** out, const int32_t* tok, int64_t n, const float* x, int64_t C,
                         std::vector<float>&) {
  for (int64_t i = 0; i < n; i++) out[i] = x + int64_t(tok[i]) * C;
}
inline void operand_rows(const bf16** out, const int32_t* tok, int64_t n, const float* x, int64_t C,
                         std::vector<bf16>& buf) {
  if (buf.size() < size_t(n * C)) buf.resize(size_t(n * C));
  for (int64_t i = 0; i < n; i++) {
    const float* src = x + int64_t(tok[i]) * C;
    bf16* dst = buf.data() + i * C;
    int64_t c = 0;
#if defined(__AVX512BF16__)  // nearest-even in one instruction per 32 values (denormals flush to 0)
    for (; c + 32 <= C; c += 32)
      _mm512_storeu_si512(dst + c, __m512i(_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c))));
#endif
    for (; c < C; c++) dst[c] = round_bf16(src[c]);
    out[i] = dst;
  }
}

#if defined(__AVX512F__)

namespace row_detail {
// Lanes [0, n) of p, the rest 0 (n < 16).
inline __m512 load_head(const float* p, int64_t n) {
  return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
}
// Σ of the 16 lanes as a fixed tree: halves, quarters, pairs, neighbours. (The
// all-lanes masked forms: GCC 12 warns about the plain ones' undefined pass-through.)
inline float sum_lanes(__m512 v) {
  constexpr __mmask16 all = 0xFFFF;
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, all, v, v, 0x4E));  // swap 256-bit halves
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, all, v, v, 0xB1));  // swap 128-bit quarters
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, all, v, 0x4E));        // swap pairs within 128 bits
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, all, v, 0xB1));        // swap neighbours
  return _mm512_cvtss_f32(v);
}
}  // namespace row_detail

// Σ x[i]·w[i], i < n: 16-float chunks alternate between two accumulators, a short
// tail goes to the second, and the two are summed lane-wise, then across lanes.
inline float row_dot(const float* x, const float* w, int64_t n) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), a);
    b = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(w + i + 16), b);
  }
  if (i + 16 <= n) {
    a = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), a);
    i += 16;
  }
  if (i < n) b = _mm512_fmadd_ps(row_detail::load_head(x + i, n - i), row_detail::load_head(w + i, n - i), b);
  return row_detail::sum_lanes(_mm512_add_ps(a, b));
}

namespace row_detail {
// out[j] = row_dot(x[j], w[j], n) for four pairs at once, bit for bit; with kShared
// the four x are one vector (x[0]), loaded once for the four rows.
template <bool kShared>
inline void dot4(const float* const x[4], const float* const w[4], int64_t n, float out[4]) {
  auto xj = [&](int j) { return kShared ? x[0] : x[j]; };
  __m512 a[4], b[4];
  for (int j = 0; j < 4; j++) a[j] = b[j] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; j++) {
      a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xj(j) + i), _mm512_loadu_ps(w[j] + i), a[j]);
      b[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xj(j) + i + 16), _mm512_loadu_ps(w[j] + i + 16), b[j]);
    }
  if (i + 16 <= n) {
    for (int j = 0; j < 4; j++) a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xj(j) + i), _mm512_loadu_ps(w[j] + i), a[j]);
    i += 16;
  }
  if (i < n)
    for (int j = 0; j < 4; j++)
      b[j] = _mm512_fmadd_ps(load_head(xj(j) + i, n - i), load_head(w[j] + i, n - i), b[j]);
  for (int j = 0; j < 4; j++) out[j] = sum_lanes(_mm512_add_ps(a[j], b[j]));
}
}  // namespace row_detail

// out[j] = row_dot(x[j], w[j], n) for four pairs at once, bit for bit.
inline void row_dot4(const float* const x[4], const float* const w[4], int64_t n, float out[4]) {
  row_detail::dot4<false>(x, w, n, out);
}
// out[j] = row_dot(x, w[j], n): one vector against four rows, bit for bit.
inline void row_dot4(const float* x, const float* const w[4], int64_t n, float out[4]) {
  const float* xs[4] = {x, x, x, x};
  row_detail::dot4<true>(xs, w, n, out);
}

namespace row_detail {
// 16 row values as fp32 (the first m when m < 16, the rest 0): fp32 rows as they are,
// bf16 rows widened (exactly).
inline __m512 load16(const float* p, int64_t m = 16) { return m >= 16 ? _mm512_loadu_ps(p) : load_head(p, m); }
inline __m512 load16(const bf16* p, int64_t m = 16) {
  const __m256i h = m >= 16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                            : _mm256_maskz_loadu_epi16(__mmask16((1u << m) - 1), p);
  constexpr __mmask16 all = 0xFFFF;  // (masked forms: see sum_lanes)
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all, _mm512_maskz_cvtepu16_epi32(all, h), 16));
}
}  // namespace row_detail

// y[i] = (accumulate ? y[i] : 0) + Σ_j g[j]·rows[j][i], i < n, j in order: each y
// element sees the same sequence of fused multiply-adds as y += g[j]·rows[j] row by
// row would give, while eight 16-float blocks in flight hide the FMA latency.
template <typename W>  // float or bf16 rows
inline void rows_combine(float* y, const float* g, const W* const* rows, int64_t count, int64_t n,
                         bool accumulate) {
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m512 acc[8];
    for (int u = 0; u < 8; u++) acc[u] = accumulate ? _mm512_loadu_ps(y + i + 16 * u) : _mm512_setzero_ps();
    for (int64_t j = 0; j < count; j++) {
      const __m512 gj = _mm512_set1_ps(g[j]);
      for (int u = 0; u < 8; u++) acc[u] = _mm512_fmadd_ps(gj, row_detail::load16(rows[j] + i + 16 * u), acc[u]);
    }
    for (int u = 0; u < 8; u++) _mm512_storeu_ps(y + i + 16 * u, acc[u]);
  }
  for (; i < n; i += 16) {
    const int64_t m = n - i < 16 ? n - i : 16;
    const __mmask16 k = __mmask16((1u << m) - 1);
    __m512 acc = accumulate ? _mm512_maskz_loadu_ps(k, y + i) : _mm512_setzero_ps();
    for (int64_t j = 0; j < count; j++)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(g[j]), row_detail::load16(rows[j] + i, m), acc);
    _mm512_mask_storeu_ps(y + i, k, acc);
  }
}

#if defined(__AVX512BF16__)
namespace row_detail {
// 32 bf16 values (only the first m when m < 32, the rest 0).
inline __m512bh pairs(const bf16* w, int64_t m) {
  if (m >= 32) return __m512bh(_mm512_loadu_si512(w));
  return __m512bh(_mm512_maskz_loadu_epi16(__mmask32((uint64_t(1) << m) - 1), w));
}
}  // namespace row_detail

inline float row_dot(const bf16* x, const bf16* w, int64_t n) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a = _mm512_dpbf16_ps(a, row_detail::pairs(x + i, 32), row_detail::pairs(w + i, 32));
    b = _mm512_dpbf16_ps(b, row_detail::pairs(x + i + 32, 32), row_detail::pairs(w + i + 32, 32));
  }
  if (i + 32 <= n) {
    a = _mm512_dpbf16_ps(a, row_detail::pairs(x + i, 32), row_detail::pairs(w + i, 32));
    i += 32;
  }
  if (i < n) b = _mm512_dpbf16_ps(b, row_detail::pairs(x + i, n - i), row_detail::pairs(w + i, n - i));
  return row_detail::sum_lanes(_mm512_add_ps(a, b));
}

namespace row_detail {
template <bool kShared>
inline void dot4(const bf16* const x[4], const bf16* const w[4], int64_t n, float out[4]) {
  auto xj = [&](int j) { return kShared ? x[0] : x[j]; };
  __m512 a[4], b[4];
  for (int j = 0; j < 4; j++) a[j] = b[j] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; j++) {
      a[j] = _mm512_dpbf16_ps(a[j], pairs(xj(j) + i, 32), pairs(w[j] + i, 32));
      b[j] = _mm512_dpbf16_ps(b[j], pairs(xj(j) + i + 32, 32), pairs(w[j] + i + 32, 32));
    }
  if (i + 32 <= n) {
    for (int j = 0; j < 4; j++) a[j] = _mm512_dpbf16_ps(a[j], pairs(xj(j) + i, 32), pairs(w[j] + i, 32));
    i += 32;
  }
  if (i < n)
    for (int j = 0; j < 4; j++) b[j] = _mm512_dpbf16_ps(b[j], pairs(xj(j) + i, n - i), pairs(w[j] + i, n - i));
  for (int j = 0; j < 4; j++) out[j] = sum_lanes(_mm512_add_ps(a[j], b[j]));
}
}  // namespace row_detail

inline void row_dot4(const bf16* const x[4], const bf16* const w[4], int64_t n, float out[4]) {
  row_detail::dot4<false>(x, w, n, out);
}
inline void row_dot4(const bf16* x, const bf16* const w[4], int64_t n, float out[4]) {
  const bf16* xs[4] = {x, x, x, x};
  row_detail::dot4<true>(xs, w, n, out);
}

#define FW_ROW_OPS_BF16_NATIVE 1
#endif  // __AVX512BF16__

#else  // portable forms: the same arithmetic in plain loops (one accumulator)

inline float row_dot(const float* x, const float* w, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i] * w[i];
  return s;
}

inline void row_dot4(const float* const x[4], const float* const w[4], int64_t n, float out[4]) {
  for (int j = 0; j < 4; j++) out[j] = row_dot(x[j], w[j], n);
}
inline void row_dot4(const float* x, const float* const w[4], int64_t n, float out[4]) {
  for (int j = 0; j < 4; j++) out[j] = row_dot(x, w[j], n);
}

namespace row_detail {
inline float value(float v) { return v; }
inline float value(bf16 h) { return bf16_to_float(h); }
}  // namespace row_detail

template <typename W>
inline void rows_combine(float* y, const float* g, const W* const* rows, int64_t count, int64_t n,
                         bool accumulate) {
  for (int64_t i = 0; i < n; i++) {
    float acc = accumulate ? y[i] : 0.0f;
    for (int64_t j = 0; j < count; j++) acc += g[j] * row_detail::value(rows[j][i]);
    y[i] = acc;
  }
}

#endif

#if !defined(FW_ROW_OPS_BF16_NATIVE)  // bf16 dot products without AVX512-BF16
inline float row_dot(const bf16* x, const bf16* w, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += bf16_to_float(x[i]) * bf16_to_float(w[i]);
  return s;
}

inline void row_dot4(const bf16* const x[4], const bf16* const w[4], int64_t n, float out[4]) {
  for (int j = 0; j < 4; j++) out[j] = row_dot(x[j], w[j], n);
}
inline void row_dot4(const bf16* x, const bf16* const w[4], int64_t n, float out[4]) {
  for (int j = 0; j < 4; j++) out[j] = row_dot(x, w[j], n);
}
#endif

}  // namespace fw
