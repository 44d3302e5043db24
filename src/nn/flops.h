// Exact FLOP accounting of a flopwise model (Chinchilla, Hoffmann et al. 2022,
// Appendix F): forward FLOPs per sequence of length s; backward = 2 × forward.
// (For MoD the router's and predictor's backward are counted at 2× too, a slight
// over-count for the predictor, whose input gradient is stopped.)
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/config.h"

namespace fw {

struct FlopCount {
  // forward FLOPs per sequence, by term
  double embeddings;     // 2 s V d
  double attn_qkv;       // 6 s d (h·k)            (all layers)
  double attn_logits;    // 2 s² (h·k)
  double attn_softmax;   // 3 h s²
  double attn_values;    // 2 s² (h·k)
  double attn_out;       // 2 s (h·k) d
  double mlp;            // 4 s d f, f the MLP neurons a token uses (fff: K(D+1)); see mlp_flops_per_token
  double mlp_train;      // the MLP as trained: = mlp except fff_leaf's soft mixture of all leaves
  double final_logits;   // 2 s d V; encoders: only at the m chosen tokens, 2 m d V; classifiers: see count_flops
  // Mixture-of-Depths routed blocks run on c·s tokens, c = k/s: their projections and
  // MLP count c×, their attention (logits, softmax, values) c²× (both already in the
  // terms above); the router and the causal predictor are counted here.
  double router;         // 2 s d per routed block
  double predictor;      // s (2 d P + 2 P) per routed block
  int64_t seq_len;

  double forward_per_seq() const;
  double forward_per_token() const { return forward_per_seq() / double(seq_len); }
  double train_per_token() const;  // 3 × the training forward
  // The forward terms per sequence, named as `flopwise flops` prints them, in order.
  std::vector<std::pair<const char*, double>> terms() const;
};

// mask_rate: an encoder's masked-LM rate (train.mask_rate), which sets how many
// tokens of each sequence the output head runs on (sparse prediction).
FlopCount count_flops(const ModelConfig& cfg, int64_t seq_len, double mask_rate = 0.15);

// Forward FLOPs of one block's MLP per token: dense 4dF, fff 4d·K(D+1), fff_leaf
// 2d·K·D (the routers on the path) + 4d·K·l (one leaf) or, training, 2d·K·R + 4d·K·L·l.
// Like every weight term here, 2 × the multiply-accumulates its parameter description
// states (nn/params.h).
double mlp_flops_per_token(const MlpShape& s, int64_t width, bool training);

// The 6·N approximation per training token (N = all parameters).
double six_n_per_token(const ModelConfig& cfg);

// What `flopwise flops --json` prints: parameter counts, forward and training FLOPs per
// token and per sequence of seq_len, next to 6N, and the forward terms per token (the
// encoder's masked-LM rate sets its sparse prediction's share).
nlohmann::json flop_report(const ModelConfig& cfg, int64_t seq_len, double mask_rate);

}  // namespace fw
