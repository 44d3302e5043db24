// What a trained model does with its compute, for the report: where Mixture-of-Depths
// sends tokens (a routing map of a text, and the share processed by part of speech on
// the Brown Corpus) and how much of each fast feedforward tree's level is in use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "batching/loader.h"
#include "tokenizers/tokenizer.h"
#include "nn/model.h"

namespace fw {

// One pass of the KV-cached generator over `tokens` (causal routing, as when sampling).
struct RoutingMap {
  std::vector<int64_t> layers;              // the routed layers
  std::vector<std::string> text;            // [token] its text
  std::vector<int> processed;               // [token] routed layers that processed it
  std::vector<std::vector<float>> router;   // [token][routed layer] router logit
};
RoutingMap routing_map(const Model& model, const Tokenizer& tok, const std::vector<int32_t>& tokens);

// Over `tokens` validation tokens in sequences of T (causal routing): per word class,
// how many tokens and the mean share of routed layers that processed them.
struct PosRouting {
  std::vector<std::string> classes;
  std::vector<int64_t> tokens;
  std::vector<double> processed;
};
PosRouting routing_by_pos(const Model& model, TokenLoader& val, const std::vector<int32_t>& pos_ids,
                          const std::vector<std::string>& tag_names, int64_t tokens, int64_t T);

// FFF (model.mlp = fff) trees: per layer, per level 0..D, the share of that level's
// neurons (over all trees) that at least one of the counted tokens reached.
std::vector<std::vector<double>> fff_level_usage(const MlpShape& s,
                                                 const std::vector<std::vector<int64_t>>& visits);

}  // namespace fw
