// Softmax cross-entropy over a vocabulary, fused and in place.
#pragma once
#include <cstdint>

namespace fw {

// logits (M,V) are replaced by probabilities; losses (M) = −log p[target].
void softmax_xent_forward(float* logits, float* losses, const int32_t* targets, int64_t M,
                          int64_t V);

// probs (M,V) are replaced by dlogits = (p − onehot(target)) · scale.
void softmax_xent_backward(float* probs, const int32_t* targets, int64_t M, int64_t V,
                           float scale);

// In-place softmax of each row (sampling), without a loss.
void softmax_rows(float* x, int64_t M, int64_t V);

}  // namespace fw
