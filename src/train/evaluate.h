// Validation loss: the mean cross-entropy over the first `tokens` tokens of a
// stream (whole batches, at least one), always from its start, so two evaluations
// of the same weights agree exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "batching/loader.h"
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

// Across `ranks` processes each evaluates its share of the same windows, as one
// process with `ranks` times the batch would: batch i's rows are split among the
// ranks in order. Each returns the mean over its rows; averaging the ranks' losses
// gives the whole loss (tokens and accuracies are this rank's).
EvalResult evaluate(Model& model, Activations& acts, TokenLoader& data, int64_t tokens, int rank = 0,
                    int ranks = 1);

}  // namespace fw
