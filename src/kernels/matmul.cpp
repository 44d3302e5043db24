#include "kernels/matmul.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"
#include "kernels/matmul_bf16.h"

namespace fw {

void sgemm(char trans_a, char trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  FW_CHECK(st == dnnl_success, "oneDNN sgemm failed (status ", int(st), ") for M=", M, " N=", N,
           " K=", K);
}

void matmul_forward(float* y, const float* x, const float* w, int64_t M, int64_t K, int64_t N) {
  sgemm('N', 'T', M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
}

void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                     int64_t M, int64_t K, int64_t N) {
  if (dx) sgemm('N', 'N', M, K, N, 1.0f, dy, N, w, K, 0.0f, dx, K);
  sgemm('T', 'N', N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
}

void add_bias(float* y, const float* b, int64_t M, int64_t N) {
#pragma omp parallel for schedule(static) if (M * N >= kParallelFloats)
  for (int64_t i = 0; i < M; i++)
#pragma omp simd
    for (int64_t j = 0; j < N; j++) y[i * N + j] += b[j];
}

void add_colsum(float* db, const float* d, int64_t M, int64_t N) {
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < N; j++) {
    float s = 0;
    for (int64_t i = 0; i < M; i++) s += d[i * N + j];
    db[j] += s;
  }
}

double sgemm_peak_flops() {
  static double peak = 0;
  if (peak > 0) return peak;
  const int64_t M = 2048, N = 1024, K = 1024;
  Buffer a(M * K), b(N * K), c(M * N);
  std::fill(a.data(), a.data() + M * K, 0.5f);
  std::fill(b.data(), b.data() + N * K, 0.25f);
  const double best = best_seconds(
      [&] { sgemm('N', 'T', M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f, c.data(), N); });
  peak = 2.0 * M * N * K / best;
  return peak;
}

double matmul_peak_flops(bool bf16) { return bf16 ? bf16_peak_flops() : sgemm_peak_flops(); }

}  // namespace fw
