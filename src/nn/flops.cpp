#include "nn/flops.h"

#include "nn/model.h"

namespace fw {

double FlopCount::train_per_token() const {
  return 3.0 * (forward_per_seq() - mlp + mlp_train) / double(seq_len);
}

std::vector<std::pair<const char*, double>> FlopCount::terms() const {
  return {{"embeddings", embeddings}, {"attn_qkv", attn_qkv},       {"attn_logits", attn_logits},
          {"attn_softmax", attn_softmax}, {"attn_values", attn_values}, {"attn_out", attn_out},
          {"mlp", mlp},               {"final_logits", final_logits}, {"mod_router", router},
          {"mod_predictor", predictor}};
}

double FlopCount::forward_per_seq() const {
  return embeddings + attn_qkv + attn_logits + attn_softmax + attn_values + attn_out + mlp +
         final_logits + router + predictor;
}

// 2 FLOPs per multiply-accumulate, summed over the description's weights of one term
// (or all terms) of a component.
template <class Describe>
static double weight_flops(Describe describe, bool training, FlopTerm term = FlopTerm::none) {
  double macs = 0;
  describe([&](const ParamSpec& s, float*&, const uint16_t**) {
    if (term == FlopTerm::none || s.term == term) macs += training ? s.macs_train : s.macs;
  });
  return 2 * macs;
}

double mlp_flops_per_token(const MlpShape& s, int64_t width, bool training) {
  MlpWeights unused;
  return weight_flops([&](const ParamVisitor& f) { for_each_mlp_param(s, width, unused, f); }, training);
}

FlopCount count_flops(const ModelConfig& c, int64_t seq_len, double mask_rate) {
  const double s = double(seq_len), V = double(c.vocab_size), d = double(c.d_model),
               h = double(c.n_heads), hk = double(c.d_model);
  // the weight terms per token of one block and one router, from their parameter descriptions
  BlockWeights bw;
  RouterWeights rw;
  auto block = [&](const ParamVisitor& f) { for_each_block_param(c.mlp_shape(), c.d_model, bw, f); };
  auto router = [&](const ParamVisitor& f) { for_each_router_param(c.mod, c.predictor_hidden(), c.d_model, rw, f); };
  const double qkv = weight_flops(block, false, FlopTerm::attn_qkv), out = weight_flops(block, false, FlopTerm::attn_out),
               mlp = weight_flops(block, false, FlopTerm::mlp), mlp_train = weight_flops(block, true, FlopTerm::mlp),
               route = weight_flops(router, false, FlopTerm::router),
               predict = weight_flops(router, false, FlopTerm::predictor);
  FlopCount fc{};
  fc.seq_len = seq_len;
  fc.embeddings = 2 * s * V * d;
  for (int64_t l = 0; l < c.n_layers; l++) {
    const bool routed = c.mod.routed(l);
    const double t = routed ? double(c.mod.k(seq_len)) : s;  // tokens the block processes
    fc.attn_qkv += t * qkv;
    fc.attn_logits += 2 * t * t * hk;
    fc.attn_softmax += 3 * h * t * t;
    fc.attn_values += 2 * t * t * hk;
    fc.attn_out += t * out;
    fc.mlp += t * mlp;
    fc.mlp_train += t * mlp_train;
    if (routed) {  // the router and predictor see every token
      fc.router += s * route;
      fc.predictor += s * predict;
    }
  }
  // the tokens the head reads out and its width: every token over the vocabulary
  // (decoder), the masked-LM's chosen ones (encoder), [CLS] over the labels
  // (sequence classifier), or every token over the labels (tagging: an upper bound,
  // as only a word's first token is scored)
  double scored = c.encoder() ? double(mlm_chosen_per_row(seq_len, mask_rate)) : s, width = V;
  if (c.classifier()) {
    scored = c.head == HeadKind::sequence ? 1.0 : s;
    width = double(c.labels);
  }
  fc.final_logits = 2 * scored * d * width;
  return fc;
}

double six_n_per_token(const ModelConfig& c) { return 6.0 * double(Model::count_params(c)); }

nlohmann::json flop_report(const ModelConfig& m, int64_t s, double mask_rate) {
  const FlopCount fc = count_flops(m, s, mask_rate);
  const double n = double(Model::count_params(m)), emb = double(Model::count_embedding_params(m));
  const double six_n = six_n_per_token(m);
  nlohmann::json by_term = nlohmann::json::object();
  for (const auto& [name, value] : fc.terms()) by_term[name] = value / double(s);
  return {{"seq_len", s},
          {"params", n},
          {"params_without_embeddings", n - emb},
          {"forward_flops_per_token", fc.forward_per_token()},
          {"forward_flops_per_seq", fc.forward_per_seq()},
          {"train_flops_per_token", fc.train_per_token()},
          {"train_flops_per_seq", fc.train_per_token() * double(s)},
          {"six_n_per_token", six_n},
          {"exact_over_six_n", fc.train_per_token() / six_n},
          {"forward_flops_per_token_by_term", by_term}};
}

}  // namespace fw
