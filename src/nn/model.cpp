#include "nn/model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul_bf16.h"
#include "nn/linear.h"
#include "kernels/rmsnorm.h"

namespace fw {

Model::Model(const ModelConfig& c) : cfg(c) {
  cfg.validate();
  const int64_t V = cfg.vocab_size, C = cfg.d_model;
  const MlpShape mlp = cfg.mlp_shape();
  size_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay, Init init) {
    tensors.push_back({std::move(name), off, std::move(shape), decay, init});
    off += tensors.back().numel();
  };
  add("embedding.weight", {V, C}, true, Init::normal);
  for (int64_t l = 0; l < cfg.n_layers; l++) {
    std::string p = "blocks." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {C}, false, Init::ones);
    add(p + "attn.qkv.weight", {3 * C, C}, true, Init::normal);
    add(p + "attn.out.weight", {C, C}, true, Init::residual);
    if (mlp.kind != MlpKind::none) add(p + "mlp_norm.weight", {C}, false, Init::ones);
    if (mlp.kind == MlpKind::dense) {
      add(p + "mlp.fc.weight", {mlp.F, C}, true, Init::normal);
      add(p + "mlp.proj.weight", {C, mlp.F}, true, Init::residual);
    } else if (mlp.kind == MlpKind::fff) {  // K trees of N neurons, heap order, one row each
      const int64_t KN = mlp.K * mlp.tree_nodes();
      add(p + "mlp.fff.w_in", {KN, C}, true, Init::normal);
      add(p + "mlp.fff.b_in", {KN}, false, Init::zeros);
      add(p + "mlp.fff.w_out", {KN, C}, true, Init::residual);
    } else if (mlp.kind == MlpKind::fff_leaf) {  // K trees: R routers, L leaves of l neurons
      const int64_t KR = mlp.K * mlp.routers(), KL = mlp.K * mlp.leaves(), KLl = KL * mlp.leaf;
      if (KR > 0) {
        add(p + "mlp.fff_leaf.router.weight", {KR, C}, true, Init::normal);
        add(p + "mlp.fff_leaf.router.bias", {KR}, false, Init::zeros);
      }
      add(p + "mlp.fff_leaf.w1", {KLl, C}, true, Init::normal);
      add(p + "mlp.fff_leaf.b1", {KLl}, false, Init::zeros);
      add(p + "mlp.fff_leaf.w2", {KLl, C}, true, Init::residual);
      add(p + "mlp.fff_leaf.b2", {KL, C}, false, Init::zeros);
    }
    if (cfg.mod.routed(l)) {
      add(p + "router.weight", {C}, false, Init::normal);
      if (cfg.mod.predictor()) {
        const int64_t P = cfg.predictor_hidden();
        add(p + "predictor.fc.weight", {P, C}, true, Init::normal);
        add(p + "predictor.fc.bias", {P}, false, Init::zeros);
        add(p + "predictor.out.weight", {1, P}, true, Init::normal);
        add(p + "predictor.out.bias", {1}, false, Init::zeros);
      }
    }
  }
  add("final_norm.weight", {C}, false, Init::ones);
  if (!cfg.tie_embeddings) add("lm_head.weight", {V, C}, true, Init::normal);
  params.resize(off);
  w = views(params.data(), nullptr);
}

size_t Model::count_params(const ModelConfig& c) {
  const size_t V = c.vocab_size, C = c.d_model, L = c.n_layers, P = c.predictor_hidden();
  const MlpShape mlp = c.mlp_shape();
  const size_t per_mlp = size_t(mlp_params(mlp, c.d_model)) + (mlp.kind == MlpKind::none ? 0 : C);
  size_t routed = 0;
  for (int64_t l = 0; l < c.n_layers; l++) routed += c.mod.routed(l);
  const size_t per_router = C + (c.mod.predictor() ? P * C + P + P + 1 : 0);
  return V * C * (c.tie_embeddings ? 1 : 2) + L * (C + 4 * C * C + per_mlp) + C + routed * per_router;
}

size_t Model::count_embedding_params(const ModelConfig& c) {
  return size_t(c.vocab_size * c.d_model) * (c.tie_embeddings ? 1 : 2);
}

size_t Model::num_embedding_params() const { return count_embedding_params(cfg); }

ModelWeights Model::views(float* base, const uint16_t* base16) const {
  ModelWeights v;
  size_t i = 0;
  auto next = [&]() { return base + tensors[i++].offset; };
  // the bf16 copy of the tensor just taken by next()
  auto copy16 = [&]() { return base16 ? base16 + tensors[i - 1].offset : nullptr; };
  v.embedding = next();
  for (int64_t l = 0; l < cfg.n_layers; l++) {
    BlockWeights b;
    b.attn_norm = next();
    b.qkv = next();
    b.qkv16 = copy16();
    b.out = next();
    b.out16 = copy16();
    const MlpKind kind = cfg.mlp_shape().kind;
    b.mlp_norm = kind == MlpKind::none ? nullptr : next();
    if (kind == MlpKind::dense) {
      b.mlp.fc = next();
      b.mlp.fc16 = copy16();
      b.mlp.proj = next();
      b.mlp.proj16 = copy16();
    } else if (kind == MlpKind::fff) {  // (the tree CMM always runs in fp32)
      b.mlp.w_in = next();
      b.mlp.b_in = next();
      b.mlp.w_out = next();
    } else if (kind == MlpKind::fff_leaf) {  // (fp32 too)
      if (cfg.mlp_shape().routers() > 0) {
        b.mlp.r_w = next();
        b.mlp.r_b = next();
      }
      b.mlp.w1 = next();
      b.mlp.b1 = next();
      b.mlp.w2 = next();
      b.mlp.b2 = next();
    }
    v.blocks.push_back(b);
    RouterWeights r;
    if (cfg.mod.routed(l)) {
      r.router = next();
      if (cfg.mod.predictor()) {
        r.pred_hidden = cfg.predictor_hidden();
        r.pred_fc = next();
        r.pred_fc_b = next();
        r.pred_out = next();
        r.pred_out_b = next();
      }
    }
    v.routers.push_back(r);
  }
  v.final_norm = next();
  v.lm_head = cfg.tie_embeddings ? v.embedding : next();
  if (base16) v.lm_head16 = base16 + (v.lm_head - base);
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
      for_each_block_act(blocks[size_t(l)], dims, dims.T, f);
  }
  for_each_block_scratch(scratch, dims, with_backward, f);
  f(lnf, BT * C);
  f(rstdf, BT);
  f(logits, BT * size_t(cfg.vocab_size));
  f(losses, BT);
  if (with_backward) f(dres, BT * C);
}

static BlockDims dims_of(const ModelConfig& c, int64_t B, int64_t T, bool train) {
  return {B, T, c.d_model, c.n_heads, c.mlp_shape(), train};
}

size_t Activations::bytes(const ModelConfig& cfg, int64_t B, int64_t T, bool backward) {
  Activations probe;  // only its layout() is used, to count
  probe.dims = dims_of(cfg, B, T, backward);
  probe.with_backward = backward;
  size_t floats = 0;
  probe.layout(cfg, [&](float*&, size_t n) { floats += Arena::rounded(n); });
  return floats * sizeof(float);
}

Activations::Activations(const Model& m, int64_t B, int64_t T, bool backward)
    : dims(dims_of(m.cfg, B, T, backward)), with_backward(backward) {
  FW_CHECK(T >= 1 && T <= m.cfg.max_seq_len, "config: train.seq_len = ", T,
           " must be in [1, model.max_seq_len = ", m.cfg.max_seq_len, "]");
  layout(m.cfg, [&](float*&, size_t n) { arena_.reserve(n); });
  arena_.allocate();
  layout(m.cfg, [&](float*& p, size_t n) { p = arena_.take(n); });
  pos.resize(size_t(B * T));
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) pos[size_t(b * T + t)] = int32_t(t);
  rope.build(T, dims.hd());
}

// ---- forward / backward --------------------------------------------------------

float model_forward(Model& m, Activations& a, const int32_t* tokens, const int32_t* targets) {
  const BlockDims& d = a.dims;
  const int64_t BT = d.B * d.T, C = d.C, V = m.cfg.vocab_size;
  embedding_forward(a.res[0], tokens, m.w.embedding, BT, C);
  a.aux_loss = 0;
  for (int64_t l = 0; l < m.cfg.n_layers; l++) {
    const size_t i = size_t(l);
    const uint64_t seed = hash64(a.noise_seed ^ hash64(uint64_t(l)));  // fff_leaf transpositions
    if (m.cfg.mod.routed(l)) {
      a.routed[i].inner.mlp.seed = seed;
      a.aux_loss += routed_forward(d, m.cfg.mod, m.cfg.mod.gate, m.w.blocks[i], m.w.routers[i],
                                   a.routed[i], a.scratch, a.res[i + 1], a.res[i], a.rope);
      continue;
    }
    BlockActs& ba = a.blocks[i];
    ba.mlp.seed = seed;
    block_forward(d, m.w.blocks[i], ba, a.scratch, a.res[i + 1], a.res[i], a.pos.data(), a.rope,
                  KvSlot{ba.k, ba.v, d.T}, d.T);
    a.aux_loss += d.mlp.hardening * ba.mlp.entropy;  // fff_leaf's hardening loss (else 0)
  }
  rmsnorm_forward(a.lnf, a.rstdf, a.res.back(), m.w.final_norm, BT, C);
  linear_forward(a.logits, a.lnf, m.w.lm_head, m.w.lm_head16, BT, C, V);
  if (!targets) return 0.0f;
  softmax_xent_forward(a.logits, a.losses, targets, BT, V);
  double sum = 0;
  for (int64_t i = 0; i < BT; i++) sum += a.losses[i];
  return float(sum / double(BT));
}

void model_backward(Model& m, Activations& a, const int32_t* tokens, const int32_t* targets,
                    float scale) {
  FW_CHECK(a.with_backward && m.grads.size() == m.params.size(),
           "internal: backward without gradient buffers");
  const BlockDims& d = a.dims;
  const int64_t BT = d.B * d.T, C = d.C, V = m.cfg.vocab_size;
  // loss = scale · mean(losses): dlogits = scale/BT · (p − onehot)
  softmax_xent_backward(a.logits, targets, BT, V, scale / float(BT));
  float* dlnf = a.scratch.dnorm;
  linear_backward(dlnf, m.dw.lm_head, a.logits, a.lnf, m.w.lm_head, m.w.lm_head16, BT, C, V);
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
