// Validation loss: the mean cross-entropy over the first `tokens` tokens of a
// stream (whole batches, at least one), always from its start, so two evaluations
// of the same weights agree exactly.
#pragma once
#include <cstdint>

#include "data/loader.h"
#include "nn/model.h"

namespace fw {

struct EvalResult {
  double loss;
  int64_t tokens;
};

EvalResult evaluate(Model& model, Activations& acts, TokenLoader& data, int64_t tokens);

}  // namespace fw
