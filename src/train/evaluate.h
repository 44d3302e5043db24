// Validation loss: the mean cross-entropy over the first validation windows of a
// stream (validation_windows, batching/loader.h), always from its start, so two
// evaluations of the same weights agree exactly; a file smaller than the tokens asked
// for is read once, whole (EvalResult::whole_file says so). The top-k and the causal
// evaluation (infer/causal_eval.h) read the same windows.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "batching/loader.h"
#include "nn/model.h"

namespace fw {

struct EvalResult {
  double loss;
  int64_t tokens;
  bool whole_file = false;  // the file held fewer windows than asked: all of it was read
  // MoD, per layer (0 for dense layers): how often the causal decision used at
  // sampling (router σ(r) > 0.5, or the predictor's) agrees with top-k selection
  std::vector<double> causal_accuracy;
  std::vector<double> router_accuracy, predictor_accuracy;  // each remedy's own (NaN if untrained)
  // FFF (model.mlp = fff), per layer: tokens that reached each neuron (K·N, heap
  // order per tree); empty for other MLPs
  std::vector<std::vector<int64_t>> tree_visits;
  double accuracy = NAN;  // encoders: share of the chosen tokens whose most likely id is the original
};

// Across `ranks` processes each evaluates its share of the same windows, as one
// process with `ranks` times the batch would: batch i's rows are split among the
// ranks in order, and every rank takes the same number of windows (the count rounded
// down to a multiple of ranks). Each returns the mean over its rows; averaging the
// ranks' losses gives the whole loss (tokens and accuracies are this rank's). The
// last batch may be shorter than acts' B (its own smaller activations).
// Encoders are scored by masked-LM on a fixed masking of each window (mask_rate of its
// tokens chosen, drawn from the window's index alone, so every evaluation of every run
// masks a window the same way).
EvalResult evaluate(Model& model, Activations& acts, TokenLoader& data, int64_t tokens, int rank = 0,
                    int ranks = 1, double mask_rate = 0.15);

}  // namespace fw
