// Masked-LM batches for encoders (BERT's recipe, which crammedBERT keeps): each row is
// [CLS] and then T−1 text tokens; m = max(1, round(rate·(T−1))) of the text positions
// are chosen uniformly without replacement (mlm_chosen_per_row, nn/config.h), and of those 80% become [MASK], 10% a
// random text token and 10% stay as they are. The loss is only at chosen positions,
// whose target is the original token; every other target is −1 (not scored).
#pragma once
#include <cstdint>

#include "nn/config.h"

namespace fw {

// text (B,T): rows of the token stream; the last token of each row is dropped for
// [CLS]. inputs, targets (B,T) are written. All draws come from `seed` (row b from
// hash64(seed, b)), so a batch is the same whatever else was drawn before it.
void mask_for_mlm(int32_t* inputs, int32_t* targets, const int32_t* text, int64_t B, int64_t T, double rate,
                  const ModelConfig& model, uint64_t seed);

}  // namespace fw
