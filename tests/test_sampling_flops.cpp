// The token sampler's filters, and the FLOP count against a hand computation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "infer/sampling.h"
#include "kernels/cross_entropy.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "test_util.h"

using namespace fw;

namespace {
// logits for 6 tokens with probabilities ∝ 32, 16, 8, 4, 2, 1 (token 0 most likely)
std::vector<float> ladder() { return {5, 4, 3, 2, 1, 0}; }

std::map<int32_t, int> histogram(const SamplingParams& p, int draws) {
  Rng rng(1);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; i++) {
    auto l = ladder();
    for (auto& x : l) x *= 0.6931472f;  // e^(k ln2) = 2^k
    h[sample_token(l.data(), 6, p, rng)]++;
  }
  return h;
}
}  // namespace

TEST(Sampling, GreedyTakesTheArgmax) {
  Rng rng(1);
  auto l = ladder();
  EXPECT_EQ(sample_token(l.data(), 6, {0.0, 0, 1.0}, rng), 0);
}

TEST(Sampling, TopKKeepsOnlyTheKMostLikely) {
  auto h = histogram({1.0, 2, 1.0}, 3000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_NEAR(h[0] / 3000.0, 2.0 / 3.0, 0.03);  // 32 : 16 renormalised
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  // masses 32/63, 16/63, 8/63, ...: 0.508, 0.762, 0.889 → top_p 0.75 keeps 2 tokens
  auto h = histogram({1.0, 0, 0.75}, 3000);
  EXPECT_EQ(h.size(), 2u);
  auto all = histogram({1.0, 0, 1.0}, 6000);
  EXPECT_EQ(all.size(), 6u);
  EXPECT_NEAR(all[5] / 6000.0, 1.0 / 63.0, 0.01);
}

TEST(Sampling, TemperatureSharpens) {
  auto cold = histogram({0.25, 0, 1.0}, 3000);  // 2^(k/0.25) = 16^k: token 0 ≈ 94%
  EXPECT_GT(cold[0] / 3000.0, 0.9);
}

// The sampler sorts only the prefix of candidates its draw needs; it must draw exactly
// what sorting the whole vocabulary (stable, by descending probability) draws: the same
// token for the same random stream, on vocabularies past the first prefix of 64, with
// ties, flat and peaked distributions, and every filter.
TEST(Sampling, PrefixSortDrawsWhatAFullSortDraws) {
  const auto full_sort_sample = [](float* logits, int64_t V, const SamplingParams& p, Rng& rng) {
    for (int64_t i = 0; i < V; i++) logits[i] = float(logits[i] / p.temperature);
    softmax_rows(logits, 1, V);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    size_t keep = size_t(V);
    if (p.top_k > 0) keep = std::min(keep, size_t(p.top_k));
    if (p.top_p < 1.0) {
      double mass = 0;
      for (size_t i = 0; i < keep; i++)
        if ((mass += logits[order[i]]) >= p.top_p) {
          keep = i + 1;
          break;
        }
    }
    double total = 0;
    for (size_t i = 0; i < keep; i++) total += logits[order[i]];
    double u = double(rng.uniform()) * total, acc = 0;
    for (size_t i = 0; i < keep; i++)
      if (u < (acc += logits[order[i]])) return order[i];
    return order[keep - 1];
  };
  const int64_t V = 5000;
  int compared = 0;
  for (double scale : {0.05, 1.0, 4.0})  // flat (the top-p set is most of V) to peaked
    for (const SamplingParams& p : {SamplingParams{1.0, 0, 1.0}, SamplingParams{0.8, 0, 0.95},
                                    SamplingParams{1.3, 0, 0.5}, SamplingParams{1.0, 300, 0.99},
                                    SamplingParams{0.7, 40, 1.0}}) {
      Rng a(7), b(7), draw(11);
      for (int t = 0; t < 40; t++) {
        std::vector<float> logits(static_cast<size_t>(V));
        for (auto& x : logits) x = float(std::round(scale * 8 * draw.normal()) / 8);  // rounded: many ties
        std::vector<float> copy = logits;
        ASSERT_EQ(sample_token(logits.data(), V, p, a), full_sort_sample(copy.data(), V, p, b))
            << "scale " << scale << " top_k " << p.top_k << " top_p " << p.top_p << " draw " << t;
        compared++;
      }
    }
  EXPECT_EQ(compared, 600);
}

// V=10, d=8, L=2, h=2, f=32, s=4, by Chinchilla's Appendix F:
//   embeddings 2·4·10·8 = 640; QKV 6·4·8·8 = 1536/layer; logits 2·16·8 = 256/layer;
//   softmax 3·2·16 = 96/layer; values 256/layer; output 2·4·8·8 = 512/layer;
//   MLP 4·4·8·32 = 4096/layer; final logits 2·4·8·10 = 640.
//   forward = 640 + 2·(1536+256+96+256+512+4096) + 640 = 14784 per sequence.
TEST(Flops, SmallConfigByHand) {
  ModelConfig c = test::small_model(8, 2, 2);
  c.vocab_size = 10;
  c.mlp_hidden = 32;
  const FlopCount f = count_flops(c, 4);
  EXPECT_EQ(f.embeddings, 640);
  EXPECT_EQ(f.attn_qkv, 3072);
  EXPECT_EQ(f.attn_logits, 512);
  EXPECT_EQ(f.attn_softmax, 192);
  EXPECT_EQ(f.attn_values, 512);
  EXPECT_EQ(f.attn_out, 1024);
  EXPECT_EQ(f.mlp, 8192);
  EXPECT_EQ(f.final_logits, 640);
  EXPECT_EQ(f.forward_per_seq(), 14784);
  EXPECT_EQ(f.forward_per_token(), 3696);
  EXPECT_EQ(f.train_per_token(), 11088);
  // N = V·d + L·(2d + 4d² + 2fd) + d = 80 + 2·(16 + 256 + 512) + 8 = 1656 (tied)
  EXPECT_EQ(Model::count_params(c), 1656u);
  EXPECT_EQ(six_n_per_token(c), 6.0 * 1656);
}

// The same model with block 1 routed at capacity 1/4 (k = 1 of s = 4), predictor
// width P = 2: block 1 counts t = 1 token for projections/MLP and t² for attention,
// plus the router 2·s·d = 64 and the predictor s·(2·d·P + 2·P) = 4·(32 + 4) = 144.
//   block 0: 1536 + 256 + 96 + 256 + 512 + 4096 = 6752
//   block 1: QKV 6·1·8·8 = 384; logits 2·1·8 = 16; softmax 3·2·1 = 6; values 16;
//            output 2·1·8·8 = 128; MLP 4·1·8·32 = 1024 → 1574
//   forward = 640 + 6752 + 1574 + 640 + 64 + 144 = 9814 per sequence
TEST(Flops, MixtureOfDepthsByHand) {
  ModelConfig c = test::small_model(8, 2, 2);
  c.vocab_size = 10;
  c.mlp_hidden = 32;
  c.mod.enabled = true;
  c.mod.capacity = 0.25;
  c.mod.predictor_hidden = 2;
  const FlopCount f = count_flops(c, 4);
  EXPECT_EQ(f.attn_qkv, 1536 + 384);
  EXPECT_EQ(f.attn_softmax, 96 + 6);
  EXPECT_EQ(f.mlp, 4096 + 1024);
  EXPECT_EQ(f.router, 64);
  EXPECT_EQ(f.predictor, 144);
  EXPECT_EQ(f.forward_per_seq(), 9814);
  // parameters: dense 1656 + router 8 + predictor (2·8 + 2 + 2 + 1) = 1685
  EXPECT_EQ(Model::count_params(c), 1685u);
  EXPECT_EQ(Model(c).num_params(), 1685u);
}
