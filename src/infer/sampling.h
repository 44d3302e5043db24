// Picking the next token from logits: temperature, top-k, top-p (nucleus), seed.
#pragma once
#include <cstdint>

#include "core/rng.h"

namespace fw {

struct SamplingParams {
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // keep the smallest set of tokens whose mass reaches top_p
  int64_t vocab_limit = 0;   // draw only ids below this (a tokenizer smaller than the model); 0: all
};

// logits (V) are overwritten (scaled, softmaxed). Draws one uniform from rng.
int32_t sample_token(float* logits, int64_t V, const SamplingParams& p, Rng& rng);

}  // namespace fw
