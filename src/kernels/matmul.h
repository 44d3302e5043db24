// Matrix products through oneDNN's sgemm. Weights are stored (out, in) as in
// PyTorch, so a linear layer is y = x · Wᵀ.
#pragma once
#include <cstdint>

namespace fw {

// Row-major C(M,N) = alpha · op(A) · op(B) + beta · C, op = transpose when 'T'.
void sgemm(char trans_a, char trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// y (M,N) = x (M,K) · w (N,K)ᵀ
void matmul_forward(float* y, const float* x, const float* w, int64_t M, int64_t K, int64_t N);

// dx (M,K) = dy (M,N) · w (N,K)   (dx may be null)
// dw (N,K) += dy (M,N)ᵀ · x (M,K)  (accumulates: gradient accumulation across micro-batches)
void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                     int64_t M, int64_t K, int64_t N);

// A bias: y (M,N) += b (N) on every row; and its gradient: db (N) += the column sums
// of d (M,N).
void add_bias(float* y, const float* b, int64_t M, int64_t N);
void add_colsum(float* db, const float* d, int64_t M, int64_t N);

// Measured fp32 sgemm throughput of this machine (FLOP/s) with the current thread
// count: the denominator of MFU. Measured once per process, on square-ish products.
double sgemm_peak_flops();

// This machine's measured peak for the matrix products in bf16 (bf16_peak_flops) or
// fp32 (sgemm_peak_flops): the MFU denominator.
double matmul_peak_flops(bool bf16);

}  // namespace fw
