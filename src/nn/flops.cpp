#include "nn/flops.h"

#include "nn/model.h"

namespace fw {

double FlopCount::train_per_token() const {
  return 3.0 * (forward_per_seq() - mlp + mlp_train) / double(seq_len);
}

double FlopCount::forward_per_seq() const {
  return embeddings + attn_qkv + attn_logits + attn_softmax + attn_values + attn_out + mlp +
         final_logits + router + predictor;
}

double mlp_flops_per_token(const MlpShape& s, int64_t width, bool training) {
  const double d = double(width);
  switch (s.kind) {
    case MlpKind::dense: return 4 * d * double(s.F);
    case MlpKind::fff: return 4 * d * double(s.K * (s.D + 1));  // per neuron: a dot for λ, an axpy out
    case MlpKind::fff_leaf:  // a router is one dot; a leaf neuron a dot and an axpy
      return training ? 2 * d * double(s.K * s.routers()) + 4 * d * double(s.K * s.leaves() * s.leaf)
                      : 2 * d * double(s.K * s.D) + 4 * d * double(s.K * s.leaf);
    default: return 0;
  }
}

FlopCount count_flops(const ModelConfig& c, int64_t seq_len) {
  const double s = double(seq_len), V = double(c.vocab_size), d = double(c.d_model),
               h = double(c.n_heads), hk = double(c.d_model), mlp = mlp_flops_per_token(c.mlp_shape(), c.d_model, false),
               mlp_train = mlp_flops_per_token(c.mlp_shape(), c.d_model, true),
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
    fc.mlp += t * mlp;
    fc.mlp_train += t * mlp_train;
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
