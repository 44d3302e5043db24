// Validation loss with sampling-time routing: each sequence goes through the KV-cached
// generator, so Mixture-of-Depths layers decide causally per token (as when sampling)
// instead of by top-k over the whole sequence. For dense models it equals the plain
// validation loss. Also reports the fraction of tokens each layer processed.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "batching/loader.h"
#include "infer/generator.h"
#include "nn/model.h"

namespace fw {

struct CausalEvalResult {
  double loss;
  int64_t tokens;
  std::vector<double> processed_fraction;  // per layer (1 for dense layers)
};

// The validation windows of `tokens` tokens (validation_windows in batching/loader.h:
// the same windows the top-k evaluation reads, never wrapping), one sequence of T at a
// time, routed by `thresholds` (per layer: Model::causal_thresholds). on_sequence (may
// be null) sees the generator after each sequence (for routing traces): the sequence's
// input tokens and the generator holding its decisions.
CausalEvalResult evaluate_causal(
    const Model& model, TokenLoader& data, int64_t tokens, int64_t T, const std::vector<float>& thresholds,
    const std::function<void(const std::vector<int32_t>&, const Generator&)>& on_sequence = nullptr);

}  // namespace fw
