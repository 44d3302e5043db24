// Picking the next token from logits: temperature, top-k, top-p (nucleus), seed.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace fw {

struct SamplingParams {
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // keep the smallest set of tokens whose mass reaches top_p
  int64_t vocab_limit = 0;   // draw only ids below this (a tokenizer smaller than the model); 0: all
  // the ids a model with V outputs may draw: [0, this)
  int64_t candidates(int64_t V) const { return vocab_limit > 0 ? (vocab_limit < V ? vocab_limit : V) : V; }
};

// logits (V) are overwritten (scaled, softmaxed). Draws one uniform from rng.
int32_t sample_token(float* logits, int64_t V, const SamplingParams& p, Rng& rng);

// The model's log-probabilities at one position: those of its distribution itself
// (softmax of the logits at temperature 1, before any truncation), not of the
// sampler's. Of the token drawn, and of the `top` most likely tokens, most likely
// first (ties by id).
struct TokenLogprobs {
  float logprob = 0;  // of the token drawn
  std::vector<std::pair<int32_t, float>> top;  // (token, log-probability)
};
TokenLogprobs token_logprobs(const float* logits, int64_t V, int32_t token, int64_t top);

}  // namespace fw
