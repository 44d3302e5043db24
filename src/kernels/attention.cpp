#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/row_ops.h"  // widened bf16 loads, lane sums
#include "kernels/vec_math.h"

#include "kernels/matmul.h"

namespace fw {

// Each (batch, head) pair is independent: the OpenMP loop runs over pairs and the
// sgemms inside run single-threaded (oneDNN does not nest inside a parallel region).
// Queries go in blocks of kRows; a block multiplies only against the keys its
// last row can see, so the causal mask's upper triangle is mostly never computed
// (and a padded row's padding keys never).
// The backward's four products per block accumulate into dK and dV, so it takes
// larger blocks (measured on the bench shapes: 64 rows lost to call overhead).
static constexpr int64_t kRows = 64, kRowsBackward = 128;

namespace {

// n rows of a bf16 cache as fp32, for the products of a block of queries.
void widen_rows(float* dst, const bf16* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
}

#if defined(__AVX512F__)
constexpr int64_t kMaxOneQueryHd = 256;
bool one_query_kernel(int64_t hd) { return hd % 16 == 0 && hd <= kMaxOneQueryHd; }

// Decoding's case, one query against n keys and values of a bf16 cache: each key's
// score in registers, the softmax into p (n), then y (hd) = Σ p_j·v_j, rows widened
// as they load. Bound by reading the rows, which is why the cache is bf16: through
// sgemm, after widening them into fp32 rows, a step at batch 16 and ~170 tokens of
// context (d=512, 8 heads) took 275-319 µs per layer against 191-225 here, and
// 299-428 with an fp32 cache (best of 300 calls, six layers' caches in turn so that
// they come from memory as in a step).
void attend_one(float* y, float* p, const float* q, const bf16* k, const bf16* v, int64_t n, int64_t hd, float scale) {
  const int64_t U = hd / 16;
  __m512 qv[kMaxOneQueryHd / 16];
  for (int64_t u = 0; u < U; u++) qv[u] = _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_loadu_ps(q + 16 * u));
  for (int64_t j = 0; j < n; j++) {
    const bf16* kj = k + j * hd;
    __m512 a = _mm512_mul_ps(qv[0], row_detail::load16(kj));
    for (int64_t u = 1; u < U; u++) a = _mm512_fmadd_ps(qv[u], row_detail::load16(kj + 16 * u), a);
    p[j] = row_detail::sum_lanes(a);
  }
  softmax_inplace(p, n);
  __m512 acc[kMaxOneQueryHd / 16];
  for (int64_t u = 0; u < U; u++) acc[u] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j++) {
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int64_t u = 0; u < U; u++) acc[u] = _mm512_fmadd_ps(pj, row_detail::load16(v + j * hd + 16 * u), acc[u]);
  }
  for (int64_t u = 0; u < U; u++) _mm512_storeu_ps(y + 16 * u, acc[u]);
}
#endif  // without AVX-512 every bf16 cache is read through widened rows

}  // namespace

void attention_forward(float* y, float* P, const float* q, const KvSlot& kv, int64_t B, int64_t H,
                       int64_t Tq, int64_t hd, int64_t ldp, const AttentionMask& mask) {
  const int64_t C = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    const float* qb = q + bh * Tq * hd;
    const int64_t q_off = kv.past(b), Tk = q_off + Tq;  // keys this row's queries may see
    float* Pb = P + bh * Tq * ldp;
#if defined(__AVX512F__)
    if (kv.bf16_cache() && Tq == 1 && one_query_kernel(hd)) {
      const int64_t n = mask.visible(b, 0, q_off, Tk), at = kv.head(b, h, H, hd);
      attend_one(y + b * C + h * hd, Pb, qb, kv.k16 + at, kv.v16 + at, n, hd, scale);
      std::fill(Pb + n, Pb + Tk, 0.0f);
      continue;
    }
#endif
    const float *kb, *vb;  // (Tk, hd) keys and values in fp32
    if (!kv.bf16_cache()) {
      kb = kv.k_head(b, h, H, hd);
      vb = kv.v_head(b, h, H, hd);
    } else {  // the rows the queries see, widened
      static thread_local std::vector<float> rows;
      const int64_t n = mask.visible(b, Tq - 1, q_off, Tk), at = kv.head(b, h, H, hd);
      if (rows.size() < size_t(2 * n * hd)) rows.resize(size_t(2 * n * hd));
      widen_rows(rows.data(), kv.k16 + at, n * hd);
      widen_rows(rows.data() + n * hd, kv.v16 + at, n * hd);
      kb = rows.data();
      vb = rows.data() + n * hd;
    }
    for (int64_t i0 = 0; i0 < Tq; i0 += kRows) {
      const int64_t rows = std::min(kRows, Tq - i0);
      const int64_t nk = mask.visible(b, i0 + rows - 1, q_off, Tk);  // keys the block's last row sees
      float* Pblk = Pb + i0 * ldp;
      sgemm('N', 'T', rows, nk, hd, scale, qb + i0 * hd, hd, kb, hd, 0.0f, Pblk, ldp);  // scores
      for (int64_t i = i0; i < i0 + rows; i++) {
        float* row = Pb + i * ldp;
        const int64_t n = mask.visible(b, i, q_off, Tk);  // visible keys
        softmax_inplace(row, n);
        for (int64_t j = n; j < Tk; j++) row[j] = 0.0f;
      }
      sgemm('N', 'N', rows, hd, nk, 1.0f, Pblk, ldp, vb, hd, 0.0f, y + (b * Tq + i0) * C + h * hd, C);
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dy,
                        const float* P, const float* q, const float* k, const float* v, int64_t B,
                        int64_t H, int64_t T, int64_t hd, const AttentionMask& mask) {
  const int64_t C = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    const int64_t off = bh * T * hd;
    const float* Pb = P + bh * T * T;
    float* dS = scratch + int64_t(omp_get_thread_num()) * T * T;  // (kRowsBackward, T) used
    std::fill(dk + off, dk + off + T * hd, 0.0f);
    std::fill(dv + off, dv + off + T * hd, 0.0f);
    for (int64_t i0 = 0; i0 < T; i0 += kRowsBackward) {
      const int64_t rows = std::min(kRowsBackward, T - i0), nk = mask.visible(b, i0 + rows - 1, 0, T);
      const float* Pblk = Pb + i0 * T;
      const float* dO = dy + (b * T + i0) * C + h * hd;  // (rows, hd) with row stride C
      sgemm('N', 'T', rows, nk, hd, 1.0f, dO, C, v + off, hd, 0.0f, dS, T);          // dP = dO·Vᵀ
      sgemm('T', 'N', nk, hd, rows, 1.0f, Pblk, T, dO, C, 1.0f, dv + off, hd);      // dV += Pᵀ·dO
      for (int64_t r = 0; r < rows; r++) {  // softmax backward: dS = P∘(dP − Σ P∘dP)·scale
        const int64_t i = i0 + r;
        const float* p = Pblk + r * T;
        float* d = dS + r * T;
        float dot = 0;
        const int64_t n = mask.visible(b, i, 0, T);
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < n; j++) dot += p[j] * d[j];
#pragma omp simd
        for (int64_t j = 0; j < nk; j++) d[j] = p[j] * (d[j] - dot) * scale;
      }
      sgemm('N', 'N', rows, hd, nk, 1.0f, dS, T, k + off, hd, 0.0f, dq + off + i0 * hd, hd);  // dQ = dS·K
      sgemm('T', 'N', nk, hd, rows, 1.0f, dS, T, q + off + i0 * hd, hd, 1.0f, dk + off, hd);  // dK += dSᵀ·Q
    }
  }
}

}  // namespace fw
