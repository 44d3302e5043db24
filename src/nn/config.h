// The shape of a flopwise model. Every field has a default; validate() names the
// first field that makes the model impossible.
#pragma once
#include <cstdint>
#include <algorithm>
#include <span>
#include <string>
#include <utility>

namespace fw {

// The config's named choices. Each is an enum in the program and a name in config
// files, checkpoints and --set; names() is the one table for both directions, and a
// name not in it is refused when the config is read.
enum class ModelKind {  // model.kind
  decoder,  // causal attention, next-token prediction (the default)
  encoder,  // bidirectional attention over each row's real tokens, masked-LM pretraining
};
enum class HeadKind {  // model.head: what the final states are read out as
  lm,        // token ids: next-token (decoder) or masked-LM (encoder) prediction
  sequence,  // encoders: one of model.labels classes per sequence, from its [CLS] state
  tagging,   // encoders: one of model.labels classes per token
};
enum class MlpKind {  // the feedforward sub-layer of every block (model.mlp)
  dense,     // fc (F×C), GELU, proj (C×F)
  fff,       // K trees of 2^(D+1)−1 neurons; a token visits D+1 per tree
  fff_leaf,  // K trees of 2^D−1 routers over 2^D leaves of `leaf` neurons
  none,      // no MLP: y = h (the control for FFF)
};
// g(r) in x + g(r)·Δ (mod.gate): raw (r, the paper) or sigmoid (σ(r)). `one` (g = 1, no
// router gradient: a routed block with capacity 1 then equals a dense block) is for
// tests and has no name.
enum class Gate { raw, sigmoid, one };
// How sampling decides causally (mod.causal): the trained remedies for top-k's lookahead.
enum class Causal { router_bce, predictor, both };
// The matrix products' operands (train.matmul_bf16): fp32 (false), bf16 with fp32
// accumulation (true), or automatic ("auto"): training measures both on the model at
// start-up, takes the faster and records it in the run's config.
enum class MatmulPrecision { fp32, bf16, automatic };

template <class E>
using NameTable = std::span<const std::pair<E, const char*>>;
NameTable<ModelKind> names(ModelKind);
NameTable<HeadKind> names(HeadKind);
NameTable<MlpKind> names(MlpKind);
NameTable<Gate> names(Gate);
NameTable<Causal> names(Causal);

template <class E>
const char* name_of(E v) {
  for (const auto& [e, n] : names(E{}))
    if (e == v) return n;
  return "?";
}
// Sets v from its name; false if the name is not one of E's.
template <class E>
bool parse_name(const std::string& s, E& v) {
  for (const auto& [e, n] : names(E{}))
    if (s == n) return v = e, true;
  return false;
}
// "'raw' or 'sigmoid'": E's names for an error message.
template <class E>
std::string name_choices() {
  const auto all = names(E{});
  std::string out;
  for (size_t i = 0; i < all.size(); i++)
    out += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + std::string("'") + all[i].second + "'";
  return out;
}

// Mixture-of-Depths (Raposo et al. 2024): every `every`-th block (blocks every-1,
// 2·every-1, ...) processes only the top-k = max(1, round(capacity·T)) tokens of each
// sequence by a learned router; the others pass by on the residual stream.
struct ModConfig {
  bool enabled = false;
  double capacity = 0.125;
  int64_t every = 2;
  Gate gate = Gate::raw;
  Causal causal = Causal::both;
  double bce_weight = 0.01;     // router BCE loss weight (added to the LM loss)
  double predictor_weight = 1.0;  // predictor BCE loss weight (trains the predictor only)
  int64_t predictor_hidden = 0;   // 0 means d_model / 8

  bool routed(int64_t layer) const { return enabled && layer % every == every - 1; }
  int64_t k(int64_t T) const;  // tokens per sequence a routed block processes
  bool router_bce() const { return causal == Causal::router_bce || causal == Causal::both; }
  bool predictor() const { return causal == Causal::predictor || causal == Causal::both; }
  // Sampling decides by the predictor only when it is the sole remedy trained.
  bool decides_by_predictor() const { return causal == Causal::predictor; }
};

// Fast feedforward trees, for model.mlp = fff (UltraFastBERT trees of
// neurons) and fff_leaf (the original FFF: sigmoid routers over leaf MLPs).
struct FffConfig {
  int64_t trees = 1;            // K, summed
  int64_t depth = -1;           // D; -1: the depth whose width matches the dense MLP's (see MlpShape)
  int64_t leaf_width = 32;      // fff_leaf: neurons per leaf MLP
  double hardening = 1.0;       // fff_leaf: weight of the mean router-decision entropy
  double transpose_prob = 0.1;  // fff_leaf: chance a router's children swap, per token, in training
};

struct MlpShape {
  MlpKind kind = MlpKind::dense;
  int64_t F = 0;               // dense: hidden width
  int64_t K = 0, D = 0, leaf = 0;
  double hardening = 0, transpose_prob = 0;  // fff_leaf training
  int64_t tree_nodes() const { return (int64_t(2) << D) - 1; }  // fff: neurons per tree
  int64_t routers() const { return (int64_t(1) << D) - 1; }     // fff_leaf: per tree
  int64_t leaves() const { return int64_t(1) << D; }            // fff_leaf: per tree
};

// An encoder's special tokens: the last four ids of its vocabulary, above the
// tokenizer's own (model.vocab_size = the tokenizer's vocabulary + 4).
struct SpecialTokens {
  int32_t pad, cls, sep, mask;
  static constexpr int64_t count = 4;
};

// Masked-LM: tokens chosen per sequence of T ([CLS] and T−1 text tokens) at a mask
// rate: round(rate·(T−1)), at least 1.
int64_t mlm_chosen_per_row(int64_t T, double rate);

struct ModelConfig {
  ModelKind kind = ModelKind::decoder;
  HeadKind head = HeadKind::lm;
  int64_t labels = 0;  // classes of a sequence or tagging head (fine-tuning)
  int64_t vocab_size = 256;
  int64_t d_model = 512;
  int64_t n_layers = 6;
  int64_t n_heads = 8;
  int64_t max_seq_len = 256;  // longest training sequence; the KV cache's default size
  int64_t mlp_hidden = 0;     // 0 means 4 · d_model
  bool tie_embeddings = true; // output head shares the token embedding
  MlpKind mlp = MlpKind::dense;
  ModConfig mod;
  FffConfig fff;

  // The MLP's resolved shape. fff.depth = -1 picks, for fff, the D whose K trees of
  // 2^(D+1)−1 neurons come closest to hidden() neurons; for fff_leaf, the D whose
  // K·2^D leaves of leaf_width neurons come closest to it.
  MlpShape mlp_shape() const;
  int64_t hidden() const { return mlp_hidden > 0 ? mlp_hidden : 4 * d_model; }
  bool encoder() const { return kind == ModelKind::encoder; }
  bool classifier() const { return head != HeadKind::lm; }  // a fine-tuned encoder's head
  // The ids text may hold: the whole vocabulary for a decoder, all but the special
  // tokens for an encoder.
  int64_t text_vocab() const { return encoder() ? vocab_size - SpecialTokens::count : vocab_size; }
  SpecialTokens special_tokens() const {  // encoders only
    const int32_t v = int32_t(text_vocab());
    return {v, v + 1, v + 2, v + 3};
  }
  int64_t head_dim() const { return d_model / n_heads; }
  int64_t predictor_hidden() const { return mod.predictor_hidden > 0 ? mod.predictor_hidden : std::max<int64_t>(1, d_model / 8); }
  void validate() const;  // throws fw::Error("config: model.<field> ...")
};

}  // namespace fw
