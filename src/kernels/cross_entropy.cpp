#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/vec_math.h"

namespace fw {

static inline void softmax_row(float* row, int64_t V) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < V; j++) mx = std::max(mx, row[j]);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < V; j++) {
    row[j] = vexp(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < V; j++) row[j] *= inv;
}

void softmax_xent_forward(float* logits, float* losses, const int32_t* targets, int64_t M,
                          int64_t V) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float* row = logits + i * V;
    softmax_row(row, V);
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
  for (int64_t i = 0; i < M; i++) softmax_row(x + i * V, V);
}

}  // namespace fw
