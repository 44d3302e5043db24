// Compute-optimal plans: for a training budget C, the law's optimal N and D, and the
// concrete flopwise model shapes (dense and MoD) whose exact training FLOPs per token
// put them on that budget, with their tokens, steps and the law's predicted loss.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "nn/config.h"
#include "scaling/parametric_fit.h"

namespace fw {

// "epoch" (Besiroglu et al.'s refit), "hoffmann" (the paper's published, rounded
// coefficients), "hoffmann-tex" (the same fit unrounded, from the paper's TeX source)
// or the path of a `flopwise fit --json` output (its approach3).
ScalingLaw scaling_law(const std::string& name);

// Laws by variant: a published law or a `fit --json` output describes one variant
// (dense, or the `variant` it was fitted with --variant); a sweep's fit.json holds one
// per variant. `fit` picks "approach3" or "grid" from fitted files.
std::map<std::string, ScalingLaw> scaling_laws(const std::string& name, const std::string& fit = "approach3");

struct PlannedModel {
  ModelConfig model;
  double params, train_flops_per_token, tokens, predicted_loss;
};

// The `count` shapes (layers × width, head size 64, width/layers in [16, 256]) with the
// lowest loss the law predicts for them at budget C, where each shape's tokens are
// C / its exact training FLOPs per token (so the choice holds for MoD too, whose
// FLOPs per token are far from 6N), built on `base` (vocab, sequence length, MLP and
// MoD settings kept).
std::vector<PlannedModel> plan_models(const ScalingLaw& law, double C, const ModelConfig& base, int64_t seq_len,
                                      int count = 3);

// What `flopwise plan --json` prints: for budget C under the laws `law` names (fit
// picks approach3 or grid from fitted files), the planned shapes of `variant` (dense
// or mod; "": both) built on base (steps from train's batch and sequence length),
// with the laws' optima and the hours at `rate` training FLOP/s. A variant without a
// law of its own gets dense's shapes and no predicted loss.
nlohmann::json plan_report(const std::string& law, const std::string& fit, const std::string& variant, double C,
                           const ModelConfig& base, const TrainConfig& train, double rate);

}  // namespace fw
