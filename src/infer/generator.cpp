#include "infer/generator.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/timer.h"
#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "nn/linear.h"

namespace fw {

KvCache kv_cache_named(const std::string& name, const std::string& what) {
  FW_CHECK(name == "fp32" || name == "bf16", what, " '", name, "' is not 'fp32' or 'bf16'");
  return name == "bf16" ? KvCache::bf16 : KvCache::fp32;
}

void Generator::layout(Buffers& b, const ModelConfig& c, int64_t cap, int64_t tokens, int64_t rows, KvCache kv,
                       const std::function<void(float*&, size_t)>& f) {
  const size_t C = size_t(c.d_model), L = size_t(c.n_layers), N = size_t(tokens);
  const size_t cache = size_t(rows * cap) * C, floats = kv == KvCache::bf16 ? (cache + 1) / 2 : cache;
  b.k.resize(L);
  b.v.resize(L);
  for (size_t l = 0; l < L; l++) {
    f(b.k[l], floats);
    f(b.v[l], floats);
  }
  // (1, N) tokens with P rows of cap keys covers both shapes a block runs in:
  // (1, T ≤ chunk) for a feed and (B ≤ rows, 1) for a step
  const BlockDims d = BlockDims::of(c, 1, tokens);
  for_each_block_act(b.acts, d, cap, false, f);
  for_each_block_scratch(b.scratch, d, false, f);
  f(b.x, N * C);
  f(b.y, N * C);
  f(b.lnf, N * C);
  f(b.rstd, N);
  f(b.logits, N * size_t(c.vocab_size));
  if (c.mod.enabled) {
    f(b.r, N);
    f(b.pred_p, N);
    f(b.pred_h, N * size_t(c.predictor_hidden()));
    f(b.xs, N * C);
    f(b.ys, N * C);
  }
}

// The products a Generator packs: weight W (N,K), its bf16 copy, and where the
// packed copy's address goes in the weights the Generator runs with.
struct PackedProduct {
  const float* w;
  const bf16* w16;
  int64_t N, K;
  const PackedMatrix** slot;
};
static std::vector<PackedProduct> packed_products(const ModelConfig& c, ModelWeights& w) {
  const int64_t C = c.d_model, F = c.mlp_shape().F;
  std::vector<PackedProduct> out;
  for (BlockWeights& b : w.blocks) {
    out.push_back({b.qkv, b.qkv16, 3 * C, C, &b.qkv_packed});
    out.push_back({b.out, b.out16, C, C, &b.out_packed});
    if (c.mlp_shape().kind != MlpKind::dense) continue;
    out.push_back({b.mlp.fc, b.mlp.fc16, F, C, &b.mlp.fc_packed});
    out.push_back({b.mlp.proj, b.mlp.proj16, C, F, &b.mlp.proj_packed});
  }
  out.push_back({w.lm_head, w.lm_head16, c.vocab_size, C, &w.lm_head_packed});
  return out;
}

size_t Generator::bytes(const ModelConfig& cfg, int64_t capacity, int64_t chunk, int64_t rows, int64_t batch_tokens,
                        KvCache kv) {
  Buffers b;
  size_t floats = 0;
  layout(b, cfg, capacity, std::max({std::min(chunk, capacity), rows, batch_tokens}), rows, kv,
         [&](float*&, size_t n) { floats += Arena::rounded(n); });
  ModelWeights shapes;
  shapes.blocks.resize(size_t(cfg.n_layers));
  size_t packed = 0;
  for (const PackedProduct& p : packed_products(cfg, shapes)) packed += PackedMatrix::bytes(p.N, p.K, false);
  return floats * sizeof(float) + packed;
}

Generator::Generator(const Model& model, int64_t capacity, int64_t chunk, int64_t rows, int64_t batch_tokens,
                     KvCache kv)
    : m_(model), cap_(capacity), chunk_(std::min(chunk, capacity)), rows_(rows), kv_(kv) {
  FW_CHECK(!model.cfg.encoder(), "sample: this model is an encoder (model.kind = 'encoder'): it fills in masked "
           "tokens and does not generate text");
  FW_CHECK(capacity >= 2, "sample: context capacity ", capacity, " too small");
  FW_CHECK(rows >= 1, "sample: batch of ", rows, " sequences");
  tokens_ = std::max({chunk_, rows_, batch_tokens});
  layout(b_, m_.cfg, cap_, tokens_, rows_, kv_, [&](float*&, size_t n) { arena_.reserve(n); });
  arena_.allocate();
  layout(b_, m_.cfg, cap_, tokens_, rows_, kv_, [&](float*& p, size_t n) { p = arena_.take(n); });
  for (auto* v : {&pos_, &sel_pos_}) v->resize(size_t(tokens_));
  for (auto* v : {&sel_rows_, &past_, &sel_entry_}) v->resize(size_t(tokens_));
  sel_spans_.resize(size_t(tokens_));
  groups_.resize(size_t(tokens_));
  mixed_tokens_.resize(size_t(tokens_));
  mixed_spans_.resize(size_t(rows_ + 1));
  mixed_out_.resize(size_t(rows_));
  len_.assign(size_t(rows_), 0);
  seen_.assign(size_t(rows_), 0);
  processed_.resize(size_t(tokens_));
  kv_len_.assign(size_t(rows_ * m_.cfg.n_layers), 0);
  decisions_.assign(size_t(m_.cfg.n_layers), {});
  set_thresholds(m_.causal_thresholds(true));
  rope_.build(cap_, m_.cfg.head_dim());
  w_ = m_.w;
  const std::vector<PackedProduct> products = packed_products(m_.cfg, w_);
  packed_.reserve(products.size());  // w_ points into packed_: no reallocation
  for (const PackedProduct& p : products) {
    packed_.emplace_back(p.w, p.w16, p.N, p.K);
    *p.slot = &packed_.back();
  }
}

void Generator::set_thresholds(const std::vector<float>& per_layer) {
  FW_CHECK(int64_t(per_layer.size()) == m_.cfg.n_layers, "sample: ", per_layer.size(),
           " routing thresholds for ", m_.cfg.n_layers, " layers");
  threshold_ = per_layer;
}

void Generator::reset() {
  for (int64_t r = 0; r < rows_; r++) reset_row(r);
}

void Generator::reset_row(int64_t row) {
  FW_CHECK(row >= 0 && row < rows_, "sample: sequence ", row, " outside the batch of ", rows_);
  len_[size_t(row)] = 0;
  std::fill_n(kv_len_.begin() + row * m_.cfg.n_layers, m_.cfg.n_layers, 0);
}

void Generator::run_block(int64_t l, const Span* spans, int64_t S, float* y, const float* x, const int32_t* pos) {
  const int64_t L = m_.cfg.n_layers;
  int64_t N = 0, at = 0;  // tokens, batch rows so far
  for (int64_t g = 0; g < S; g++) {
    const Span& sp = spans[g];
    for (int64_t b = 0; b < sp.B; b++) past_[size_t(at + b)] = kv_len_[size_t(sp.rows[b] * L + l)];
    float *k = b_.k[size_t(l)], *v = b_.v[size_t(l)];
    groups_[size_t(g)] = {sp.B, sp.T,
                          kv_ == KvCache::bf16 ? KvSlot{nullptr, nullptr, cap_, sp.rows, past_.data() + at,
                                                        reinterpret_cast<bf16*>(k), reinterpret_cast<bf16*>(v)}
                                               : KvSlot{k, v, cap_, sp.rows, past_.data() + at}};
    N += sp.B * sp.T;
    at += sp.B;
  }
  block_forward_groups(BlockDims::of(m_.cfg, 1, N), ForwardMode{}, w_.blocks[size_t(l)], b_.acts, b_.scratch, y, x,
                       pos, rope_, groups_.data(), S, cap_);
  for (int64_t g = 0; g < S; g++)
    for (int64_t b = 0; b < spans[g].B; b++) kv_len_[size_t(spans[g].rows[b] * L + l)] += spans[g].T;
}

void Generator::routed_layer(int64_t l, const Span* spans, int64_t S) {
  const ModelConfig& c = m_.cfg;
  int64_t N = 0;
  for (int64_t g = 0; g < S; g++) N += spans[g].B * spans[g].T;
  const int64_t C = c.d_model;
  const RouterWeights& rw = w_.routers[size_t(l)];
  const float* decider = nullptr;
  causal_route(processed_.data(), &decider, b_.r, b_.pred_p, b_.pred_h, b_.x, rw, c.mod,
               threshold_[size_t(l)], N, C);
  auto& dec = decisions_[size_t(l)];
  dec.resize(size_t(N));
  for (int64_t i = 0; i < N; i++) dec[size_t(i)] = {b_.r[i], decider[i], processed_[size_t(i)] != 0};
  std::memcpy(b_.y, b_.x, size_t(N * C) * 4);  // skipped tokens pass by unchanged
  // The processed tokens, gathered in entry order, as spans of their own: a step's
  // processed rows form one span of rows (one token each), a chunk's processed tokens
  // one span of its sequence.
  int64_t m = 0, P = 0;
  for (int64_t g = 0, first = 0; g < S; first += spans[g].B * spans[g].T, g++) {
    const Span& sp = spans[g];
    const int64_t m0 = m;
    for (int64_t i = first; i < first + sp.B * sp.T; i++) {
      if (!dec[size_t(i)].processed) continue;
      std::memcpy(b_.xs + m * C, b_.x + i * C, size_t(C) * 4);
      sel_pos_[size_t(m)] = pos_[size_t(i)];
      sel_rows_[size_t(m)] = sp.rows[(i - first) / sp.T];
      sel_entry_[size_t(m++)] = i;
    }
    if (m > m0) sel_spans_[size_t(P++)] = sp.T == 1 ? Span{&sel_rows_[size_t(m0)], m - m0, 1} : Span{sp.rows, 1, m - m0};
  }
  if (m == 0) return;
  run_block(l, sel_spans_.data(), P, b_.ys, b_.xs, sel_pos_.data());
  const Gate gate = c.mod.gate;
  for (int64_t j = 0; j < m; j++) {
    const int64_t i = sel_entry_[size_t(j)];
    add_gated_update(b_.y + i * C, b_.xs + j * C, b_.ys + j * C, gate_value(gate, b_.r[i]), C);
  }
}

void Generator::forward(const Span* spans, int64_t S, const int32_t* tokens, const int64_t* outputs, int64_t n_out) {
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model;
  int64_t N = 0;
  for (int64_t g = 0; g < S; g++) {
    const Span& sp = spans[g];
    FW_CHECK(sp.B == 1 || sp.T == 1, "internal: a span of ", sp.B, " sequences x ", sp.T, " tokens");
    for (int64_t i = 0; i < sp.B * sp.T; i++, N++) {
      FW_CHECK(tokens[N] >= 0 && tokens[N] < c.vocab_size, "sample: token id ", tokens[N],
               " >= model.vocab_size = ", c.vocab_size);
      pos_[size_t(N)] = int32_t(len_[size_t(sp.rows[i / sp.T])] + i % sp.T);
    }
  }
  embedding_forward(b_.x, tokens, w_.embedding, N, C);
  for (int64_t l = 0; l < c.n_layers; l++) {
    if (c.mod.routed(l)) routed_layer(l, spans, S);
    else run_block(l, spans, S, b_.y, b_.x, pos_.data());
    std::swap(b_.x, b_.y);
  }
  for (int64_t g = 0; g < S; g++)
    for (int64_t b = 0; b < spans[g].B; b++) len_[size_t(spans[g].rows[b])] += spans[g].T;
  const float* last = b_.x;  // the entries whose logits are asked for: all, or those listed, gathered
  if (outputs) {
    for (int64_t i = 0; i < n_out; i++) std::memcpy(b_.y + i * C, b_.x + outputs[i] * C, size_t(C) * 4);
    last = b_.y;
    N = n_out;
  }
  rmsnorm_forward(b_.lnf, b_.rstd, last, w_.final_norm, N, C);
  linear_forward(b_.logits, b_.lnf, w_.lm_head, w_.lm_head16, N, C, c.vocab_size, w_.lm_head_packed);
}

float* Generator::feed(const int32_t* tokens, int64_t n, int64_t row) {
  FW_CHECK(n >= 1, "sample: nothing to feed");
  FW_CHECK(row >= 0 && row < rows_, "sample: sequence ", row, " outside the batch of ", rows_);
  const int64_t len = len_[size_t(row)];
  FW_CHECK(len + n <= cap_, "sample: context of ", len + n, " tokens exceeds the cache (", cap_, ")");
  int64_t last = 0;
  for (int64_t start = 0; start < n; start += chunk_) {
    last = std::min(chunk_, n - start);
    const Span sp{&row, 1, last};
    forward(&sp, 1, tokens + start);
  }
  return b_.logits + (last - 1) * m_.cfg.vocab_size;
}

// The checks step() and mixed() make of the sequences they are given: each one in the
// batch, listed once (seen_ marks them), with room for `n` more tokens.
void Generator::check_row(int64_t row, int64_t n) {
  FW_CHECK(row >= 0 && row < rows_, "sample: sequence ", row, " outside the batch of ", rows_);
  FW_CHECK(!seen_[size_t(row)], "sample: sequence ", row, " twice in one step");
  seen_[size_t(row)] = 1;
  FW_CHECK(len_[size_t(row)] + n <= cap_, "sample: sequence ", row, " would overflow its cache (", len_[size_t(row)],
           " + ", n, " tokens, capacity ", cap_, ")");
}

float* Generator::step(const int32_t* tokens, const int64_t* rows, int64_t n) {
  FW_CHECK(n >= 1 && n <= rows_, "sample: a step of ", n, " sequences in a batch of ", rows_);
  std::fill(seen_.begin(), seen_.end(), 0);
  for (int64_t i = 0; i < n; i++) check_row(rows[i], 1);
  const Span sp{rows, n, 1};
  forward(&sp, 1, tokens);
  return b_.logits;
}

float* Generator::mixed(const Chunk* chunks, int64_t n_chunks, const int32_t* tokens, const int64_t* rows, int64_t n) {
  FW_CHECK(n_chunks >= 0 && n >= 0 && n_chunks + n >= 1 && n_chunks + n <= rows_, "sample: a forward of ", n_chunks,
           " chunks and ", n, " steps in a batch of ", rows_, " sequences");
  std::fill(seen_.begin(), seen_.end(), 0);
  int64_t N = 0, S = 0;
  for (int64_t c = 0; c < n_chunks; c++) {
    const Chunk& ch = chunks[c];
    FW_CHECK(ch.n >= 1 && ch.n <= chunk_, "sample: a chunk of ", ch.n, " tokens (1..", chunk_, ")");
    FW_CHECK(N + ch.n + n <= tokens_, "sample: a forward of more than ", tokens_, " tokens");
    check_row(ch.row, ch.n);
    std::copy(ch.tokens, ch.tokens + ch.n, mixed_tokens_.begin() + N);
    mixed_spans_[size_t(S++)] = {&ch.row, 1, ch.n};
    N += ch.n;
    mixed_out_[size_t(c)] = N - 1;  // its last token's logits (see below)
  }
  for (int64_t i = 0; i < n; i++) check_row(rows[i], 1);
  std::copy(tokens, tokens + n, mixed_tokens_.begin() + N);
  if (n > 0) mixed_spans_[size_t(S++)] = {rows, n, 1};
  // logits of each chunk's last token and of each step's: the other chunk tokens' are
  // never sampled from, and at 2048 pieces the head is an eighth of a token's forward
  for (int64_t i = 0; i < n; i++) mixed_out_[size_t(n_chunks + i)] = N + i;
  forward(mixed_spans_.data(), S, mixed_tokens_.data(), mixed_out_.data(), n_chunks + n);
  return b_.logits;
}

BatchSampler::BatchSampler(Generator& gen, const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp,
                           uint64_t seed, const FeedCallback& on_feed)
    : gen_(gen), sp_(sp), on_feed_(on_feed), context_(prompts), last_(prompts.size()) {
  const int64_t B = int64_t(prompts.size());
  FW_CHECK(B >= 1 && B <= gen.rows(), "sample: ", B, " prompts for a generator of ", gen.rows(), " rows");
  for (int64_t i = 0; i < B; i++) {
    FW_CHECK(!prompts[size_t(i)].empty(), "sample: prompt ", i, " is empty (give at least one token)");
    rng_.emplace_back(seed + uint64_t(i));
    auto& ctx = context_[size_t(i)];
    if (int64_t(ctx.size()) > gen.capacity()) ctx.erase(ctx.begin(), ctx.end() - gen.capacity() / 2);
  }
}

int32_t BatchSampler::draw(int64_t row, float* logits) {
  return sample_token(logits, sp_.candidates(gen_.vocab_size()), sp_, rng_[size_t(row)]);
}

void BatchSampler::fill_and_sample(int64_t row) {  // one chunk at a time: the generator keeps the last chunk's decisions only
  const auto& ctx = context_[size_t(row)];
  const int64_t n = int64_t(ctx.size());
  gen_.reset_row(row);
  float* logits = nullptr;
  for (int64_t s = 0; s < n; s += gen_.chunk()) {
    const int64_t k = std::min(gen_.chunk(), n - s);
    logits = gen_.feed(ctx.data() + s, k, row);
    if (on_feed_) on_feed_(row, ctx.data() + s, k, 0, gen_);
  }
  last_[size_t(row)] = draw(row, logits);
}

const std::vector<int32_t>& BatchSampler::next() {
  const int64_t B = int64_t(context_.size()), V = gen_.vocab_size();
  if (!started_) {
    started_ = true;
    for (int64_t row = 0; row < B; row++) fill_and_sample(row);
  } else {
    rows_.clear();
    toks_.clear();
    for (int64_t row = 0; row < B; row++) {
      if (gen_.length(row) == gen_.capacity()) {  // slide this row's window
        auto& ctx = context_[size_t(row)];
        ctx.erase(ctx.begin(), ctx.end() - gen_.capacity() / 2);
        fill_and_sample(row);
      } else {
        rows_.push_back(row);
        toks_.push_back(last_[size_t(row)]);
      }
    }
    const int64_t n = int64_t(rows_.size());
    if (n > 0) {
      float* logits = gen_.step(toks_.data(), rows_.data(), n);
      if (on_feed_)
        for (int64_t j = 0; j < n; j++) on_feed_(rows_[size_t(j)], &toks_[size_t(j)], 1, j, gen_);
      // the rows' draws in parallel, each from its own stream
#pragma omp parallel for if (n > 1)
      for (int64_t j = 0; j < n; j++) last_[size_t(rows_[size_t(j)])] = draw(rows_[size_t(j)], logits + j * V);
    }
  }
  for (int64_t row = 0; row < B; row++) context_[size_t(row)].push_back(last_[size_t(row)]);
  return last_;
}

BatchGenerateResult generate_batch(Generator& gen, const std::vector<std::vector<int32_t>>& prompts,
                                   int64_t n_new, const SamplingParams& sp, uint64_t seed,
                                   const TokenCallback& on_token, const FeedCallback& on_feed) {
  FW_CHECK(n_new >= 1, "sample: asked for ", n_new, " new tokens");
  BatchSampler sampler(gen, prompts, sp, seed, on_feed);
  BatchGenerateResult r;
  r.tokens.resize(prompts.size());
  const double t0 = now_seconds();
  for (int64_t i = 0; i < n_new; i++) {
    const std::vector<int32_t>& toks = sampler.next();
    for (size_t row = 0; row < toks.size(); row++) {
      r.tokens[row].push_back(toks[row]);
      if (on_token) on_token(int64_t(row), toks[row]);
    }
  }
  r.seconds = now_seconds() - t0;
  return r;
}

GenerateResult generate(Generator& gen, const std::vector<int32_t>& prompt, int64_t n_new,
                        const SamplingParams& sp, uint64_t seed,
                        const std::function<void(int32_t)>& on_token, const FeedCallback& on_feed) {
  TokenCallback each = nullptr;
  if (on_token) each = [&](int64_t, int32_t t) { on_token(t); };
  BatchGenerateResult r = generate_batch(gen, {prompt}, n_new, sp, seed, each, on_feed);
  return {std::move(r.tokens[0]), r.seconds};
}

}  // namespace fw
