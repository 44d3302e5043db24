// Compute-optimal plans: for a training budget C, the law's optimal N and D, and the
// concrete flopwise model shapes (dense and MoD) whose exact training FLOPs per token
// put them on that budget, with their tokens, steps and the law's predicted loss.
#pragma once
#include <string>
#include <vector>

#include "nn/config.h"
#include "scaling/parametric_fit.h"

namespace fw {

// "epoch" (Besiroglu et al.'s refit), "hoffmann" (the paper's published, rounded
// coefficients), "hoffmann-tex" (the same fit unrounded, from the paper's TeX source)
// or the path of a `flopwise fit --json` output (its approach3).
ScalingLaw scaling_law(const std::string& name);

struct PlannedModel {
  ModelConfig model;
  double params, train_flops_per_token, tokens, predicted_loss;
};

// The `count` shapes (layers × width, head size 64, width/layers in [16, 256]) whose
// parameter counts lie nearest N_opt in log scale, built on `base` (vocab, sequence
// length, MLP and MoD settings kept); tokens = C / exact training FLOPs per token.
std::vector<PlannedModel> plan_models(const ScalingLaw& law, double C, const ModelConfig& base, int64_t seq_len,
                                      int count = 3);

}  // namespace fw
