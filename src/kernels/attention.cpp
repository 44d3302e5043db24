#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/vec_math.h"

#include "kernels/matmul.h"

namespace fw {

// Each (batch, head) pair is independent: the OpenMP loop runs over pairs and the
// sgemms inside run single-threaded (oneDNN does not nest inside a parallel region).
void attention_forward(float* y, float* P, const float* q, const float* k, const float* v,
                       int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t Tcap, int64_t hd,
                       int64_t q_off) {
  const int64_t C = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    const float* qb = q + bh * Tq * hd;
    const float* kb = k + bh * Tcap * hd;
    const float* vb = v + bh * Tcap * hd;
    float* Pb = P + bh * Tq * Tk;
    sgemm('N', 'T', Tq, Tk, hd, scale, qb, hd, kb, hd, 0.0f, Pb, Tk);  // scores
    for (int64_t i = 0; i < Tq; i++) {
      float* row = Pb + i * Tk;
      const int64_t n = std::min(Tk, q_off + i + 1);  // visible keys
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; j++) mx = std::max(mx, row[j]);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < n; j++) {
        row[j] = vexp(row[j] - mx);
        sum += row[j];
      }
      const float inv = 1.0f / sum;
#pragma omp simd
      for (int64_t j = 0; j < n; j++) row[j] *= inv;
      for (int64_t j = n; j < Tk; j++) row[j] = 0.0f;
    }
    sgemm('N', 'N', Tq, hd, Tk, 1.0f, Pb, Tk, vb, hd, 0.0f, y + b * Tq * C + h * hd, C);
  }
}

void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dy,
                        const float* P, const float* q, const float* k, const float* v, int64_t B,
                        int64_t H, int64_t T, int64_t hd) {
  const int64_t C = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    const int64_t off = bh * T * hd;
    const float* Pb = P + bh * T * T;
    const float* dyb = dy + b * T * C + h * hd;  // (T, hd) with row stride C
    float* dS = scratch + int64_t(omp_get_thread_num()) * T * T;
    sgemm('N', 'T', T, T, hd, 1.0f, dyb, C, v + off, hd, 0.0f, dS, T);   // dP = dO·Vᵀ
    sgemm('T', 'N', T, hd, T, 1.0f, Pb, T, dyb, C, 0.0f, dv + off, hd);  // dV = Pᵀ·dO
    for (int64_t i = 0; i < T; i++) {  // softmax backward: dS = P∘(dP − Σ P∘dP)·scale
      const float* p = Pb + i * T;
      float* d = dS + i * T;
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j <= i; j++) dot += p[j] * d[j];
#pragma omp simd
      for (int64_t j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot) * scale;
    }
    sgemm('N', 'N', T, hd, T, 1.0f, dS, T, k + off, hd, 0.0f, dq + off, hd);  // dQ = dS·K
    sgemm('T', 'N', T, hd, T, 1.0f, dS, T, q + off, hd, 0.0f, dk + off, hd);  // dK = dSᵀ·Q
  }
}

}  // namespace fw
