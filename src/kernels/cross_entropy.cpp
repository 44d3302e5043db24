#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/vec_math.h"

namespace fw {

void softmax_xent_forward(float* logits, float* losses, const int32_t* targets, int64_t M,
                          int64_t V) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float* row = logits + i * V;
    softmax_inplace(row, V);
    losses[i] = -std::log(std::max(row[targets[i]], 1e-30f));
  }
}

void softmax_xent_backward(float* probs, const int32_t* targets, int64_t M, int64_t V,
                           float scale) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float* row = probs + i * V;
    row[targets[i]] -= 1.0f;
#pragma omp simd
    for (int64_t j = 0; j < V; j++) row[j] *= scale;
  }
}

void softmax_rows(float* x, int64_t M, int64_t V) {
  for (int64_t i = 0; i < M; i++) softmax_inplace(x + i * V, V);
}

}  // namespace fw
