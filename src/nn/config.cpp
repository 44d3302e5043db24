#include "nn/config.h"

#include <cmath>

#include "core/error.h"

namespace fw {

void ModelConfig::validate() const {
  auto in_range = [](const char* field, int64_t v, int64_t lo, int64_t hi) {
    FW_CHECK(v >= lo && v <= hi, "config: model.", field, " = ", v, " must be in [", lo, ", ", hi,
             "]");
  };
  in_range("vocab_size", vocab_size, 2, int64_t(1) << 24);
  in_range("d_model", d_model, 2, 65536);
  in_range("n_layers", n_layers, 1, 1024);
  in_range("n_heads", n_heads, 1, 4096);
  in_range("max_seq_len", max_seq_len, 1, 1 << 20);
  in_range("mlp_hidden", mlp_hidden, 0, 1 << 20);
  if (encoder()) {
    FW_CHECK(vocab_size > SpecialTokens::count, "config: model.vocab_size = ", vocab_size,
             " leaves no room for text: an encoder's last ", SpecialTokens::count,
             " ids are [PAD], [CLS], [SEP], [MASK]");
  }
  if (classifier()) {
    FW_CHECK(encoder(), "config: model.head = '", name_of(head), "' needs model.kind = 'encoder'");
    in_range("labels", labels, 2, 1 << 20);
  }
  FW_CHECK(d_model % n_heads == 0, "config: model.n_heads = ", n_heads,
           " does not divide model.d_model = ", d_model);
  if (mod.enabled) {
    FW_CHECK(mod.capacity > 0 && mod.capacity <= 1, "config: mod.capacity = ", mod.capacity,
             " must be in (0, 1]");
    FW_CHECK(mod.every >= 1, "config: mod.every = ", mod.every, " must be >= 1 (1: every block routed)");
    FW_CHECK(mod.every <= n_layers, "config: mod.every = ", mod.every, " routes no block of ", n_layers);
    FW_CHECK(mod.bce_weight >= 0, "config: mod.bce_weight = ", mod.bce_weight, " must be >= 0");
    FW_CHECK(mod.predictor_weight >= 0, "config: mod.predictor_weight = ", mod.predictor_weight, " must be >= 0");
    FW_CHECK(mod.predictor_hidden >= 0, "config: mod.predictor_hidden = ", mod.predictor_hidden, " must be >= 0");
  }
  if (mlp == MlpKind::fff || mlp == MlpKind::fff_leaf) {
    FW_CHECK(fff.trees >= 1 && fff.trees <= 4096, "config: fff.trees = ", fff.trees, " must be in [1, 4096]");
    FW_CHECK(fff.depth >= -1 && fff.depth <= 20, "config: fff.depth = ", fff.depth,
             " must be in [0, 20], or -1 to match the dense MLP's width");
    FW_CHECK(fff.leaf_width >= 1 && fff.leaf_width <= 1 << 16, "config: fff.leaf_width = ", fff.leaf_width,
             " must be in [1, 65536]");
    FW_CHECK(fff.hardening >= 0, "config: fff.hardening = ", fff.hardening, " must be >= 0");
    FW_CHECK(fff.transpose_prob >= 0 && fff.transpose_prob <= 0.5, "config: fff.transpose_prob = ",
             fff.transpose_prob, " must be in [0, 0.5]");
    const MlpShape s = mlp_shape();
    const double neurons = double(s.K) * double(s.kind == MlpKind::fff ? s.tree_nodes() : s.leaves() * s.leaf);
    FW_CHECK(neurons * double(d_model) <= double(int64_t(1) << 34), "config: fff.trees × tree size × d_model = ",
             neurons * double(d_model), " weights per layer is too large");
  }
  FW_CHECK(head_dim() % 2 == 0, "config: model.d_model / model.n_heads = ", head_dim(),
           " must be even (rotary embeddings rotate pairs)");
}

NameTable<ModelKind> names(ModelKind) {
  static constexpr std::pair<ModelKind, const char*> t[] = {{ModelKind::decoder, "decoder"},
                                                            {ModelKind::encoder, "encoder"}};
  return t;
}
NameTable<HeadKind> names(HeadKind) {
  static constexpr std::pair<HeadKind, const char*> t[] = {
      {HeadKind::lm, "lm"}, {HeadKind::sequence, "sequence"}, {HeadKind::tagging, "tagging"}};
  return t;
}
NameTable<MlpKind> names(MlpKind) {
  static constexpr std::pair<MlpKind, const char*> t[] = {
      {MlpKind::dense, "dense"}, {MlpKind::fff, "fff"}, {MlpKind::fff_leaf, "fff_leaf"}, {MlpKind::none, "none"}};
  return t;
}
NameTable<Gate> names(Gate) {
  static constexpr std::pair<Gate, const char*> t[] = {{Gate::raw, "raw"}, {Gate::sigmoid, "sigmoid"}};
  return t;
}
NameTable<Causal> names(Causal) {
  static constexpr std::pair<Causal, const char*> t[] = {
      {Causal::router_bce, "router_bce"}, {Causal::predictor, "predictor"}, {Causal::both, "both"}};
  return t;
}

MlpShape ModelConfig::mlp_shape() const {
  MlpShape s;
  s.F = hidden();
  s.kind = mlp;
  if (mlp == MlpKind::dense || mlp == MlpKind::none) return s;
  s.K = fff.trees;
  s.leaf = fff.leaf_width;
  s.hardening = fff.hardening;
  s.transpose_prob = fff.transpose_prob;
  s.D = fff.depth;
  if (s.D < 0) {  // neurons per tree wanted: F / K
    const double per_tree = std::max(1.0, double(s.F) / double(s.K));
    const double leaves = s.kind == MlpKind::fff ? (per_tree + 1) / 2 : per_tree / double(s.leaf);
    s.D = std::clamp<int64_t>(std::llround(std::log2(std::max(1.0, leaves))), 0, 20);
  }
  return s;
}

int64_t mlm_chosen_per_row(int64_t T, double rate) {
  return std::clamp<int64_t>(std::llround(rate * double(T - 1)), 1, std::max<int64_t>(1, T - 1));
}

int64_t ModConfig::k(int64_t T) const {
  return std::max<int64_t>(1, std::llround(capacity * double(T)));
}

}  // namespace fw
