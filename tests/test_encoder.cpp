// Encoders (model.kind = encoder): masked-LM batches, the loss at chosen tokens only,
// training that resumes exactly, and the errors an encoder config can get. Attention
// and gradients: test_kernels.cpp (BidirectionalAttentionNeverSeesPadding) and
// test_gradcheck.cpp (AttentionBidirectionalPadded, WholeModelEncoder).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <vector>

#include "batching/masking.h"
#include "formats/safetensors.h"
#include "kernels/reference.h"
#include "nn/model.h"
#include "test_util.h"

using namespace fw;

namespace {

ModelConfig encoder_config() {
  ModelConfig c = test::small_model(16, 2, 2, 64);
  c.kind = ModelKind::encoder;
  c.vocab_size = 100 + SpecialTokens::count;  // text ids 0..99
  return c;
}

}  // namespace

// Each row: [CLS], then the row's first T−1 text tokens; exactly m positions chosen
// (never [CLS]), their targets the original tokens, −1 elsewhere; over many rows
// about 80% of the chosen become [MASK], 10% a random text token, 10% stay.
TEST(Encoder, MaskingChoosesTheRateAndFollowsEightyTenTen) {
  const ModelConfig c = encoder_config();
  const SpecialTokens sp = c.special_tokens();
  EXPECT_EQ(sp.pad, 100);
  EXPECT_EQ(sp.cls, 101);
  EXPECT_EQ(sp.sep, 102);
  EXPECT_EQ(sp.mask, 103);
  const int64_t B = 400, T = 41;
  std::vector<int32_t> text(B * T), in(B * T), tgt(B * T);
  for (size_t i = 0; i < text.size(); i++) text[i] = int32_t(i * 7919 % 100);
  mask_for_mlm(in.data(), tgt.data(), text.data(), B, T, 0.15, c, 1234);
  const int64_t m = mlm_chosen_per_row(T, 0.15);
  EXPECT_EQ(m, 6);  // round(0.15 · 40)
  int64_t masked = 0, kept = 0, replaced = 0;
  for (int64_t b = 0; b < B; b++) {
    EXPECT_EQ(in[b * T], sp.cls);
    EXPECT_EQ(tgt[b * T], -1);
    int64_t chosen = 0;
    for (int64_t t = 1; t < T; t++) {
      const int32_t original = text[b * T + t - 1];
      if (tgt[b * T + t] < 0) {
        ASSERT_EQ(in[b * T + t], original) << "an unchosen token changed";
        continue;
      }
      chosen++;
      ASSERT_EQ(tgt[b * T + t], original);
      if (in[b * T + t] == sp.mask) masked++;
      else if (in[b * T + t] == original) kept++;
      else {
        replaced++;
        ASSERT_LT(in[b * T + t], 100) << "a random replacement must be a text token";
      }
    }
    ASSERT_EQ(chosen, m) << "row " << b;
  }
  const double n = double(B * m);  // 2400 chosen: the shares' standard errors are under 1%
  EXPECT_NEAR(masked / n, 0.8, 0.03);
  EXPECT_NEAR(replaced / n, 0.1 * 0.99, 0.02);  // a random token equals the original 1 time in 100
  EXPECT_NEAR(kept / n, 0.1 + 0.1 * 0.01, 0.02);
  // the same seed, the same batch; another seed, another
  std::vector<int32_t> in2(B * T), tgt2(B * T);
  mask_for_mlm(in2.data(), tgt2.data(), text.data(), B, T, 0.15, c, 1234);
  EXPECT_EQ(in, in2);
  EXPECT_EQ(tgt, tgt2);
  mask_for_mlm(in2.data(), tgt2.data(), text.data(), B, T, 0.15, c, 1235);
  EXPECT_NE(tgt, tgt2);
  // rates: at least one token, at most every text token
  EXPECT_EQ(mlm_chosen_per_row(T, 0.001), 1);
  EXPECT_EQ(mlm_chosen_per_row(T, 0.999), T - 1);
  EXPECT_EQ(mlm_chosen_per_row(2, 0.15), 1);
}

// Sparse prediction scores exactly the chosen tokens: its loss equals the mean
// cross-entropy, computed from the full logits (the forward without targets), at
// the chosen positions; a target changed at an unchosen position changes nothing.
TEST(Encoder, MaskedLossIsOverTheChosenTokensOnly) {
  const ModelConfig c = encoder_config();
  Model m(c);
  m.init_weights(3);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 4.0f;
  const int64_t B = 3, T = 20, V = c.vocab_size;
  std::vector<int32_t> text(B * T), in(B * T), tgt(B * T);
  for (size_t i = 0; i < text.size(); i++) text[i] = int32_t(i * 31 % 100);
  mask_for_mlm(in.data(), tgt.data(), text.data(), B, T, 0.3, c, 9);
  Activations a(m, B, T, false);
  model_forward(m, a, in.data(), nullptr, ForwardMode{});  // logits at every token
  std::vector<double> logits(a.logits, a.logits + B * T * V);
  double sum = 0;
  int64_t n = 0, correct = 0;
  for (int64_t i = 0; i < B * T; i++) {
    if (tgt[i] < 0) continue;
    const double* row = logits.data() + i * V;
    double mx = row[0], z = 0;
    int64_t arg = 0;
    for (int64_t j = 0; j < V; j++)
      if (row[j] > mx) mx = row[j], arg = j;
    for (int64_t j = 0; j < V; j++) z += std::exp(row[j] - mx);
    sum += std::log(z) + mx - row[tgt[i]];
    n++;
    correct += arg == tgt[i];
  }
  const ForwardLoss f = model_forward(m, a, in.data(), tgt.data(), ForwardMode{});
  EXPECT_EQ(f.scored, n);
  EXPECT_EQ(n, B * mlm_chosen_per_row(T, 0.3));
  EXPECT_NEAR(f.loss, sum / double(n), 1e-5);
  EXPECT_EQ(f.correct, correct);
  for (int64_t i = 0; i < B * T; i++)
    if (tgt[i] < 0) {  // scoring it would change the loss
      auto tgt2 = tgt;
      tgt2[i] = -1;
      EXPECT_EQ(model_forward(m, a, in.data(), tgt2.data(), ForwardMode{}).loss, f.loss);
      break;
    }
}

// Padding changes no real token's representation: a row of 12 real tokens padded to
// 20 with [PAD] (or with anything else) gives the same final states at its real tokens
// as the same row alone at length 12.
TEST(Encoder, PaddedRowEqualsTheRowAlone) {
  const ModelConfig c = encoder_config();
  Model m(c);
  m.init_weights(4);
  const int64_t T = 20, real = 12, C = c.d_model;
  std::vector<int32_t> row(T);
  for (int64_t t = 0; t < T; t++) row[t] = t < real ? int32_t(t * 13 % 100) : c.special_tokens().pad;
  Activations padded(m, 1, T, false);
  padded.lengths = {int32_t(real)};
  model_forward(m, padded, row.data(), nullptr, ForwardMode{});
  Activations alone(m, 1, real, false);
  model_forward(m, alone, row.data(), nullptr, ForwardMode{});
  for (int64_t i = 0; i < real * C; i++) ASSERT_NEAR(padded.lnf[i], alone.lnf[i], 1e-5) << i;
  for (int64_t t = real; t < T; t++) row[t] = 7;  // other padding: the same real states, exactly
  std::vector<float> before(padded.lnf, padded.lnf + real * C);
  model_forward(m, padded, row.data(), nullptr, ForwardMode{});
  for (int64_t i = 0; i < real * C; i++) ASSERT_EQ(padded.lnf[i], before[size_t(i)]) << i;
}

// The same with Mixture-of-Depths: a padded row's routed blocks select k(12) = 6 of its
// 12 real tokens (capacity 0.5), as the row alone does, never padding, and their inner
// rows mask the slots left over (k(20) = 10 in the padded batch); the auxiliary losses
// are over real tokens. A second, unpadded row in the batch is unaffected.
TEST(Encoder, PaddedRowEqualsTheRowAloneWithMixtureOfDepths) {
  ModelConfig c = encoder_config();
  c.mod.enabled = true;
  c.mod.capacity = 0.5;
  c.mod.bce_weight = 0.1;
  Model m(c);
  m.init_weights(4);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 5.0f;  // routers that tell tokens apart
  const int64_t T = 20, real = 12, C = c.d_model;
  std::vector<int32_t> rows(size_t(2 * T));
  for (int64_t t = 0; t < 2 * T; t++)
    rows[size_t(t)] = t < real || t >= T ? int32_t(t * 13 % 100) : c.special_tokens().pad;
  Activations padded(m, 2, T, false);
  padded.lengths = {int32_t(real), int32_t(T)};
  const ForwardLoss fp = model_forward(m, padded, rows.data(), nullptr, ForwardMode{});
  Activations alone(m, 1, real, false), full(m, 1, T, false);
  model_forward(m, alone, rows.data(), nullptr, ForwardMode{});
  for (int64_t i = 0; i < real * C; i++) ASSERT_NEAR(padded.lnf[i], alone.lnf[i], 1e-5) << i;
  model_forward(m, full, rows.data() + T, nullptr, ForwardMode{});
  for (int64_t i = 0; i < T * C; i++) ASSERT_NEAR(padded.lnf[T * C + i], full.lnf[i], 1e-5) << i;
  for (int64_t l = 0; l < c.n_layers; l++) {
    if (!c.mod.routed(l)) continue;
    const RoutedActs& r = padded.routed[size_t(l)];
    EXPECT_EQ(r.inner_lengths, (std::vector<int32_t>{6, 10}));
    EXPECT_EQ(r.real_tokens, real + T);
    for (int64_t t = real; t < T; t++) EXPECT_EQ(r.selected[size_t(t)], 0) << "padding selected at " << t;
    EXPECT_EQ(std::count(r.selected.begin(), r.selected.begin() + T, 1), 6);
    // the router loss is the mean over the 32 real tokens: the two rows' own sums
    const RoutedActs &ra = alone.routed[size_t(l)], &rf = full.routed[size_t(l)];
    EXPECT_NEAR(r.router_bce, (ra.router_bce * real + rf.router_bce * T) / double(real + T), 1e-9);
    EXPECT_GT(ra.router_bce, 0);
  }
  EXPECT_GT(fp.aux_loss, 0);
}

// Mixture-of-Depths in an encoder: a routed block at capacity 1 with a unit gate
// processes every token exactly as the dense block, bidirectionally (fails if the
// selected tokens' attention were causal).
TEST(Encoder, RoutedBlockAtFullCapacityEqualsTheDenseBlock) {
  const ModelConfig c = encoder_config();
  ModelConfig rc = c;
  rc.mod.enabled = true;
  rc.mod.capacity = 1.0;
  rc.mod.gate = Gate::one;
  Model dense(c), routed(rc);
  dense.init_weights(6);
  routed.init_weights(7);
  for (const ParamTensor& t : dense.tensors)
    for (const ParamTensor& u : routed.tensors)
      if (u.name == t.name) std::copy_n(dense.params.data() + t.offset, t.numel(), routed.params.data() + u.offset);
  const int64_t T = 24, C = c.d_model;
  std::vector<int32_t> tokens(T);
  for (int64_t t = 0; t < T; t++) tokens[t] = int32_t(t * 37 % 100);
  Activations ad(dense, 1, T, false), ar(routed, 1, T, false);
  model_forward(dense, ad, tokens.data(), nullptr, ForwardMode{});
  model_forward(routed, ar, tokens.data(), nullptr, ForwardMode{});
  for (int64_t i = 0; i < T * C; i++) ASSERT_NEAR(ar.lnf[i], ad.lnf[i], 1e-5) << i;
}

// From the command line: an encoder trains with masked-LM (val loss and accuracy in
// the summary and the metrics), stops and resumes onto the same weights as the run
// straight through, and evaluates; sampling refuses it.
TEST(Encoder, TrainsStopsAndResumesExactlyFromTheCli) {
  const std::string data = test::text_data("enc_cli_data", "the cat sat on the mat and the dog ate the bone. ", 60);
  const std::string a = test::temp_dir("enc_cli_a"), b = test::temp_dir("enc_cli_b");
  const std::string args =
      " --set model.kind=encoder --set model.vocab_size=260 --set model.d_model=32 --set model.n_heads=2"
      " --set model.n_layers=2 --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4"
      " --set train.steps=12 --set train.warmup=2 --set train.eval_every=4 --set train.eval_tokens=256"
      " --set train.ckpt_every=0 --set model.mlp=fff --set fff.trees=2 --set fff.depth=2";
  auto full = test::flopwise("train --data " + data + " --out " + a + args + " --json");
  ASSERT_EQ(full.code, 0) << full.out;
  const auto j = test::last_json_line(full.out);
  EXPECT_GT(j["val_accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["val_accuracy"].get<double>(), 1.0);
  ASSERT_EQ(test::flopwise("train --data " + data + " --out " + b + args + " --stop-after 5").code, 0);
  auto rest = test::flopwise("train --resume " + b + " --json");
  ASSERT_EQ(rest.code, 0) << rest.out;
  EXPECT_EQ(test::slurp(a + "/model.safetensors"), test::slurp(b + "/model.safetensors"));
  EXPECT_EQ(test::last_json_line(rest.out)["val_accuracy"], j["val_accuracy"]);
  const auto special = nlohmann::json::parse(SafetensorsFile(a + "/model.safetensors").meta("flopwise.special_tokens"));
  EXPECT_EQ(special, nlohmann::json({{"[PAD]", 256}, {"[CLS]", 257}, {"[SEP]", 258}, {"[MASK]", 259}}));
  std::ifstream metrics(a + "/metrics.jsonl");
  std::string line;
  int with_accuracy = 0;
  while (std::getline(metrics, line)) with_accuracy += line.find("\"val_accuracy\"") != std::string::npos;
  EXPECT_EQ(with_accuracy, 3);  // steps 4, 8, 12
  auto e = test::flopwise("eval --ckpt " + a + " --data " + data + " --json");
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_TRUE(test::last_json_line(e.out).contains("mlm_accuracy"));
  test::expect_error(test::flopwise("sample --ckpt " + a + " --prompt 'the'"), "does not generate text");
  // Mixture-of-Depths in an encoder: top-k routing as trained (no sampling, so no
  // calibration and no causal evaluation)
  const std::string mod = test::temp_dir("enc_cli_mod");
  auto m = test::flopwise("train --data " + data + " --out " + mod + args + " --set mod.enabled=true --json");
  ASSERT_EQ(m.code, 0) << m.out;
  EXPECT_EQ(m.out.find("calibrated"), std::string::npos) << m.out;
  auto me = test::flopwise("eval --ckpt " + mod + " --data " + data + " --json");
  ASSERT_EQ(me.code, 0) << me.out;
  EXPECT_FALSE(test::last_json_line(me.out).contains("val_loss_causal"));
}

TEST(Encoder, BadConfigsNameTheField) {
  const std::string data = test::text_data("enc_bad_data", "abc ", 200);
  const std::string run = test::temp_dir("enc_bad_run"), base = "train --data " + data + " --out " + run +
                                                                   " --set model.kind=encoder --set model.d_model=32"
                                                                   " --set model.n_heads=2 --set model.n_layers=1";
  test::expect_error(test::flopwise(base), "model.vocab_size = 256, of which the last 4 are the encoder's special "
                                           "tokens: use at least 260");
  test::expect_error(test::flopwise(base + " --set model.vocab_size=4"), "model.vocab_size = 4 leaves no room for text");
  test::expect_error(test::flopwise(base + " --set model.vocab_size=260 --set train.mask_rate=0"),
                     "train.mask_rate = 0 must be in (0, 1)");
  test::expect_error(test::flopwise(base + " --set model.vocab_size=260 --set train.seq_len=1"),
                     "train.seq_len = 1 leaves an encoder no text");
  test::expect_error(test::flopwise(base + " --set model.kind=bert"), "model.kind = 'bert' must be 'decoder' or 'encoder'");
}
