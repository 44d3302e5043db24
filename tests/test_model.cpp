// End-to-end properties of the engine: learning, determinism, checkpoints, resume,
// and KV-cached decoding equal to the full forward pass.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "formats/safetensors.h"
#include "formats/token_file.h"
#include "infer/generator.h"
#include "nn/model.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace fw;
using fw::test::slurp;
namespace fs = std::filesystem;

namespace {

std::string tiny_data(const std::string& name, const std::string& text) { return test::text_data(name, text); }
Config tiny_config() { return test::tiny_run_config(); }

}  // namespace

TEST(Model, ParameterCountMatchesTensors) {
  for (bool tied : {true, false}) {
    ModelConfig c = test::small_model(64, 4, 3);
    c.mlp_hidden = 96;
    c.tie_embeddings = tied;
    Model m(c);
    EXPECT_EQ(m.num_params(), Model::count_params(c));
  }
}

TEST(Model, TensorsTileTheBufferAndViewsPointAtThem) {
  // every component's description feeds the layout and the views: the tensors lie end
  // to end, names are unique, and each view is the buffer at its tensor's offset
  ModelConfig c = test::small_model(32, 2, 4);
  c.mod.enabled = true;
  c.mod.causal = Causal::both;  // router and predictor
  c.tie_embeddings = false;
  Model m(c);
  m.enable_grads();
  std::set<std::string> names;
  size_t next = 0;
  for (const auto& t : m.tensors) {
    EXPECT_EQ(t.offset, next) << t.name;
    next += t.numel();
    EXPECT_TRUE(names.insert(t.name).second) << t.name;
  }
  EXPECT_EQ(next, m.num_params());
  auto at = [&](const std::string& name) {
    for (const auto& t : m.tensors)
      if (t.name == name) return t.offset;
    ADD_FAILURE() << "no tensor " << name;
    return size_t(0);
  };
  EXPECT_EQ(m.w.blocks[2].qkv, m.params.data() + at("blocks.2.attn.qkv.weight"));
  EXPECT_EQ(m.dw.blocks[3].mlp.proj, m.grads.data() + at("blocks.3.mlp.proj.weight"));
  EXPECT_EQ(m.w.routers[1].pred_out_b, m.params.data() + at("blocks.1.predictor.out.bias"));
  EXPECT_EQ(m.w.routers[0].router, nullptr);  // block 0 is dense
  EXPECT_EQ(m.w.lm_head, m.params.data() + at("lm_head.weight"));
  EXPECT_EQ(m.w.final_norm, m.params.data() + at("final_norm.weight"));
}

class BothPrecisions : public ::testing::TestWithParam<bool> {};  // train.matmul_bf16
INSTANTIATE_TEST_SUITE_P(Model, BothPrecisions, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "bf16" : "fp32"; });

TEST_P(BothPrecisions, TinyModelOverfitsTinyCorpus) {
  // every character occurs once per cycle, so the next one is fully determined
  std::string data = tiny_data("overfit_data", "abcdefghijklmnopqrstuvwxyz0123456789,.;:!?");
  Config c = tiny_config();
  c.train.matmul_bf16 = GetParam() ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
  c.train.steps = 200;
  c.train.lr = 1e-2;
  c.train.min_lr = 1e-3;
  c.train.eval_every = 0;
  TrainOptions o;
  o.data_dir = data;
  o.run_dir = test::temp_dir(GetParam() ? "overfit_run16" : "overfit_run");
  TrainSummary s = run_training(c, o);
  EXPECT_TRUE(s.finished);
  EXPECT_LT(s.train_loss, 0.05);  // from ln(256) = 5.5
  EXPECT_LT(s.val_loss, 0.05);
}

TEST(Model, SameSeedSameBits) {
  std::string data = tiny_data("determinism_data", "determinism is a feature, not a bug. ");
  Config c = tiny_config();
  TrainOptions a, b;
  a.data_dir = b.data_dir = data;
  a.run_dir = test::temp_dir("determinism_a");
  b.run_dir = test::temp_dir("determinism_b");
  run_training(c, a);
  run_training(c, b);
  EXPECT_EQ(slurp(a.run_dir + "/model.safetensors"), slurp(b.run_dir + "/model.safetensors"));
  c.train.seed = 7;  // and a different seed gives different weights
  TrainOptions d = b;
  d.run_dir = test::temp_dir("determinism_c");
  run_training(c, d);
  EXPECT_NE(slurp(a.run_dir + "/model.safetensors"), slurp(d.run_dir + "/model.safetensors"));
}

TEST(Model, SafetensorsRoundTripBitExact) {
  ModelConfig mc = test::small_model(32, 4, 2);
  mc.tie_embeddings = false;
  Config c;
  c.model = mc;
  Model m(mc);
  m.init_weights(3);
  AdamW opt;
  opt.init(m.num_params());
  for (size_t i = 0; i < m.num_params(); i++) {
    opt.m.data()[i] = float(i) * 1e-3f;
    opt.v.data()[i] = float(i % 7);
  }
  opt.step = 12;
  TrainingState st{12, 345, {1, 2, 3, 0xFFFFFFFFFFFFFFFFull}, "/data"};
  std::string dir = test::temp_dir("roundtrip");
  save_checkpoint(dir, m, c, "bytes", opt, st);
  LoadedModel lm = load_model(dir);
  EXPECT_EQ(lm.tokenizer, "bytes");
  EXPECT_EQ(lm.step, 12);
  EXPECT_EQ(to_json(lm.config), to_json(c));
  ASSERT_EQ(lm.model->num_params(), m.num_params());
  EXPECT_EQ(0, std::memcmp(lm.model->params.data(), m.params.data(), m.num_params() * 4));
  AdamW opt2;
  TrainingState st2;
  load_training_state(dir, *lm.model, lm.config, lm.step, opt2, st2);
  EXPECT_EQ(0, std::memcmp(opt2.m.data(), opt.m.data(), m.num_params() * 4));
  EXPECT_EQ(0, std::memcmp(opt2.v.data(), opt.v.data(), m.num_params() * 4));
  EXPECT_EQ(opt2.step, 12);
  EXPECT_EQ(st2.data_pos, 345);
  EXPECT_EQ(st2.rng, st.rng);
  // the file is plain safetensors: header length, JSON, F32 data
  SafetensorsFile f(dir + "/model.safetensors");
  EXPECT_EQ(f.meta("format"), "pt");
  EXPECT_EQ(f.names().size(), m.tensors.size());
}

TEST_P(BothPrecisions, ResumeEqualsUninterruptedRun) {
  std::string data = tiny_data("resume_data", "resume must continue the very same trajectory! ");
  Config c = tiny_config();
  c.train.grad_accum = 2;
  c.train.matmul_bf16 = GetParam() ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
  TrainOptions full;
  full.data_dir = data;
  full.run_dir = test::temp_dir("resume_full");
  TrainSummary sf = run_training(c, full);
  TrainOptions part = full;
  part.run_dir = test::temp_dir("resume_part");
  part.stop_after = 13;
  TrainSummary sp = run_training(c, part);
  EXPECT_FALSE(sp.finished);
  EXPECT_EQ(sp.step, 13);
  TrainOptions rest;
  rest.run_dir = part.run_dir;
  rest.resume = true;  // data folder comes from the run's state
  TrainSummary sr = run_training(Config{}, rest);
  EXPECT_TRUE(sr.finished);
  EXPECT_EQ(sr.train_loss, sf.train_loss);
  EXPECT_EQ(sr.val_loss, sf.val_loss);
  EXPECT_EQ(slurp(full.run_dir + "/model.safetensors"), slurp(part.run_dir + "/model.safetensors"));
  // metrics rows of the resumed run equal the uninterrupted run's, timing aside
  auto rows = [](const std::string& p) {
    std::vector<std::string> out;
    std::ifstream in(p);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      EXPECT_GT(j.at("seconds").get<double>(), 0.0);  // carried across the resume, but wall time
      j.erase("tokens_per_s");
      j.erase("mfu");
      j.erase("seconds");
      out.push_back(j.dump());
    }
    return out;
  };
  EXPECT_EQ(rows(full.run_dir + "/metrics.jsonl"), rows(part.run_dir + "/metrics.jsonl"));
}

TEST_P(BothPrecisions, CachedDecodingEqualsFullForward) {
  ModelConfig mc = test::small_model(32, 4, 2, 16);
  Model m(mc);
  m.init_weights(11);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;  // non-trivial attention
  if (GetParam()) m.enable_bf16();
  const int64_t T = 16;
  std::vector<int32_t> tok(T);
  for (int64_t i = 0; i < T; i++) tok[i] = int32_t((i * 37 + 5) % 256);
  Activations a(m, 1, T, false);
  model_forward(m, a, tok.data(), nullptr, ForwardMode{});  // logits (1,T,V)
  Generator g(m, T, /*chunk=*/4);
  // prefill 6 tokens (two chunks), then one at a time
  float* lg = g.feed(tok.data(), 6);
  auto expect_row = [&](const float* got, int64_t t) {
    for (int64_t v = 0; v < mc.vocab_size; v++)
      ASSERT_NEAR(got[v], a.logits[t * mc.vocab_size + v], 1e-4) << "position " << t << " token " << v;
  };
  expect_row(lg, 5);
  for (int64_t t = 6; t < T; t++) expect_row(g.feed(&tok[t], 1), t);
}

// A bf16 KV cache (--kv-cache bf16), in a dense and a Mixture-of-Depths model (head
// dimension 16: decoding's one-query kernel): one rounded cache read by two kernels,
// so a prompt fed in chunks of 4 (blocks of queries over widened rows) and a sequence
// fed token by token (one query at a time) give the same logits within 1e-4, at every
// position; three sequences stepped together give each the logits it gets alone
// (exactly: each row's arithmetic is its own). Against an fp32 cache the logits move,
// somewhere by more than 1e-4: the keys and values are really rounded. (How far they
// move depends on the model: up to 0.87 here, where weights × 5 make attention sharp
// and the logits reach ±14; the serving test bounds it for a trained model.)
TEST(Model, Bf16KvCacheGivesTheSameLogitsFedInChunksOrOneByOne) {
  for (const bool mod : {false, true}) {
    ModelConfig mc = test::small_model(64, 4, 4, 24);
    if (mod) mc.mod.enabled = true, mc.mod.causal = Causal::router_bce;
    Model m(mc);
    m.init_weights(13);
    for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;  // non-trivial attention
    const int64_t T = 20, V = mc.vocab_size;
    std::vector<int32_t> tok(T);
    for (int64_t i = 0; i < T; i++) tok[i] = int32_t((i * 37 + 5) % 256);
    Generator chunked(m, T, 4, 1, 0, KvCache::bf16), single(m, T, 4, 1, 0, KvCache::bf16), exact(m, T, 4);
    std::vector<float> one_by_one(size_t(T * V)), fp32(size_t(T * V));
    for (int64_t t = 0; t < T; t++) {
      const float* lg = single.feed(&tok[size_t(t)], 1);
      std::copy(lg, lg + V, one_by_one.begin() + t * V);
      lg = exact.feed(&tok[size_t(t)], 1);
      std::copy(lg, lg + V, fp32.begin() + t * V);
    }
    double moved = 0;
    for (int64_t t = 0; t < T; t++) {
      chunked.reset();
      const float* lg = chunked.feed(tok.data(), t + 1);  // its last token's logits
      for (int64_t v = 0; v < V; v++) {
        ASSERT_NEAR(lg[v], one_by_one[size_t(t * V + v)], 1e-4) << "mod " << mod << " position " << t << " token " << v;
        moved = std::max(moved, double(std::abs(one_by_one[size_t(t * V + v)] - fp32[size_t(t * V + v)])));
      }
    }
    EXPECT_GT(moved, 1e-4) << "mod " << mod << ": the bf16 cache's logits equal the fp32 cache's";
    // three sequences, different prompts, stepped together against each alone
    Generator batch(m, T, 4, 3, 0, KvCache::bf16);
    std::vector<std::vector<float>> alone(3);
    for (int64_t r = 0; r < 3; r++) {
      Generator g(m, T, 4, 1, 0, KvCache::bf16);
      g.feed(tok.data() + r, 5 + r);
      batch.feed(tok.data() + r, 5 + r, r);
      for (int64_t t = 0; t < 6; t++) {
        const float* lg = g.feed(&tok[size_t(t)], 1);
        alone[size_t(r)].insert(alone[size_t(r)].end(), lg, lg + V);
      }
    }
    const int64_t rows[3] = {0, 1, 2};
    for (int64_t t = 0; t < 6; t++) {
      const int32_t next[3] = {tok[size_t(t)], tok[size_t(t)], tok[size_t(t)]};
      const float* lg = batch.step(next, rows, 3);
      for (int64_t r = 0; r < 3; r++)
        for (int64_t v = 0; v < V; v++)
          ASSERT_EQ(lg[r * V + v], alone[size_t(r)][size_t(t * V + v)]) << "mod " << mod << " row " << r << " step " << t;
    }
  }
}

// Past the cache's capacity the context slides: the last capacity/2 tokens are fed
// again from position 0. Every token of a long greedy generation must equal what a
// fresh generator predicts from the window this rule defines.
TEST(Model, GenerationSlidesPastTheCache) {
  Model m(test::small_model(32, 4, 2, 16));
  m.init_weights(12);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  const int64_t cap = 8, keep = cap / 2, n_new = 30;
  Generator g(m, cap);
  const std::vector<int32_t> prompt = {1, 2, 3};
  const SamplingParams greedy{0.0, 0, 1.0};
  GenerateResult r = generate(g, prompt, n_new, greedy, 0);
  ASSERT_EQ(r.tokens.size(), size_t(n_new));
  std::vector<int32_t> window = prompt;  // what the cache holds before each sample
  Rng unused(0);
  int slides = 0;
  for (int64_t t = 0; t < n_new; t++) {
    Generator fresh(m, cap);
    float* logits = fresh.feed(window.data(), int64_t(window.size()));
    ASSERT_EQ(sample_token(logits, m.cfg.vocab_size, greedy, unused), r.tokens[size_t(t)]) << "token " << t;
    const bool full = int64_t(window.size()) == cap;
    window.push_back(r.tokens[size_t(t)]);
    if (full) {
      window.erase(window.begin(), window.end() - keep);
      slides++;
    }
  }
  EXPECT_GE(slides, 3);
}
