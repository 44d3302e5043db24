// Validation loss: the mean cross-entropy over the first `tokens` tokens of a
// stream (whole batches, at least one), always from its start, so two evaluations
// of the same weights agree exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "data/loader.h"
#include "nn/model.h"

namespace fw {

struct EvalResult {
  double loss;
  int64_t tokens;
  // MoD, per layer (0 for dense layers): how often the causal decision used at
  // sampling (router σ(r) > 0.5, or the predictor's) agrees with top-k selection
  std::vector<double> causal_accuracy;
  std::vector<double> router_accuracy, predictor_accuracy;  // each remedy's own (NaN if untrained)
  // FFF (model.mlp = fff), per layer: tokens that reached each neuron (K·N, heap
  // order per tree); empty for other MLPs
  std::vector<std::vector<int64_t>> tree_visits;
};

EvalResult evaluate(Model& model, Activations& acts, TokenLoader& data, int64_t tokens);

}  // namespace fw
