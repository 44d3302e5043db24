#include "nn/flops.h"

#include "nn/model.h"

namespace fw {

double FlopCount::forward_per_seq() const {
  return embeddings + attn_qkv + attn_logits + attn_softmax + attn_values + attn_out + mlp +
         final_logits + router + predictor;
}

double mlp_neurons_per_token(const MlpShape& s) {
  switch (s.kind) {
    case MlpKind::dense: return double(s.F);
    case MlpKind::fff: return double(s.K * (s.D + 1));  // each: a dot for λ, an axpy for the output
    default: return 0;
  }
}

FlopCount count_flops(const ModelConfig& c, int64_t seq_len) {
  const double s = double(seq_len), V = double(c.vocab_size), d = double(c.d_model),
               h = double(c.n_heads), hk = double(c.d_model), f = double(mlp_neurons_per_token(c.mlp_shape())),
               P = double(c.predictor_hidden());
  FlopCount fc{};
  fc.seq_len = seq_len;
  fc.embeddings = 2 * s * V * d;
  for (int64_t l = 0; l < c.n_layers; l++) {
    const bool routed = c.mod.routed(l);
    const double t = routed ? double(c.mod.k(seq_len)) : s;  // tokens the block processes
    fc.attn_qkv += 6 * t * d * hk;
    fc.attn_logits += 2 * t * t * hk;
    fc.attn_softmax += 3 * h * t * t;
    fc.attn_values += 2 * t * t * hk;
    fc.attn_out += 2 * t * hk * d;
    fc.mlp += 4 * t * d * f;  // f: neurons a token runs through (dense: all; fff: K(D+1))
    if (routed) {
      fc.router += 2 * s * d;
      if (c.mod.predictor()) fc.predictor += s * (2 * d * P + 2 * P);
    }
  }
  fc.final_logits = 2 * s * d * V;
  return fc;
}

double six_n_per_token(const ModelConfig& c) { return 6.0 * double(Model::count_params(c)); }

}  // namespace fw
