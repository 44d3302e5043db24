// Sampling within the capacity: the thresholds that make each routed block process the
// share k/T that top-k processes in training (infer/calibration.h), how they are stored
// in a checkpoint, and how the command line uses them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "formats/token_file.h"
#include "infer/calibration.h"
#include "infer/causal_eval.h"
#include "nn/model.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace fw;
using fw::test::flopwise;

namespace {

int64_t count_above(const std::vector<float>& v, float threshold) {
  return std::count_if(v.begin(), v.end(), [&](float s) { return s > threshold; });
}

// A four-layer MoD model (blocks 1 and 3 routed) with large random weights, so that the
// trained rule's threshold of 0 processes shares far from the capacity.
Model uncalibrated_model(Causal causal) {
  ModelConfig c = test::small_model(32, 4, 4, 32);
  c.mod.enabled = true;
  c.mod.causal = causal;
  Model m(c);
  m.init_weights(31);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;
  return m;
}

std::vector<int32_t> pseudo_text(int n, int mul, int add) {
  std::vector<int32_t> tok;
  for (int i = 0; i < n; i++) tok.push_back(int32_t((i * mul + add + (i / 7) * (i % 5)) % 256));
  return tok;
}

// Replaces (or, with an empty value, removes) one metadata entry of a safetensors file,
// keeping its tensors' bytes.
void set_metadata(const std::string& path, const std::string& key, const std::string& value) {
  test::RawSafetensors f = test::read_raw_safetensors(path);
  if (value.empty()) f.header["__metadata__"].erase(key);
  else f.header["__metadata__"][key] = value;
  test::write_raw_safetensors(path, f);
}

}  // namespace

// The threshold splits the scores so that exactly round(share · n) lie above it.
TEST(Calibration, CapacityThresholdPutsTheShareAboveIt) {
  const std::vector<float> scores = test::randn(1000, 5);
  for (double share : {0.125, 0.5, 1.0 / 3.0, 0.999, 1.0, 0.0004}) {
    SCOPED_TRACE(share);
    std::vector<float> work = scores;
    const float t = capacity_threshold(work, share);
    EXPECT_EQ(count_above(scores, t), std::llround(share * 1000.0));
  }
  // the midpoint between the neighbours, not either of them
  std::vector<float> four = {3.0f, 1.0f, 4.0f, 2.0f};
  EXPECT_FLOAT_EQ(capacity_threshold(four, 0.5), 2.5f);
  // adjacent floats: still strictly between, with the upper one above
  std::vector<float> adjacent = {1.0f, std::nextafter(1.0f, 2.0f)};
  const float t = capacity_threshold(adjacent, 0.5);
  EXPECT_EQ(count_above({1.0f, std::nextafter(1.0f, 2.0f)}, t), 1);
  // ties at the quantile fall on one side (below): fewer than the share can be above
  std::vector<float> ties = {0.0f, 1.0f, 1.0f, 1.0f};
  EXPECT_EQ(count_above({0.0f, 1.0f, 1.0f, 1.0f}, capacity_threshold(ties, 0.5)), 0);
  // bad input
  std::vector<float> none;
  EXPECT_THROW(capacity_threshold(none, 0.5), Error);
  std::vector<float> some = {1.0f, 2.0f};
  EXPECT_THROW(capacity_threshold(some, 0.0), Error);
  EXPECT_THROW(capacity_threshold(some, 1.5), Error);
}

// Calibrated, every routed block processes exactly k of every T tokens of the text it
// was calibrated on (both deciders: the router's own logit and the predictor's), where
// the trained rule processed shares far from that. Unrouted layers keep threshold 0 and
// process everything.
TEST(Calibration, CalibratedSamplingProcessesTheCapacityOnItsText) {
  for (Causal causal : {Causal::router_bce, Causal::predictor}) {
    SCOPED_TRACE(name_of(causal));
    const Model m = uncalibrated_model(causal);
    const int64_t T = 32;
    TokenLoader data(pseudo_text(2000, 37, 11), 256, "synthetic");
    const double share = double(m.cfg.mod.k(T)) / double(T);
    const CausalEvalResult before = evaluate_causal(m, data, 1024, T, m.causal_thresholds(false));
    double worst = 0;
    for (int64_t l : {1, 3}) worst = std::max(worst, std::fabs(before.processed_fraction[size_t(l)] - share));
    ASSERT_GT(worst, 0.1) << "the trained rule already processes the capacity: the test would prove little";

    const CausalCalibration cal = calibrate_causal(m, data, 1024, T);
    ASSERT_EQ(cal.threshold.size(), 4u);
    EXPECT_EQ(cal.threshold[0], 0.0f);
    EXPECT_EQ(cal.threshold[2], 0.0f);
    EXPECT_EQ(cal.tokens, 1024);
    const CausalEvalResult after = evaluate_causal(m, data, 1024, T, cal.threshold);
    EXPECT_EQ(after.tokens, 1024);
    EXPECT_EQ(after.processed_fraction[0], 1.0);
    EXPECT_EQ(after.processed_fraction[2], 1.0);
    for (int64_t l : {1, 3}) EXPECT_DOUBLE_EQ(after.processed_fraction[size_t(l)], share) << "block " << l;
    // a dense model has nothing to calibrate
    const Model dense(test::small_model(32, 4, 2, 32));
    EXPECT_THROW(calibrate_causal(dense, data, 1024, T), Error);
  }
}

// Training calibrates its final checkpoint on the validation windows: the thresholds are
// in model.safetensors, load back unchanged, and equal a calibration of the loaded model
// on the same windows. A run stopped early carries none (they would go stale), and
// resuming it ends on the same file as the run trained straight through.
TEST(Calibration, TrainingCalibratesItsFinalCheckpoint) {
  const std::string data = test::text_data("data", "routing tokens around blocks, some of them. ", 134, 600);
  Config c = test::tiny_run_config();
  c.model.n_layers = 4;
  c.model.mod.enabled = true;
  c.train.steps = 20;
  c.train.eval_every = 0;
  const test::ResumePair r = test::train_straight_and_resumed(c, data, "mod", 9);
  const LoadedModel lm = load_model(r.full_dir);
  ASSERT_FALSE(lm.model->calibration.empty());
  TokenLoader val(data + "/val.bin", 256);
  const CausalCalibration again = calibrate_causal(*lm.model, val, c.train.eval_tokens, c.train.seq_len);
  EXPECT_EQ(lm.model->calibration.threshold, again.threshold);
  EXPECT_EQ(lm.model->calibration.tokens, again.tokens);
  EXPECT_EQ(test::slurp(r.full_dir + "/model.safetensors"), test::slurp(r.part_dir + "/model.safetensors"));
  // stopped early: no calibration in the checkpoint
  TrainOptions stopped;
  stopped.data_dir = data;
  stopped.run_dir = test::temp_dir("stopped");
  stopped.stop_after = 9;
  run_training(c, stopped);
  EXPECT_TRUE(load_model(stopped.run_dir).model->calibration.empty());
}

// The command line: eval reports both routings; `calibrate` calibrates a checkpoint that
// has no thresholds (one made before calibration existed) and rewrites only them;
// `sample --routing` chooses; bad calibration metadata is refused by file and key.
TEST(Calibration, CommandLine) {
  const std::string data = test::text_data("data", "the router learns which tokens need the block. ", 120, 800);
  const std::string run = test::temp_dir("run");
  const std::string tiny =
      " --set model.d_model=32 --set model.n_heads=2 --set model.n_layers=4 --set model.max_seq_len=32"
      " --set mod.enabled=true --set train.seq_len=32 --set train.batch_size=4 --set train.steps=15"
      " --set train.warmup=3 --set train.eval_every=0 --set train.eval_tokens=512";
  const test::Run t = flopwise("train --data " + data + " --out " + run + tiny);
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("calibrated sampling's routing"), std::string::npos) << t.out;
  const std::string file = run + "/model.safetensors";

  // a checkpoint without thresholds, as older versions wrote
  set_metadata(file, "flopwise.calibration", "");
  const std::string weights = test::read_raw_safetensors(file).tensors;
  test::Run e = flopwise("eval --ckpt " + run + " --data " + data + " --json");
  ASSERT_EQ(e.code, 0) << e.out;
  nlohmann::json ej = test::last_json_line(e.out);
  EXPECT_FALSE(ej["calibrated"].get<bool>());
  test::Run s = flopwise("sample --ckpt " + run + " --prompt 'the ' --tokens 8 --seed 1");
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("not calibrated"), std::string::npos) << s.out;

  const test::Run cal = flopwise("calibrate --ckpt " + run + " --data " + data + " --json");
  ASSERT_EQ(cal.code, 0) << cal.out;
  const nlohmann::json cj = test::last_json_line(cal.out);
  EXPECT_EQ(cj["routed_layers"], nlohmann::json({1, 3}));
  EXPECT_EQ(cj["tokens"].get<int64_t>(), 512);
  EXPECT_EQ(test::read_raw_safetensors(file).tensors, weights) << "calibrate changed the weights";

  e = flopwise("eval --ckpt " + run + " --data " + data + " --tokens 512 --json");
  ASSERT_EQ(e.code, 0) << e.out;
  ej = test::last_json_line(e.out);
  EXPECT_TRUE(ej["calibrated"].get<bool>());
  const double share = ej["capacity_share"].get<double>();
  EXPECT_DOUBLE_EQ(share, 4.0 / 32.0);
  const auto per_layer = ej["processed_fraction_calibrated_per_layer"].get<std::vector<double>>();
  ASSERT_EQ(per_layer.size(), 2u);  // the routed blocks, 1 and 3
  // on the windows calibration read (the first train.eval_tokens of val.bin)
  EXPECT_DOUBLE_EQ(per_layer[0], share);
  EXPECT_DOUBLE_EQ(per_layer[1], share);
  EXPECT_GT(ej["val_loss_calibrated"].get<double>(), 0);

  for (const char* routing : {"calibrated", "uncalibrated"}) {
    s = flopwise(std::string("sample --ckpt ") + run + " --prompt 'the ' --tokens 8 --seed 1 --routing " + routing);
    EXPECT_EQ(s.code, 0) << s.out;
    EXPECT_EQ(s.out.find("not calibrated"), std::string::npos) << s.out;
  }
  EXPECT_NE(flopwise("sample --ckpt " + run + " --prompt 'the ' --routing sometimes").code, 0);

  // bad metadata: one line naming the file and the key, and the file is left as it was
  const std::string good = test::slurp(file);
  for (const char* bad : {"not json", R"({"threshold": [0, 1], "tokens": 512})",
                          R"({"threshold": [0, 1, 0, "x"], "tokens": 512})",
                          R"({"threshold": [0.5, 1, 0, 1], "tokens": 512})",
                          R"({"threshold": [0, 1, 0, 1e999], "tokens": 512})",
                          R"({"threshold": [0, 1, 0, 1], "tokens": 0})", R"({"threshold": [0, 1, 0, 1]})"}) {
    SCOPED_TRACE(bad);
    set_metadata(file, "flopwise.calibration", bad);
    test::expect_error(flopwise("eval --ckpt " + run + " --data " + data), file + ": metadata 'flopwise.calibration'");
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << good;

  // calibrate refuses a dense checkpoint and a data folder of another tokenizer
  const std::string dense = test::temp_dir("dense");
  ASSERT_EQ(flopwise("train --data " + data + " --out " + dense + tiny + " --set mod.enabled=false").code, 0);
  test::expect_error(flopwise("calibrate --ckpt " + dense + " --data " + data), "not a Mixture-of-Depths model");
}
