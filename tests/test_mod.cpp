// Mixture-of-Depths: the routed block's structure and its known pitfalls.
// (Its gradients, router path and auxiliary losses: test_gradcheck.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "formats/token_file.h"
#include "infer/causal_eval.h"
#include "core/error.h"
#include "infer/generator.h"
#include "train/evaluate.h"
#include "nn/model.h"
#include "nn/routed_block.h"
#include "test_util.h"
#include "train/trainer.h"

using namespace fw;
using fw::test::slurp;

namespace {

// A one-block model whose block is routed, with inputs, and a dense twin.
struct Fixture {
  static constexpr int64_t B = 2, T = 8, C = 16, H = 2;
  ModelConfig cfg;
  std::unique_ptr<Model> routed, dense;
  std::vector<float> x;  // (B,T,C)
  explicit Fixture(double capacity, Gate gate = Gate::raw) {
    cfg = test::small_model(C, H, 1, T);
    cfg.mlp_hidden = 24;
    cfg.mod.enabled = true;
    cfg.mod.every = 1;
    cfg.mod.capacity = capacity;
    cfg.mod.gate = gate;
    cfg.mod.causal = Causal::router_bce;
    routed = std::make_unique<Model>(cfg);
    routed->init_weights(3);
    for (size_t i = 0; i < routed->params.size(); i++) routed->params.data()[i] *= 10.0f;
    ModelConfig dc = cfg;
    dc.mod.enabled = false;
    dense = std::make_unique<Model>(dc);
    for (const auto& t : dense->tensors)  // same block weights
      for (const auto& u : routed->tensors)
        if (t.name == u.name) std::memcpy(dense->params.data() + t.offset, routed->params.data() + u.offset, t.numel() * 4);
    x = test::randn(size_t(B * T * C), 8);
  }
  BlockDims dims(int64_t t) const { return {B, t, C, H, cfg.mlp_shape(), AttentionMask{}}; }
  // The routed block on x, gate from the config, into y; a holds its activations.
  void forward(Activations& a, std::vector<float>& y) const {
    y.resize(x.size());
    const Model& m = *routed;
    routed_forward(a.dims, ForwardMode{a.with_backward, 0}, m.cfg.mod, m.cfg.mod.gate, m.w.blocks[0], m.w.routers[0], a.routed[0],
                   a.scratch, y.data(), x.data(), a.rope);
  }
};

// Storage for one dense block's activations and scratch of shape (B, T).
struct DenseBuffers {
  std::vector<std::vector<float>> store;
  BlockActs acts;
  BlockScratch scratch;
  explicit DenseBuffers(const BlockDims& d) {
    auto f = [&](float*& p, size_t n) {
      store.emplace_back(n);
      p = store.back().data();
    };
    for_each_block_act(acts, d, d.T, true, f);
    for_each_block_scratch(scratch, d, true, f);
  }
};

}  // namespace

TEST(MoD, FullCapacityWithUnitGateEqualsDenseBlock) {
  Fixture fx(1.0);
  const int64_t n = Fixture::B * Fixture::T * Fixture::C;
  Model& m = *fx.routed;
  m.enable_grads();
  Activations a(m, Fixture::B, Fixture::T, true);
  std::vector<float> y(n), y_dense(n);
  routed_forward(a.dims, ForwardMode{true, 0}, m.cfg.mod, Gate::one, m.w.blocks[0], m.w.routers[0], a.routed[0], a.scratch,
                 y.data(), fx.x.data(), a.rope);
  DenseBuffers db(fx.dims(Fixture::T));
  Model& d = *fx.dense;
  d.enable_grads();
  block_forward(fx.dims(Fixture::T), ForwardMode{true, 0}, d.w.blocks[0], db.acts, db.scratch, y_dense.data(), fx.x.data(),
                a.pos.data(), a.rope, KvSlot{db.acts.k, db.acts.v, Fixture::T}, Fixture::T);
  for (int64_t i = 0; i < n; i++) ASSERT_NEAR(y[i], y_dense[i], 1e-5) << i;
  // and the backward: same input gradient, same block weight gradients
  auto dy = test::randn(size_t(n), 9);
  std::vector<float> dx = dy, dx_dense = dy;
  routed_backward(a.dims, m.cfg.mod, Gate::one, m.w.blocks[0], m.w.routers[0], m.dw.blocks[0], m.dw.routers[0],
                  a.routed[0], a.scratch, dx.data(), fx.x.data(), a.rope, 0.0f);
  block_backward(fx.dims(Fixture::T), d.w.blocks[0], d.dw.blocks[0], db.acts, db.scratch, dx_dense.data(),
                 fx.x.data(), a.pos.data(), a.rope, 0.0f);
  for (int64_t i = 0; i < n; i++) ASSERT_NEAR(dx[i], dx_dense[i], 1e-4) << i;
  for (const auto& t : d.tensors)
    for (const auto& u : m.tensors) {
      if (t.name != u.name) continue;
      for (size_t i = 0; i < t.numel(); i++)
        ASSERT_NEAR(m.grads.data()[u.offset + i], d.grads.data()[t.offset + i], 1e-4) << t.name;
    }
}

TEST(MoD, TopKPicksTheLargestRouterValuesInPositionOrder) {
  Fixture fx(0.4);  // k = round(0.4 · 8) = 3
  Model& m = *fx.routed;
  Activations a(m, Fixture::B, Fixture::T, false);
  std::vector<float> y;
  fx.forward(a, y);
  const RoutedActs& r = a.routed[0];
  const int64_t k = m.cfg.mod.k(Fixture::T);
  ASSERT_EQ(k, 3);
  for (int64_t b = 0; b < Fixture::B; b++) {
    float lowest_selected = INFINITY, highest_skipped = -INFINITY;
    for (int64_t t = 0; t < Fixture::T; t++) {
      const float v = r.r[b * Fixture::T + t];
      if (r.selected[size_t(b * Fixture::T + t)]) lowest_selected = std::min(lowest_selected, v);
      else highest_skipped = std::max(highest_skipped, v);
    }
    EXPECT_GT(lowest_selected, highest_skipped);
    for (int64_t j = 1; j < k; j++) EXPECT_LT(r.idx[size_t(b * k + j - 1)], r.idx[size_t(b * k + j)]);
  }
  ModConfig tiny;
  tiny.capacity = 0.01;
  EXPECT_EQ(tiny.k(8), 1);  // never zero tokens
}

// Pitfall: rotary with compacted positions 0..k-1. The selected tokens must see
// their original positions, which the block's output reveals.
TEST(MoD, RotaryUsesOriginalPositions) {
  Fixture fx(0.5);
  Model& m = *fx.routed;
  Activations a(m, Fixture::B, Fixture::T, false);
  std::vector<float> y;
  fx.forward(a, y);
  const RoutedActs& r = a.routed[0];
  const int64_t k = m.cfg.mod.k(Fixture::T), n = Fixture::B * k * Fixture::C;
  std::vector<int32_t> original(r.idx), compacted(r.idx.size());
  for (size_t i = 0; i < compacted.size(); i++) compacted[i] = int32_t(i % size_t(k));
  ASSERT_NE(original, compacted);
  auto run = [&](const std::vector<int32_t>& pos) {
    DenseBuffers db(fx.dims(k));
    std::vector<float> out(static_cast<size_t>(n));
    block_forward(fx.dims(k), ForwardMode{}, m.w.blocks[0], db.acts, db.scratch, out.data(), r.xs, pos.data(), a.rope,
                  KvSlot{db.acts.k, db.acts.v, k}, k);
    return out;
  };
  auto with_original = run(original), with_compacted = run(compacted);
  double diff_original = 0, diff_compacted = 0;
  for (int64_t i = 0; i < n; i++) {
    diff_original = std::max(diff_original, double(std::abs(with_original[i] - r.ys[i])));
    diff_compacted = std::max(diff_compacted, double(std::abs(with_compacted[i] - r.ys[i])));
  }
  EXPECT_LT(diff_original, 1e-6);
  EXPECT_GT(diff_compacted, 1e-2);  // the test would see the pitfall
}

// Pitfall: scaling the residual too, g(r)·(x + Δ), or adding x twice.
TEST(MoD, OnlyTheUpdateIsGatedNotTheResidual) {
  for (Gate gate : {Gate::raw, Gate::sigmoid}) {
    Fixture fx(0.5, gate);
    Model& m = *fx.routed;
    Activations a(m, Fixture::B, Fixture::T, false);
    std::vector<float> y;
    fx.forward(a, y);
    const RoutedActs& r = a.routed[0];
    const int64_t C = Fixture::C, T = Fixture::T, k = m.cfg.mod.k(T);
    for (int64_t b = 0; b < Fixture::B; b++)
      for (int64_t t = 0; t < T; t++) {
        const int64_t row = b * T + t;
        if (!r.selected[size_t(row)]) {  // skipped: exactly the input
          for (int64_t c = 0; c < C; c++) ASSERT_EQ(y[row * C + c], fx.x[row * C + c]);
          continue;
        }
        const int64_t j = std::find(r.idx.begin() + b * k, r.idx.begin() + (b + 1) * k, t) - r.idx.begin();
        const float rv = r.r[row];
        const float g = gate == Gate::raw ? rv : 1.0f / (1.0f + std::exp(-rv));
        for (int64_t c = 0; c < C; c++) {
          const float delta = r.ys[j * C + c] - r.xs[j * C + c];
          ASSERT_NEAR(y[row * C + c], fx.x[row * C + c] + g * delta, 1e-5) << name_of(gate);
        }
      }
  }
}

class MoDPrecisions : public ::testing::TestWithParam<bool> {};  // train.matmul_bf16
INSTANTIATE_TEST_SUITE_P(MoD, MoDPrecisions, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "bf16" : "fp32"; });

TEST_P(MoDPrecisions, TrainsAndResumesExactly) {
  std::string dir = test::text_data("mod_data", "routing tokens around blocks. ", 134, 600);
  Config c = test::tiny_run_config();
  c.train.matmul_bf16 = GetParam() ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
  c.model.n_layers = 4;
  c.model.mod.enabled = true;
  c.train.steps = 40;
  c.train.warmup = 4;
  c.train.eval_every = 0;
  const test::ResumePair r = test::train_straight_and_resumed(c, dir, "mod");
  EXPECT_LT(r.full.val_loss, 3.0);  // from 5.5: the MoD model learns
  EXPECT_EQ(slurp(r.full_dir + "/model.safetensors"), slurp(r.part_dir + "/model.safetensors"));
}

// Tokens in each layer's cache of one sequence of a generator.
static std::vector<int64_t> cache_lengths(const Generator& g, int64_t row = 0) {
  std::vector<int64_t> n;
  for (int64_t l = 0; l < g.model().cfg.n_layers; l++) n.push_back(g.cache_length(l, row));
  return n;
}

// Decoding with causal routing: feeding a sequence token by token gives the same
// logits as prefilling it in one pass with the same (causal, per-token) decisions;
// each routed layer's cache holds exactly the tokens it processed, and no more.
TEST(MoD, CausalDecodingSkipsAndMatchesPrefill) {
  for (Causal causal : {Causal::router_bce, Causal::predictor}) {
    SCOPED_TRACE(name_of(causal));
    ModelConfig c = test::small_model(32, 4, 4, 24);
    c.mod.enabled = true;
    c.mod.causal = causal;
    Model m(c);
    m.init_weights(21);
    for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
    const int64_t T = 24, V = c.vocab_size;
    std::vector<int32_t> tok(T);
    for (int64_t i = 0; i < T; i++) tok[size_t(i)] = int32_t((i * 53 + 7) % 256);
    Generator step(m, T, /*chunk=*/4);
    for (int64_t t = 0; t < T; t++) {
      const float* got = step.feed(&tok[size_t(t)], 1);
      Generator whole(m, T, /*chunk=*/T);
      const float* want = whole.feed(tok.data(), t + 1);
      for (int64_t v = 0; v < V; v++) ASSERT_NEAR(got[v], want[v], 1e-4) << "position " << t;
      EXPECT_EQ(cache_lengths(step), cache_lengths(whole));
    }
    // dense layers cached every token; routed ones (1 and 3) only the processed ones
    const auto len = cache_lengths(step);
    EXPECT_EQ(len[0], T);
    EXPECT_EQ(len[2], T);
    for (int64_t l : {1, 3}) {
      EXPECT_GT(len[size_t(l)], 0) << "layer " << l << " processed nothing: the test would prove little";
      EXPECT_LT(len[size_t(l)], T) << "layer " << l << " skipped nothing: the test would prove little";
    }
  }
}

// The decisions are the documented ones: at the first routed layer (whose input
// is known from the dense layer before it), the processed count equals the number
// of tokens whose router logit is positive; and decoding equals the training
// forward that routes those same tokens.
TEST(MoD, DecodingProcessesExactlyTheTokensTheRouterAccepts) {
  ModelConfig c = test::small_model(32, 4, 2, 16);
  c.mod.enabled = true;
  c.mod.causal = Causal::router_bce;
  Model m(c);
  m.init_weights(22);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  const int64_t T = 16;
  std::vector<int32_t> tok(T);
  for (int64_t i = 0; i < T; i++) tok[size_t(i)] = int32_t((i * 31 + 3) % 256);
  // the residual stream entering block 1 = the output of dense block 0 (training path)
  Activations a(m, 1, T, false);
  model_forward(m, a, tok.data(), nullptr, ForwardMode{});  // a.res[1] is block 1's input
  int64_t accepted = 0;
  for (int64_t t = 0; t < T; t++) {
    float r = 0;
    for (int64_t ch = 0; ch < 32; ch++) r += a.res[1][t * 32 + ch] * m.w.routers[1].router[ch];
    accepted += r > 0;
  }
  Generator g(m, T);
  g.feed(tok.data(), T);
  EXPECT_EQ(g.cache_length(1), accepted);
  ASSERT_GT(accepted, 0);
  ASSERT_LT(accepted, T);
  // Tokens with r > 0 are exactly the top-`accepted` by r, so the training forward at
  // capacity accepted/T routes the same tokens: token-by-token decoding must give
  // its logits at every position (same positions, same keys, same gated update).
  ModelConfig ct = c;
  ct.mod.capacity = double(accepted) / double(T);
  Model mt(ct);
  std::copy(m.params.data(), m.params.data() + m.params.size(), mt.params.data());
  Activations at(mt, 1, T, false);
  model_forward(mt, at, tok.data(), nullptr, ForwardMode{});
  Generator step(m, T, 4);
  for (int64_t t = 0; t < T; t++) {
    const float* got = step.feed(&tok[size_t(t)], 1);
    for (int64_t v = 0; v < c.vocab_size; v++)
      ASSERT_NEAR(got[v], at.logits[t * c.vocab_size + v], 1e-4) << "position " << t;
  }
}

// Batched decoding: prompts of different lengths in one batch route different tokens,
// so their caches hold different numbers of keys per routed layer; a batched step
// runs each routed block on just the rows that process their new token. Every row
// must get exactly the logits and the decisions it gets when decoded alone.
TEST(MoD, BatchedDecodingDivergesAndMatchesEachSequenceAlone) {
  ModelConfig c = test::small_model(32, 4, 4, 40);
  c.mod.enabled = true;
  c.mod.causal = Causal::router_bce;
  Model m(c);
  m.init_weights(23);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  const int64_t B = 3, cap = 40, V = c.vocab_size;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < B; b++) {
    std::vector<int32_t> p(size_t(5 + 4 * b));
    for (size_t i = 0; i < p.size(); i++) p[i] = int32_t((int64_t(i) * 41 + 17 * b + 5) % 256);
    prompts.push_back(p);
  }
  const SamplingParams greedy{0.0, 0, 1.0};
  Generator batch(m, cap, 8, B);
  BatchGenerateResult r = generate_batch(batch, prompts, 12, greedy, 0);
  // each row alone, from the same prompt, teacher-forced with the batch's tokens
  std::vector<Generator> alone;
  for (int64_t b = 0; b < B; b++) {
    alone.emplace_back(m, cap, 8, 1);
    generate(alone.back(), prompts[size_t(b)], 12, greedy, 0);
    EXPECT_EQ(generate(alone.back(), prompts[size_t(b)], 12, greedy, 0).tokens, r.tokens[size_t(b)]) << "row " << b;
    EXPECT_EQ(cache_lengths(alone.back()), cache_lengths(batch, b)) << "row " << b;
  }
  // logits and decisions step by step, and the routed layers must really diverge
  Generator g(m, cap, 8, B);
  std::vector<Generator> one;
  for (int64_t b = 0; b < B; b++) {
    one.emplace_back(m, cap, 8, 1);
    g.feed(prompts[size_t(b)].data(), int64_t(prompts[size_t(b)].size()), b);
    one.back().feed(prompts[size_t(b)].data(), int64_t(prompts[size_t(b)].size()));
  }
  bool diverged = false;
  const int64_t rows[B] = {2, 0, 1};  // a step may list its rows in any order
  for (int64_t t = 0; t < 12; t++) {
    int32_t tok[B];
    for (int64_t i = 0; i < B; i++) tok[i] = r.tokens[size_t(rows[i])][size_t(t)];
    const float* got = g.step(tok, rows, B);
    for (int64_t i = 0; i < B; i++) {
      Generator& o = one[size_t(rows[i])];
      const float* want = o.feed(&tok[i], 1);
      for (int64_t v = 0; v < V; v++) ASSERT_NEAR(got[i * V + v], want[v], 1e-4) << "step " << t << " row " << rows[i];
      for (int64_t l : {1, 3}) {
        EXPECT_EQ(g.decisions(l)[size_t(i)].processed, o.decisions(l)[0].processed);
        EXPECT_NEAR(g.decisions(l)[size_t(i)].router, o.decisions(l)[0].router, 1e-4);
      }
    }
    for (int64_t l : {1, 3}) {
      int64_t processed = 0;
      for (int64_t i = 0; i < B; i++) processed += g.decisions(l)[size_t(i)].processed;
      diverged |= processed > 0 && processed < B;
    }
  }
  EXPECT_TRUE(diverged) << "every step routed all rows alike: the test would prove little";
  for (int64_t b = 0; b < B; b++) {
    EXPECT_EQ(cache_lengths(g, b), cache_lengths(one[size_t(b)])) << "row " << b;
    EXPECT_EQ(g.length(b), int64_t(prompts[size_t(b)].size()) + 12);
  }
  std::vector<std::vector<int64_t>> skipped;  // per row, per routed layer: tokens not in its cache
  for (int64_t b = 0; b < B; b++) skipped.push_back({g.length(b) - g.cache_length(1, b), g.length(b) - g.cache_length(3, b)});
  EXPECT_FALSE(skipped[0] == skipped[1] && skipped[1] == skipped[2])
      << "all rows skipped equally many tokens: the caches did not diverge";
}

// Continuous batching's forward (Generator::mixed): prompt chunks of some rows beside
// one new token of each decoding row, in one pass. Each chunk's last token and each
// decoding row must get the logits, and every token the routing decisions, that
// separate feed() and step() calls give them, for a dense, a MoD and an FFF model. The scenario: rows 0 and 1 decode while row 2 feeds a 13-token
// prompt in chunks of 8 and row 3 a 5-token one; row 3 then decodes beside row 2's
// last chunk; then all four decode together (a mixed() without chunks).
TEST(MoD, MixedForwardEqualsSeparateFeedsAndSteps) {
  for (const std::string kind : {"dense", "mod", "fff"}) {
    ModelConfig c = test::small_model(32, 4, 4, 40);
    if (kind == "mod") c.mod.enabled = true, c.mod.causal = Causal::router_bce;
    if (kind == "fff") c.mlp = MlpKind::fff, c.fff.trees = 2, c.fff.depth = 3;
    Model m(c);
    m.init_weights(29);
    for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
    const int64_t V = c.vocab_size, chunk = 8;
    std::vector<std::vector<int32_t>> prompts;
    for (int64_t b = 0; b < 4; b++) {
      std::vector<int32_t> p(size_t(b == 2 ? 13 : 5 + b));
      for (size_t i = 0; i < p.size(); i++) p[i] = int32_t((int64_t(i) * 53 + 29 * b + 7) % 256);
      prompts.push_back(p);
    }
    Generator mixed(m, 40, chunk, 4, 4 * chunk), separate(m, 40, chunk, 4);
    for (int64_t b : {0, 1}) {
      mixed.feed(prompts[size_t(b)].data(), int64_t(prompts[size_t(b)].size()), b);
      separate.feed(prompts[size_t(b)].data(), int64_t(prompts[size_t(b)].size()), b);
    }
    bool diverged = false;  // a routed layer processed some of one call's tokens and not others
    // mixed()'s logits number `out` against `want` (V)
    auto same_logits = [&](const float* got, int64_t out, const float* want, const std::string& what) {
      for (int64_t v = 0; v < V; v++) ASSERT_NEAR(got[out * V + v], want[v], 1e-4) << kind << " " << what;
    };
    // the routing decisions of mixed()'s entries [first, first + n) against the separate call's n
    auto same_decisions = [&](int64_t first, int64_t n, const std::string& what) {
      if (kind != "mod") return;
      for (int64_t l : {1, 3}) {
        int64_t processed = 0;
        for (int64_t i = 0; i < n; i++) {
          EXPECT_EQ(mixed.decisions(l)[size_t(first + i)].processed, separate.decisions(l)[size_t(i)].processed)
              << what << " entry " << i << " layer " << l;
          EXPECT_NEAR(mixed.decisions(l)[size_t(first + i)].router, separate.decisions(l)[size_t(i)].router, 1e-4);
          processed += separate.decisions(l)[size_t(i)].processed;
        }
        diverged |= processed > 0 && processed < n;
      }
    };
    for (int64_t t = 0; t < 6; t++) {
      const int32_t next[4] = {int32_t(11 + t), int32_t(97 + 3 * t), int32_t(200 - t), int32_t(5 * t + 1)};
      std::vector<Generator::Chunk> chunks;
      std::vector<int64_t> rows;
      std::vector<int32_t> toks;
      if (t == 0) chunks = {{2, prompts[2].data(), chunk}, {3, prompts[3].data(), 5}};
      if (t == 1) chunks = {{2, prompts[2].data() + chunk, 5}};
      for (int64_t r = 0; r < 4; r++)
        if ((r < 2 || t >= 2 || (r == 3 && t == 1))) rows.push_back(r), toks.push_back(next[r]);
      const int64_t C = int64_t(chunks.size()), n = int64_t(rows.size());
      const float* out = mixed.mixed(chunks.data(), C, toks.data(), rows.data(), n);
      const std::vector<float> got(out, out + (C + n) * V);  // each chunk's last token's, then the steps'
      int64_t first = 0;  // entry
      for (int64_t c = 0; c < C; c++) {
        const Generator::Chunk& ch = chunks[size_t(c)];
        const std::string what = "step " + std::to_string(t) + " chunk of row " + std::to_string(ch.row);
        same_logits(got.data(), c, separate.feed(ch.tokens, ch.n, ch.row), what);  // feed: its last token's
        same_decisions(first, ch.n, what);
        first += ch.n;
      }
      if (n > 0) {
        const float* want = separate.step(toks.data(), rows.data(), n);
        const std::string what = "step " + std::to_string(t) + " decoding rows";
        for (int64_t i = 0; i < n; i++) same_logits(got.data(), C + i, want + i * V, what + " row " + std::to_string(rows[size_t(i)]));
        same_decisions(first, n, what);
      }
    }
    for (int64_t b = 0; b < 4; b++) {
      EXPECT_EQ(mixed.length(b), separate.length(b)) << kind << " row " << b;
      EXPECT_EQ(cache_lengths(mixed, b), cache_lengths(separate, b)) << kind << " row " << b;
    }
    if (kind == "mod") {
      EXPECT_TRUE(diverged) << "every call routed all its tokens alike: the test would prove little";
    }
  }
}

// mixed() refuses a row given twice (as a chunk and a step), a chunk longer than the
// generator's chunk, and more tokens than batch_tokens().
TEST(MoD, MixedForwardRejectsBadBatches) {
  ModelConfig c = test::small_model(32, 4, 2, 16);
  Model m(c);
  m.init_weights(1);
  Generator g(m, 16, 4, 3, 8);
  const int32_t toks[5] = {1, 2, 3, 4, 5};
  const int64_t row0[1] = {0}, row2[1] = {2};
  const Generator::Chunk chunk0{0, toks, 4}, long_chunk{1, toks, 5}, chunks12[2] = {{1, toks, 4}, {2, toks, 4}};
  EXPECT_THROW(g.mixed(&chunk0, 1, toks, row0, 1), Error);
  EXPECT_THROW(g.mixed(&long_chunk, 1, toks, row2, 1), Error);
  EXPECT_THROW(g.mixed(chunks12, 2, toks, row0, 1), Error);  // 4 + 4 + 1 > 8
  EXPECT_THROW(g.mixed(nullptr, 0, toks, row0, 0), Error);   // nothing
  EXPECT_NO_THROW(g.mixed(chunks12, 2, toks, row0, 0));
  EXPECT_EQ(g.length(1), 4);
  EXPECT_EQ(g.length(2), 4);
}

// A batched step refuses a row listed twice or one whose cache is full.
TEST(MoD, BatchedStepRejectsBadRows) {
  ModelConfig c = test::small_model(32, 4, 2, 8);
  Model m(c);
  m.init_weights(1);
  Generator g(m, 4, 4, 2);
  const int32_t tok[2] = {1, 2};
  const int64_t twice[2] = {0, 0}, outside[2] = {0, 2};
  EXPECT_THROW(g.step(tok, twice, 2), Error);
  EXPECT_THROW(g.step(tok, outside, 2), Error);
  const int32_t four[4] = {1, 2, 3, 4};
  g.feed(four, 4, 1);
  const int64_t both[2] = {0, 1};
  EXPECT_THROW(g.step(tok, both, 2), Error);
}

// A dense model with large weights and 200 synthetic tokens to evaluate it on.
struct DenseEvalFixture {
  Model m{test::small_model(32, 4, 2, 16)};
  TokenLoader data{synthetic_tokens(), 256, "synthetic"};
  DenseEvalFixture() {
    m.init_weights(4);
    for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  }
  static std::vector<int32_t> synthetic_tokens() {
    std::vector<int32_t> tok;
    for (int i = 0; i < 200; i++) tok.push_back((i * 37 + 11) % 256);
    return tok;
  }
};

// Sampling-time routing of a dense model is no routing at all: the generator path
// must give the same validation loss as the training forward.
TEST(MoD, CausalEvaluationOfADenseModelEqualsPlainEvaluation) {
  DenseEvalFixture fx;
  Model& m = fx.m;
  TokenLoader& data = fx.data;
  Activations a(m, 1, 16, false);
  const EvalResult plain = evaluate(m, a, data, 160);
  const CausalEvalResult causal = evaluate_causal(m, data, 160, 16, m.causal_thresholds(false));
  EXPECT_EQ(plain.tokens, causal.tokens);
  EXPECT_NEAR(plain.loss, causal.loss, 1e-4);
  for (double p : causal.processed_fraction) EXPECT_EQ(p, 1.0);
}

// Both evaluations read the same windows, and never wrap: asked for more tokens than
// the file holds, they read it once, whole (199 targets hold 12 windows of 16), in
// batches of 5 with a last batch of 2, on one process and split over 2 "ranks".
TEST(MoD, EvaluationsReadTheSameWindowsAndNeverWrap) {
  DenseEvalFixture fx;
  Model& m = fx.m;
  TokenLoader& data = fx.data;
  Activations a(m, 5, 16, false);
  const EvalResult plain = evaluate(m, a, data, 100000);
  const CausalEvalResult causal = evaluate_causal(m, data, 100000, 16, m.causal_thresholds(false));
  EXPECT_TRUE(plain.whole_file);
  EXPECT_EQ(plain.tokens, 12 * 16);
  EXPECT_EQ(causal.tokens, 12 * 16);
  EXPECT_NEAR(plain.loss, causal.loss, 1e-4);
  // two ranks of 6 windows each: batches of 5 and 1; the mean of their losses is the whole loss
  Activations b(m, 5, 16, false);
  const EvalResult r0 = evaluate(m, b, data, 100000, 0, 2), r1 = evaluate(m, b, data, 100000, 1, 2);
  EXPECT_EQ(r0.tokens, 6 * 16);
  EXPECT_NEAR((r0.loss + r1.loss) / 2, plain.loss, 1e-5);
  // a file shorter than one window is refused by name
  TokenLoader tiny(std::vector<int32_t>(10, 1), 256, "tiny.bin");
  try {
    evaluate(m, a, tiny, 100);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.bin: 10 tokens, too few"), std::string::npos) << e.what();
  }
}
