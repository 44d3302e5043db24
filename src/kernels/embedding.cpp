#include "kernels/embedding.h"

#include <cstring>

#include "core/threads.h"

namespace fw {

void embedding_forward(float* x, const int32_t* tokens, const float* wte, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static) if (M * C >= kParallelFloats)
  for (int64_t i = 0; i < M; i++) std::memcpy(x + i * C, wte + int64_t(tokens[i]) * C, C * 4);
}

void embedding_backward(float* dwte, const float* dx, const int32_t* tokens, int64_t M, int64_t C) {
  // Parallel over channels: each thread owns a slice of every row, so no two threads
  // write the same float and the summation order per float is fixed.
#pragma omp parallel
  {
    for (int64_t i = 0; i < M; i++) {
      float* d = dwte + int64_t(tokens[i]) * C;
      const float* s = dx + i * C;
#pragma omp for simd schedule(static) nowait
      for (int64_t c = 0; c < C; c++) d[c] += s[c];
    }
  }
}

}  // namespace fw
