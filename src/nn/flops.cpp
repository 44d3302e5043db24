#include "nn/flops.h"

#include "nn/model.h"

namespace fw {

double FlopCount::forward_per_seq() const {
  return embeddings + attn_qkv + attn_logits + attn_softmax + attn_values + attn_out + mlp +
         final_logits;
}

FlopCount count_flops(const ModelConfig& c, int64_t seq_len) {
  const double s = double(seq_len), V = double(c.vocab_size), d = double(c.d_model),
               L = double(c.n_layers), h = double(c.n_heads), hk = double(c.d_model),
               f = double(c.hidden());
  FlopCount fc;
  fc.seq_len = seq_len;
  fc.embeddings = 2 * s * V * d;
  fc.attn_qkv = L * 6 * s * d * hk;
  fc.attn_logits = L * 2 * s * s * hk;
  fc.attn_softmax = L * 3 * h * s * s;
  fc.attn_values = L * 2 * s * s * hk;
  fc.attn_out = L * 2 * s * hk * d;
  fc.mlp = L * 4 * s * d * f;
  fc.final_logits = 2 * s * d * V;
  return fc;
}

double six_n_per_token(const ModelConfig& c) { return 6.0 * double(Model::count_params(c)); }

}  // namespace fw
