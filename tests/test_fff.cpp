// Fast feedforward trees in the model: shapes, parameter and FLOP counts, the same
// tree path in training, evaluation and sampling, training from the command line.
// (Kernel equivalence: test_kernels.cpp; gradients: test_gradcheck.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "infer/generator.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "test_util.h"
#include "train/evaluate.h"
#include "train/trainer.h"

using namespace fw;

namespace {
ModelConfig fff_model(int64_t K, int64_t D, int64_t layers = 2) {
  ModelConfig c = test::small_model(32, 4, layers, 16);
  c.mlp = MlpKind::fff;
  c.fff.trees = K;
  c.fff.depth = D;
  return c;
}
}  // namespace

TEST(Fff, ShapesParametersAndFlops) {
  ModelConfig c = fff_model(3, 4);
  const MlpShape s = c.mlp_shape();
  EXPECT_EQ(s.tree_nodes(), 31);
  Model m(c);
  EXPECT_EQ(m.num_params(), Model::count_params(c));
  // the dense model minus its two MLP matrices, plus K·N·(2C + 1) per block
  ModelConfig dense = c;
  dense.mlp = MlpKind::dense;
  const int64_t per_layer_dense = 2 * dense.hidden() * 32, per_layer_fff = 3 * 31 * (2 * 32 + 1);
  EXPECT_EQ(int64_t(Model::count_params(dense)) - int64_t(Model::count_params(c)), 2 * (per_layer_dense - per_layer_fff));
  // forward FLOPs: the MLP term is 4·d per visited neuron: K(D+1) of them, not 4·d·F
  const FlopCount fd = count_flops(dense, 16), ff = count_flops(c, 16);
  EXPECT_DOUBLE_EQ(fd.mlp, 2 * 4.0 * 16 * 32 * double(dense.hidden()));
  EXPECT_DOUBLE_EQ(ff.mlp, 2 * 4.0 * 16 * 32 * 3 * 5);
  EXPECT_DOUBLE_EQ(fd.forward_per_seq() - fd.mlp, ff.forward_per_seq() - ff.mlp);
  // no MLP: no MLP parameters, no norm, no FLOPs
  ModelConfig none = c;
  none.mlp = MlpKind::none;
  EXPECT_EQ(Model(none).num_params(), Model::count_params(none));
  EXPECT_EQ(int64_t(Model::count_params(dense)) - int64_t(Model::count_params(none)), 2 * (per_layer_dense + 32));
  EXPECT_EQ(count_flops(none, 16).mlp, 0.0);
}

TEST(Fff, DepthDefaultsToTheDenseWidth) {
  ModelConfig c = test::small_model(32, 4, 2, 16);  // hidden 128
  c.mlp = MlpKind::fff;
  EXPECT_EQ(c.mlp_shape().D, 6);  // 127 neurons
  c.fff.trees = 4;                // 32 per tree: 31 neurons
  EXPECT_EQ(c.mlp_shape().D, 4);
  c.fff.depth = 0;                // explicit: one neuron per tree
  EXPECT_EQ(c.mlp_shape().D, 0);
}

TEST(Fff, BadConfigsRejectedByName) {
  auto bad = [](auto edit, const char* field) {
    ModelConfig c = fff_model(1, 3);
    edit(c);
    try {
      c.validate();
      ADD_FAILURE() << "accepted a bad " << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  bad([](ModelConfig& c) { c.fff.trees = 0; }, "fff.trees");
  bad([](ModelConfig& c) { c.fff.depth = 21; }, "fff.depth");
  bad([](ModelConfig& c) { c.fff.depth = -2; }, "fff.depth");
  Config cfg;  // a name that is no MLP kind is refused where the config is read
  try {
    apply_set(cfg, "model.mlp=tree");
    ADD_FAILURE() << "accepted a bad model.mlp";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.mlp = 'tree' must be 'dense', 'fff', 'fff_leaf' or 'none'"),
              std::string::npos) << e.what();
  }
}

// One token's tree path is the same whether the model trains (activations with a
// backward), evaluates (without) or samples (the KV-cached generator, one token at a
// time): the branch rule λ > 0 sees the same λ in all three.
TEST(Fff, SamePathInTrainingEvaluationAndSampling) {
  ModelConfig c = fff_model(2, 5, 1);
  Model m(c);
  m.init_weights(31);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  const int64_t T = 16, P = 2 * 6;  // K·(D+1) visits per token
  std::vector<int32_t> tok(T);
  for (int64_t i = 0; i < T; i++) tok[size_t(i)] = int32_t((i * 29 + 3) % 256);
  Activations train(m, 1, T, true), eval(m, 1, T, false);
  model_forward(m, train, tok.data(), tok.data(), ForwardMode{true, 0});
  model_forward(m, eval, tok.data(), nullptr, ForwardMode{});
  const float* tp = train.blocks[0].mlp.path;
  const float* ep = eval.blocks[0].mlp.path;
  ASSERT_EQ(std::vector<float>(tp, tp + T * P), std::vector<float>(ep, ep + T * P));
  std::vector<float> leaves;  // distinct leaves reached: the test sees many paths
  Generator g(m, T, 4);
  for (int64_t t = 0; t < T; t++) {
    const float* lg = g.feed(&tok[size_t(t)], 1);
    const float* gp = g.last_block_acts().mlp.path;  // this token's, in the only block
    for (int64_t v = 0; v < P; v++) ASSERT_EQ(gp[v], tp[t * P + v]) << "token " << t << " visit " << v;
    for (int64_t v = 0; v < c.vocab_size; v++) ASSERT_NEAR(lg[v], eval.logits[t * c.vocab_size + v], 1e-4);
    leaves.push_back(tp[t * P + 5]);
  }
  std::sort(leaves.begin(), leaves.end());
  EXPECT_GT(std::unique(leaves.begin(), leaves.end()) - leaves.begin(), 4);
}

// An FFF inside Mixture-of-Depths routed blocks decodes, token by token, exactly as a
// one-pass prefill does.
TEST(Fff, InsideRoutedBlocksDecodingMatchesPrefill) {
  ModelConfig c = fff_model(2, 3, 4);
  c.mod.enabled = true;
  c.mod.causal = Causal::router_bce;
  c.max_seq_len = 24;
  Model m(c);
  m.init_weights(32);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  const int64_t T = 24;
  std::vector<int32_t> tok(T);
  for (int64_t i = 0; i < T; i++) tok[size_t(i)] = int32_t((i * 53 + 7) % 256);
  Generator whole(m, T, T), step(m, T, 4);
  whole.feed(tok.data(), T);
  for (int64_t t = 0; t < T; t++) {
    const float* got = step.feed(&tok[size_t(t)], 1);
    for (int64_t v = 0; v < c.vocab_size; v++) ASSERT_NEAR(got[v], whole.logits(t)[v], 1e-4) << "position " << t;
  }
  EXPECT_GT(step.cache_length(1), 0);
  EXPECT_LT(step.cache_length(1), T);
}

// From the command line: an FFF model and a model without MLP train, evaluate
// (reporting the leaves the trees use) and sample.
TEST(Fff, TrainEvalSampleFromTheCli) {
  const std::string data = test::text_data("fff_cli", "the quick brown fox jumps over the lazy dog. ");
  for (const char* mlp : {"fff", "fff_leaf", "none"}) {
    SCOPED_TRACE(mlp);
    const std::string run = test::temp_dir(std::string("fff_run_") + mlp);
    auto r = test::flopwise("train --data " + data + " --out " + run +
                            " --set model.d_model=32 --set model.n_layers=2 --set model.n_heads=2"
                            " --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4"
                            " --set train.steps=40 --set train.warmup=4 --set train.lr=3e-3 --set train.eval_tokens=128"
                            " --set model.mlp=" + mlp + " --set fff.trees=2 --set fff.depth=3 --set fff.leaf_width=8"
                            " --json");
    ASSERT_EQ(r.code, 0) << r.out;
    auto e = test::flopwise("eval --ckpt " + run + " --data " + data + " --json");
    ASSERT_EQ(e.code, 0) << e.out;
    auto j = nlohmann::json::parse(e.out.substr(e.out.rfind('{')));
    EXPECT_LT(j["val_loss"].get<double>(), 3.5);  // from ln 256 = 5.55 at the start: it learns
    if (std::string(mlp) != "none") {
      const double used = j["fff_leaves_used"].get<double>();
      EXPECT_GT(used, 0.0);
      EXPECT_LE(used, 1.0);
      EXPECT_EQ(j["fff_leaves_used_per_layer"].size(), 2u);
    } else {
      EXPECT_FALSE(j.contains("fff_leaves_used"));
    }
    auto s = test::flopwise("sample --ckpt " + run + " --prompt the --tokens 20 --json");
    ASSERT_EQ(s.code, 0) << s.out;
  }
}

// flopwise bench fff reports both speedups and the FLOP limit (dense neurons per FFF
// neuron used); bad flags get one line.
TEST(Fff, BenchFffReportsSpeedupsAndLimit) {
  auto r = test::flopwise("bench fff --d 64 --depth 5 --batch 256 --batch1-tokens 4 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.rfind('{')));
  EXPECT_DOUBLE_EQ(j["limit"].get<double>(), 63.0 / 6.0);
  EXPECT_GT(j["speedup_batch1"].get<double>(), 0.0);
  EXPECT_GT(j["speedup_batched"].get<double>(), 0.0);
  EXPECT_EQ(j["fff_weight_bytes_per_token"].get<double>(), 4.0 * 6 * (2 * 64 + 1));
  auto bad = test::flopwise("bench fff --preset gpt4");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("--preset 'gpt4' is not known"), std::string::npos) << bad.out;
}

TEST(FffLeaf, ParametersAndFlops) {
  ModelConfig c = test::small_model(32, 4, 2, 16);
  c.mlp = MlpKind::fff_leaf;
  c.fff.trees = 2;
  c.fff.leaf_width = 8;  // depth -1: 128 / (2·8) = 8 leaves per tree, D = 3
  const MlpShape s = c.mlp_shape();
  EXPECT_EQ(s.D, 3);
  EXPECT_EQ(Model(c).num_params(), Model::count_params(c));
  // per token and block: inference 2d·K·D + 4d·K·l; training 2d·K·R + 4d·K·L·l
  const FlopCount f = count_flops(c, 16);
  EXPECT_DOUBLE_EQ(f.mlp, 2 * 16 * (2.0 * 32 * 2 * 3 + 4.0 * 32 * 2 * 8));
  EXPECT_DOUBLE_EQ(f.mlp_train, 2 * 16 * (2.0 * 32 * 2 * 7 + 4.0 * 32 * 2 * 8 * 8));
  EXPECT_DOUBLE_EQ(f.train_per_token(), 3 * (f.forward_per_seq() - f.mlp + f.mlp_train) / 16);
}

// Training mixes all leaves softly with random child transpositions drawn from the
// run's saved random stream; evaluation descends hard. So a run resumed from a
// checkpoint is bit-identical to an uninterrupted one, and the validation loss the
// trainer reports is the hard (inference) loss that `eval` reports.
TEST(FffLeaf, TrainsResumesExactlyAndEvaluatesHard) {
  std::string dir = test::text_data("leaf_data", "a binary tree of neurons. ", 150, 600);
  Config c = test::tiny_run_config();
  c.model.mlp = MlpKind::fff_leaf;
  c.model.fff.trees = 2;
  c.model.fff.depth = 2;
  c.model.fff.leaf_width = 16;
  c.model.fff.transpose_prob = 0.2;
  c.train.steps = 40;
  c.train.warmup = 4;
  c.train.eval_every = 0;
  const test::ResumePair r = test::train_straight_and_resumed(c, dir, "leaf");
  EXPECT_LT(r.full.val_loss, 3.5);  // from 5.55: it learns
  EXPECT_EQ(test::slurp(r.full_dir + "/model.safetensors"), test::slurp(r.part_dir + "/model.safetensors"));
  auto e = test::flopwise("eval --ckpt " + r.full_dir + " --data " + dir + " --tokens 256 --json");
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NEAR(test::last_json_line(e.out)["val_loss"].get<double>(), r.full.val_loss, 1e-6);
}
