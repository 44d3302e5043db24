// Exact FLOP accounting of a flopwise model (Chinchilla, Hoffmann et al. 2022,
// Appendix F): forward FLOPs per sequence of length s; backward = 2 × forward.
#pragma once
#include <cstdint>

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
  double mlp;            // 4 s d f
  double final_logits;   // 2 s d V
  int64_t seq_len;

  double forward_per_seq() const;
  double forward_per_token() const { return forward_per_seq() / double(seq_len); }
  double train_per_token() const { return 3.0 * forward_per_token(); }
};

FlopCount count_flops(const ModelConfig& cfg, int64_t seq_len);

// The 6·N approximation per training token (N = all parameters).
double six_n_per_token(const ModelConfig& cfg);

}  // namespace fw
