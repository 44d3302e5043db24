// The shape of a flopwise model. Every field has a default; validate() names the
// first field that makes the model impossible.
#pragma once
#include <cstdint>

namespace fw {

struct ModelConfig {
  int64_t vocab_size = 256;
  int64_t d_model = 512;
  int64_t n_layers = 6;
  int64_t n_heads = 8;
  int64_t max_seq_len = 256;  // longest training sequence; the KV cache's default size
  int64_t mlp_hidden = 0;     // 0 means 4 · d_model
  bool tie_embeddings = true; // output head shares the token embedding

  int64_t hidden() const { return mlp_hidden > 0 ? mlp_hidden : 4 * d_model; }
  int64_t head_dim() const { return d_model / n_heads; }
  void validate() const;  // throws fw::Error("config: model.<field> ...")
};

}  // namespace fw
