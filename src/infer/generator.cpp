#include "infer/generator.h"

#include <algorithm>

#include "core/error.h"
#include <cstring>

#include "core/timer.h"
#include "kernels/embedding.h"
#include "nn/linear.h"
#include "kernels/rmsnorm.h"

namespace fw {

static BlockDims chunk_dims(const ModelConfig& c, int64_t chunk) {
  return {1, chunk, c.d_model, c.n_heads, c.hidden()};
}

void Generator::layout(Buffers& b, const ModelConfig& c, int64_t cap, int64_t chunk,
                       const std::function<void(float*&, size_t)>& f) {
  const size_t C = size_t(c.d_model), L = size_t(c.n_layers);
  b.k.resize(L);
  b.v.resize(L);
  for (size_t l = 0; l < L; l++) {
    f(b.k[l], size_t(cap) * C);
    f(b.v[l], size_t(cap) * C);
  }
  const BlockDims d = chunk_dims(c, chunk);
  for_each_block_act(b.acts, d, cap, f);
  for_each_block_scratch(b.scratch, d, false, f);
  f(b.x, size_t(chunk) * C);
  f(b.y, size_t(chunk) * C);
  f(b.lnf, size_t(chunk) * C);
  f(b.rstd, size_t(chunk));
  f(b.logits, size_t(chunk * c.vocab_size));
  if (c.mod.enabled) {
    f(b.r, size_t(chunk));
    f(b.pred_p, size_t(chunk));
    f(b.pred_h, size_t(chunk * c.predictor_hidden()));
    f(b.xs, size_t(chunk) * C);
    f(b.ys, size_t(chunk) * C);
  }
}

size_t Generator::bytes(const ModelConfig& cfg, int64_t capacity, int64_t chunk) {
  Buffers b;
  size_t floats = 0;
  layout(b, cfg, capacity, std::min(chunk, capacity), [&](float*&, size_t n) { floats += Arena::rounded(n); });
  return floats * sizeof(float);
}

Generator::Generator(const Model& model, int64_t capacity, int64_t chunk)
    : m_(model), cap_(capacity), chunk_(std::min(chunk, capacity)) {
  FW_CHECK(capacity >= 2, "sample: context capacity ", capacity, " too small");
  layout(b_, m_.cfg, cap_, chunk_, [&](float*&, size_t n) { arena_.reserve(n); });
  arena_.allocate();
  layout(b_, m_.cfg, cap_, chunk_, [&](float*& p, size_t n) { p = arena_.take(n); });
  pos_.resize(size_t(chunk_));
  sel_pos_.resize(size_t(chunk_));
  kv_len_.assign(size_t(m_.cfg.n_layers), 0);
  decisions_.assign(size_t(m_.cfg.n_layers), {});
  rope_.build(cap_, m_.cfg.head_dim());
}

void Generator::reset() {
  len_ = 0;
  std::fill(kv_len_.begin(), kv_len_.end(), 0);
}

void Generator::routed_layer(int64_t l, int64_t k) {
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model;
  const RouterWeights& rw = m_.w.routers[size_t(l)];
  router_logits(b_.r, b_.x, rw.router, k, C);
  const bool by_predictor = c.mod.decides_by_predictor();
  if (by_predictor) predictor_logits(b_.pred_p, b_.pred_h, b_.x, rw, k, C);
  const float* decide = by_predictor ? b_.pred_p : b_.r;  // logit > 0 ⇔ σ > 0.5
  int64_t m = 0;
  auto& dec = decisions_[size_t(l)];
  dec.resize(size_t(k));
  for (int64_t i = 0; i < k; i++) {
    dec[size_t(i)] = {b_.r[i], decide[i] > 0};
    if (decide[i] > 0) {
      std::memcpy(b_.xs + m * C, b_.x + i * C, size_t(C) * 4);
      sel_pos_[size_t(m++)] = pos_[size_t(i)];
    }
  }
  std::memcpy(b_.y, b_.x, size_t(k * C) * 4);  // skipped tokens pass by unchanged
  if (m == 0) return;
  const BlockDims d = chunk_dims(c, m);
  int64_t& n = kv_len_[size_t(l)];
  block_forward(d, m_.w.blocks[size_t(l)], b_.acts, b_.scratch, b_.ys, b_.xs, sel_pos_.data(), rope_,
                KvSlot{b_.k[size_t(l)], b_.v[size_t(l)], cap_, n});
  n += m;
  const Gate gate = gate_of(c.mod);
  for (int64_t j = 0; j < m; j++) {
    const int64_t i = sel_pos_[size_t(j)] - len_;  // row in this chunk
    add_gated_update(b_.y + i * C, b_.xs + j * C, b_.ys + j * C, gate_value(gate, b_.r[i]), C);
  }
}

float* Generator::feed(const int32_t* tokens, int64_t n) {
  FW_CHECK(n >= 1, "sample: nothing to feed");
  FW_CHECK(len_ + n <= cap_, "sample: context of ", len_ + n, " tokens exceeds the cache (", cap_, ")");
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model;
  for (int64_t i = 0; i < n; i++)
    FW_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "sample: token id ", tokens[i],
             " >= model.vocab_size = ", c.vocab_size);
  for (int64_t start = 0; start < n; start += chunk_) {
    const int64_t k = std::min(chunk_, n - start);
    const BlockDims d = chunk_dims(c, k);
    for (int64_t i = 0; i < k; i++) pos_[size_t(i)] = int32_t(len_ + i);
    embedding_forward(b_.x, tokens + start, m_.w.embedding, k, C);
    for (int64_t l = 0; l < c.n_layers; l++) {
      if (c.mod.routed(l)) {
        routed_layer(l, k);
      } else {
        block_forward(d, m_.w.blocks[size_t(l)], b_.acts, b_.scratch, b_.y, b_.x, pos_.data(), rope_,
                      KvSlot{b_.k[size_t(l)], b_.v[size_t(l)], cap_, kv_len_[size_t(l)]});
        kv_len_[size_t(l)] += k;
      }
      std::swap(b_.x, b_.y);
    }
    len_ += k;
    if (start + k == n) {  // logits of the last chunk's tokens
      rmsnorm_forward(b_.lnf, b_.rstd, b_.x, m_.w.final_norm, k, C);
      linear_forward(b_.logits, b_.lnf, m_.w.lm_head, m_.w.lm_head16, k, C, c.vocab_size);
      last_ = k;
    }
  }
  return b_.logits + (last_ - 1) * c.vocab_size;
}

GenerateResult generate(Generator& gen, const std::vector<int32_t>& prompt, int64_t n_new,
                        const SamplingParams& sp, uint64_t seed,
                        const std::function<void(int32_t)>& on_token, const FeedCallback& on_feed) {
  FW_CHECK(!prompt.empty(), "sample: the prompt is empty (give at least one token)");
  Rng rng(seed);
  GenerateResult r;
  const double t0 = now_seconds();
  std::vector<int32_t> context = prompt;
  const int64_t keep = gen.capacity() / 2;
  if (int64_t(context.size()) > gen.capacity())
    context.erase(context.begin(), context.end() - keep);
  // feeds tokens and tells on_feed, one chunk at a time (the generator keeps the
  // decisions of the last chunk only)
  auto feed = [&](const int32_t* t, int64_t n) {
    if (!on_feed) return gen.feed(t, n);
    float* lg = nullptr;
    for (int64_t s = 0; s < n; s += gen.chunk()) {
      const int64_t k = std::min(gen.chunk(), n - s);
      lg = gen.feed(t + s, k);
      on_feed(t + s, k, gen);
    }
    return lg;
  };
  gen.reset();
  float* logits = feed(context.data(), int64_t(context.size()));
  for (int64_t i = 0; i < n_new; i++) {
    int32_t tok = sample_token(logits, gen.vocab_size(), sp, rng);
    r.tokens.push_back(tok);
    context.push_back(tok);
    if (on_token) on_token(tok);
    if (i + 1 == n_new) break;
    if (gen.length() == gen.capacity()) {  // slide the window
      context.erase(context.begin(), context.end() - keep);
      gen.reset();
      logits = feed(context.data(), int64_t(context.size()));
    } else {
      logits = feed(&tok, 1);
    }
  }
  r.seconds = now_seconds() - t0;
  return r;
}

}  // namespace fw
