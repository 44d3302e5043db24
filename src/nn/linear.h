// A linear layer's products, y = x·Wᵀ and its gradients, in the precision the
// weights carry: bf16 operands with fp32 accumulation when a bf16 copy of W is
// present (train.matmul_bf16), fp32 otherwise. Master weights and gradients are
// fp32 either way. Inference may also hold W packed (kernels/packed_matmul.h).
#pragma once
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "kernels/packed_matmul.h"

namespace fw {

// y (M,N) = x (M,K) · w (N,K)ᵀ; through `packed`, W packed once in the precision the
// layer runs in, when the caller made such a copy (decoding: infer/generator.h).
inline void linear_forward(float* y, const float* x, const float* w, const bf16* w16, int64_t M,
                           int64_t K, int64_t N, const PackedMatrix* packed = nullptr) {
  if (packed) packed->forward(y, x, M);
  else if (w16) matmul_forward_bf16(y, x, w16, M, K, N);
  else matmul_forward(y, x, w, M, K, N);
}

// dx (M,K) = dy · w (dx may be null);  dw (N,K) += dyᵀ · x
inline void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                            const bf16* w16, int64_t M, int64_t K, int64_t N) {
  if (w16) matmul_backward_bf16(dx, dw, dy, x, w16, M, K, N);
  else matmul_backward(dx, dw, dy, x, w, M, K, N);
}

}  // namespace fw
