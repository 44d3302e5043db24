#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

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

void attention_forward(float* y, float* P, const float* q, const KvSlot& kv, int64_t B, int64_t H,
                       int64_t Tq, int64_t hd, int64_t ldp, const AttentionMask& mask) {
  const int64_t C = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    const float* qb = q + bh * Tq * hd;
    const float* kb = kv.k_head(b, h, H, hd);
    const float* vb = kv.v_head(b, h, H, hd);
    const int64_t q_off = kv.past(b), Tk = q_off + Tq;  // keys this row's queries may see
    float* Pb = P + bh * Tq * ldp;
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
