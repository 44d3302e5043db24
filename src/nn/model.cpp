#include "nn/model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "nn/linear.h"
#include "kernels/rmsnorm.h"

namespace fw {

void Model::for_each_param(const ModelConfig& c, ModelWeights& v, const ParamVisitor& f) {
  const int64_t V = c.vocab_size, C = c.d_model;
  v.blocks.assign(size_t(c.n_layers), BlockWeights{});
  v.routers.assign(size_t(c.n_layers), RouterWeights{});
  // The embedding's products are lookups; the FLOP count's embedding and logits terms
  // are written in nn/flops.cpp, tied or not. A tied head is the embedding itself, so
  // in bf16 mode the embedding's bf16 copy is the head's.
  f({"embedding.weight", {V, C}, true, Init::normal}, v.embedding, c.tie_embeddings ? &v.lm_head16 : nullptr);
  for (int64_t l = 0; l < c.n_layers; l++) {
    const ParamVisitor in_block = prefixed("blocks." + std::to_string(l) + ".", f);
    for_each_block_param(c.mlp_shape(), C, v.blocks[size_t(l)], in_block);
    if (c.mod.routed(l)) for_each_router_param(c.mod, c.predictor_hidden(), C, v.routers[size_t(l)], in_block);
  }
  f({"final_norm.weight", {C}, false, Init::ones}, v.final_norm, nullptr);
  if (c.tie_embeddings) v.lm_head = v.embedding;
  else f({"lm_head.weight", {V, C}, true, Init::normal}, v.lm_head, &v.lm_head16);
  // last, so that training the head alone updates one contiguous range
  if (c.classifier()) {
    f({"classifier.weight", {c.labels, C}, true, Init::normal}, v.classifier, &v.classifier16);
    f({"classifier.bias", {c.labels}, false, Init::zeros}, v.classifier_bias, nullptr);
  }
}

Model::Model(const ModelConfig& c) : cfg(c) {
  cfg.validate();
  size_t off = 0;
  ModelWeights layout;
  for_each_param(cfg, layout, [&](const ParamSpec& s, float*&, const uint16_t**) {
    tensors.push_back({s, off});
    off += s.numel();
  });
  params.resize(off);
  w = views(params.data(), nullptr);
}

size_t Model::count_params(const ModelConfig& c) {
  size_t n = 0;
  ModelWeights unused;
  for_each_param(c, unused, [&](const ParamSpec& s, float*&, const uint16_t**) { n += s.numel(); });
  return n;
}

size_t Model::count_embedding_params(const ModelConfig& c) {
  return size_t(c.vocab_size * c.d_model) * (c.tie_embeddings ? 1 : 2);
}

size_t Model::num_embedding_params() const { return count_embedding_params(cfg); }

// base + each tensor's offset, walking the constructor's description again: the
// order cannot disagree.
ModelWeights Model::views(float* base, const uint16_t* base16) const {
  ModelWeights v;
  size_t i = 0;
  for_each_param(cfg, v, [&](const ParamSpec& s, float*& view, const uint16_t** view16) {
    const ParamTensor& t = tensors[i++];
    FW_CHECK(t.name == s.name, "internal: parameter ", i - 1, " is ", t.name, ", expected ", s.name);
    view = base + t.offset;
    if (view16) *view16 = base16 ? base16 + t.offset : nullptr;
  });
  return v;
}

void Model::enable_grads() {
  if (grads.size() != params.size()) grads.resize(params.size());
  dw = views(grads.data(), nullptr);
}

void Model::enable_bf16() {
  params16.resize(params.size());
  sync_bf16();
  w = views(params.data(), params16.data());
}

void Model::disable_bf16() {
  if (!bf16_enabled()) return;
  params16.clear();
  params16.shrink_to_fit();
  w = views(params.data(), nullptr);
}

void Model::sync_bf16() {
  if (bf16_enabled()) to_bf16(params16.data(), params.data(), int64_t(params.size()));
}

// GPT-2 style: N(0, 0.02) for matrices, residual-output projections scaled by
// 1/√(2·n_layers) so the residual stream's variance does not grow with depth;
// norm gains start at 1.
void Model::init_weights(uint64_t seed) {
  Rng rng(seed);
  const float resid_std = 0.02f / std::sqrt(2.0f * float(cfg.n_layers));
  for (const auto& t : tensors) {
    float* p = params.data() + t.offset;
    const size_t n = t.numel();
    switch (t.init) {
      case Init::ones: std::fill(p, p + n, 1.0f); break;
      case Init::zeros: std::fill(p, p + n, 0.0f); break;
      case Init::normal:
      case Init::residual: {
        const float sd = t.init == Init::residual ? resid_std : 0.02f;
        for (size_t i = 0; i < n; i++) p[i] = sd * rng.normal();
      }
    }
  }
}

// ---- activations -------------------------------------------------------------

void Activations::layout(const ModelConfig& cfg, const std::function<void(float*&, size_t)>& f) {
  const size_t BT = size_t(dims.B * dims.T), C = size_t(dims.C);
  res.resize(size_t(cfg.n_layers + 1));
  blocks.resize(size_t(cfg.n_layers));
  routed.resize(size_t(cfg.n_layers));
  for (auto& r : res) f(r, BT * C);
  for (int64_t l = 0; l < cfg.n_layers; l++) {
    if (cfg.mod.routed(l))
      for_each_routed_act(routed[size_t(l)], dims, cfg.mod, cfg.predictor_hidden(), with_backward, f);
    else
      for_each_block_act(blocks[size_t(l)], dims, dims.T, with_backward, f);
  }
  for_each_block_scratch(scratch, dims, with_backward, f);
  f(lnf, BT * C);
  f(rstdf, BT);
  f(logits, BT * size_t(cfg.classifier() ? cfg.labels : cfg.vocab_size));  // the head's width
  f(losses, BT);
  if (with_backward) f(dres, BT * C);
  if (cfg.encoder()) {
    f(chosen_lnf, BT * C);
    if (with_backward) f(dchosen, BT * C);
  }
}

size_t Activations::bytes(const ModelConfig& cfg, int64_t B, int64_t T, bool backward) {
  Activations probe;  // only its layout() is used, to count
  probe.dims = BlockDims::of(cfg, B, T);
  probe.with_backward = backward;
  size_t floats = 0;
  probe.layout(cfg, [&](float*&, size_t n) { floats += Arena::rounded(n); });
  return floats * sizeof(float);
}

Activations::Activations(const Model& m, int64_t B, int64_t T, bool backward)
    : dims(BlockDims::of(m.cfg, B, T)), with_backward(backward) {
  FW_CHECK(T >= 1 && T <= m.cfg.max_seq_len, "config: train.seq_len = ", T,
           " must be in [1, model.max_seq_len = ", m.cfg.max_seq_len, "]");
  layout(m.cfg, [&](float*&, size_t n) { arena_.reserve(n); });
  arena_.allocate();
  layout(m.cfg, [&](float*& p, size_t n) { p = arena_.take(n); });
  pos.resize(size_t(B * T));
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) pos[size_t(b * T + t)] = int32_t(t);
  rope.build(T, dims.hd());
  lengths.assign(size_t(B), int32_t(T));
  allocated_T = T;
}

void Activations::use_length(int64_t T) {
  FW_CHECK(T >= 1 && T <= allocated_T, "internal: rows of ", T, " tokens in activations made for ", allocated_T);
  FW_CHECK(!with_backward, "internal: shorter rows are for inference");
  if (T == dims.T) return;
  dims.T = T;
  for (int64_t b = 0; b < dims.B; b++)
    for (int64_t t = 0; t < T; t++) pos[size_t(b * T + t)] = int32_t(t);  // rope's table covers every t < allocated_T
  lengths.assign(size_t(dims.B), int32_t(T));
}

// ---- forward / backward --------------------------------------------------------

namespace {

// What an encoder's scored tokens are read out by: the LM head over the vocabulary,
// or a fine-tuned encoder's classifier over its labels (with a bias). Parameters or
// gradients, as `w` holds.
struct ReadOut {
  float* w;  // (N, C)
  const uint16_t* w16;
  float* bias;  // (N) or null
  int64_t N;
};
ReadOut read_out(const ModelConfig& c, const ModelWeights& w) {
  if (c.classifier()) return {w.classifier, w.classifier16, w.classifier_bias, c.labels};
  return {w.lm_head, w.lm_head16, nullptr, c.vocab_size};
}

// Sparse prediction (masked-LM): the head and the loss only at the tokens with a
// target, their final-norm rows gathered in order. At a 15% mask rate this skips
// 85% of the head's FLOPs, which the decoder's next-token loss needs at every token.
// A classifier reads out the same way: at [CLS] (sequence) or at the tagged tokens.
ForwardLoss encoder_loss(Model& m, Activations& a, const int32_t* targets, const ForwardMode& mode,
                         ForwardLoss out) {
  const ReadOut head = read_out(m.cfg, m.w);
  const int64_t BT = a.dims.B * a.dims.T, C = a.dims.C, V = head.N;
  a.chosen.clear();
  a.chosen_targets.clear();
  for (int64_t i = 0; i < BT; i++)
    if (targets[i] >= 0) {
      a.chosen.push_back(int32_t(i));
      a.chosen_targets.push_back(targets[i]);
    }
  const int64_t n = int64_t(a.chosen.size());
  FW_CHECK(n > 0, "internal: an encoder batch without scored tokens");
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; r++)
    std::copy_n(a.lnf + int64_t(a.chosen[size_t(r)]) * C, C, a.chosen_lnf + r * C);
  linear_forward(a.logits, a.chosen_lnf, head.w, head.w16, n, C, V);
  if (head.bias) add_bias(a.logits, head.bias, n, V);
  softmax_xent_forward(a.logits, a.losses, a.chosen_targets.data(), n, V);
  double sum = 0;
  for (int64_t r = 0; r < n; r++) sum += a.losses[r];
  out.loss = float(sum / double(n));
  out.scored = n;
  if (!mode.train)
    for (int64_t r = 0; r < n; r++) {
      const float* p = a.logits + r * V;
      out.correct += std::max_element(p, p + V) - p == a.chosen_targets[size_t(r)];
    }
  return out;
}

}  // namespace

ForwardLoss model_forward(Model& m, Activations& a, const int32_t* tokens, const int32_t* targets,
                          const ForwardMode& mode) {
  FW_CHECK(!mode.train || a.with_backward, "internal: a training forward on inference activations");
  if (m.cfg.encoder()) {  // the rows' real lengths, as the caller left them, for every block's attention
    FW_CHECK(int64_t(a.lengths.size()) == a.dims.B, "internal: ", a.lengths.size(), " row lengths for a batch of ",
             a.dims.B);
    for (int32_t n : a.lengths) FW_CHECK(n >= 1 && n <= a.dims.T, "internal: a row of ", n, " real tokens of ", a.dims.T);
    a.dims.mask.lengths = a.lengths.data();
  }
  const BlockDims& d = a.dims;
  const int64_t BT = d.B * d.T, C = d.C, V = m.cfg.vocab_size;
  embedding_forward(a.res[0], tokens, m.w.embedding, BT, C);
  ForwardLoss out;
  for (int64_t l = 0; l < m.cfg.n_layers; l++) {
    const size_t i = size_t(l);
    // each block draws its own randomness (fff_leaf transpositions) from the forward's seed
    const ForwardMode block_mode{mode.train, hash64(mode.seed ^ hash64(uint64_t(l)))};
    if (m.cfg.mod.routed(l)) {
      out.aux_loss += routed_forward(d, block_mode, m.cfg.mod, m.cfg.mod.gate, m.w.blocks[i], m.w.routers[i],
                                     a.routed[i], a.scratch, a.res[i + 1], a.res[i], a.rope);
    } else {
      BlockActs& ba = a.blocks[i];
      out.aux_loss += block_forward(d, block_mode, m.w.blocks[i], ba, a.scratch, a.res[i + 1], a.res[i],
                                    a.pos.data(), a.rope, KvSlot{ba.k, ba.v, d.T}, d.T);
    }
  }
  rmsnorm_forward(a.lnf, a.rstdf, a.res.back(), m.w.final_norm, BT, C);
  if (m.cfg.encoder() && targets) return encoder_loss(m, a, targets, mode, out);
  if (m.cfg.classifier()) {  // no targets: the classifier's logits at every token
    const ReadOut head = read_out(m.cfg, m.w);
    linear_forward(a.logits, a.lnf, head.w, head.w16, BT, C, head.N);
    add_bias(a.logits, head.bias, BT, head.N);
    return out;
  }
  linear_forward(a.logits, a.lnf, m.w.lm_head, m.w.lm_head16, BT, C, V);
  if (!targets) return out;
  softmax_xent_forward(a.logits, a.losses, targets, BT, V);
  double sum = 0;
  for (int64_t i = 0; i < BT; i++) sum += a.losses[i];
  out.loss = float(sum / double(BT));
  out.scored = BT;
  return out;
}

void model_backward(Model& m, Activations& a, const int32_t* tokens, const int32_t* targets,
                    float scale) {
  FW_CHECK(a.with_backward && m.grads.size() == m.params.size(),
           "internal: backward without gradient buffers");
  const BlockDims& d = a.dims;
  const int64_t BT = d.B * d.T, C = d.C, V = m.cfg.vocab_size;
  // loss = scale · mean(losses): dlogits = scale/n · (p − onehot) over the n scored tokens
  float* dlnf = a.scratch.dnorm;
  if (m.cfg.encoder()) {  // sparse prediction: the chosen rows' gradients, scattered back
    const int64_t n = int64_t(a.chosen.size());
    const ReadOut head = read_out(m.cfg, m.w), dhead = read_out(m.cfg, m.dw);
    softmax_xent_backward(a.logits, a.chosen_targets.data(), n, head.N, scale / float(n));
    if (head.bias) add_colsum(dhead.bias, a.logits, n, head.N);
    linear_backward(a.dchosen, dhead.w, a.logits, a.chosen_lnf, head.w, head.w16, n, C, head.N);
    std::fill(dlnf, dlnf + BT * C, 0.0f);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++)
      std::copy_n(a.dchosen + r * C, C, dlnf + int64_t(a.chosen[size_t(r)]) * C);
  } else {
    softmax_xent_backward(a.logits, targets, BT, V, scale / float(BT));
    linear_backward(dlnf, m.dw.lm_head, a.logits, a.lnf, m.w.lm_head, m.w.lm_head16, BT, C, V);
  }
  std::fill(a.dres, a.dres + BT * C, 0.0f);  // rmsnorm_backward accumulates
  rmsnorm_backward(a.dres, m.dw.final_norm, dlnf, a.res.back(), m.w.final_norm, a.rstdf, BT, C);
  for (int64_t l = m.cfg.n_layers - 1; l >= 0; l--) {
    const size_t i = size_t(l);
    if (m.cfg.mod.routed(l))
      routed_backward(d, m.cfg.mod, m.cfg.mod.gate, m.w.blocks[i], m.w.routers[i], m.dw.blocks[i],
                      m.dw.routers[i], a.routed[i], a.scratch, a.dres, a.res[i], a.rope, scale);
    else
      block_backward(d, m.w.blocks[i], m.dw.blocks[i], a.blocks[i], a.scratch, a.dres, a.res[i],
                     a.pos.data(), a.rope, scale);
  }
  embedding_backward(m.dw.embedding, a.dres, tokens, BT, C);
}

}  // namespace fw
