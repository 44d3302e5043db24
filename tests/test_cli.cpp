// The flopwise program end to end: the happy path with --json summaries, and every
// kind of bad input getting one clear line, a non-zero exit, and no damaged files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/safetensors.h"
#include "formats/token_file.h"
#include "nn/model.h"
#include "test_util.h"

using namespace fw;
using fw::test::expect_error;
using fw::test::slurp;
using fw::test::flopwise;
namespace fs = std::filesystem;

namespace {

const char* kTiny =
    "--set model.d_model=32 --set model.n_layers=2 --set model.n_heads=2 --set model.max_seq_len=32 "
    "--set train.seq_len=32 --set train.batch_size=4 --set train.warmup=2 --set train.eval_tokens=128 "
    "--set train.log_every=5";

using test::last_json_line;

// Text → DATA via `flopwise prepare`.
std::string prepared_data(const std::string& name) {
  std::string dir = test::temp_dir(name);
  std::ofstream(dir + "/text.txt") << std::string(
      "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
      "must be in want of a wife. However little known the feelings or views of such a man may be "
      "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
      "surrounding families, that he is considered the rightful property of some one or other of "
      "their daughters.\n");
  auto r = flopwise("prepare --input " + dir + "/text.txt --out " + dir + "/data");
  EXPECT_EQ(r.code, 0) << r.out;
  return dir + "/data";
}

}  // namespace

TEST(Cli, HappyPathWithJsonSummaries) {
  std::string data = prepared_data("cli_happy");
  std::string run = test::temp_dir("cli_happy_run");
  auto t = flopwise("train --data " + data + " --out " + run + " " + kTiny + " --set train.steps=10 --json");
  ASSERT_EQ(t.code, 0) << t.out;
  auto tj = last_json_line(t.out);
  for (auto key : {"step", "train_loss", "val_loss", "tokens_per_s", "mfu", "flops_per_token"})
    EXPECT_TRUE(tj.contains(key)) << key;
  EXPECT_EQ(tj["step"], 10);
  EXPECT_NE(t.out.find("MFU"), std::string::npos) << "progress line shows MFU";
  auto e = flopwise("eval --ckpt " + run + " --data " + data + " --json");
  ASSERT_EQ(e.code, 0) << e.out;
  auto ej = last_json_line(e.out);
  EXPECT_GT(ej["val_loss"].get<double>(), 0);
  EXPECT_GT(ej["tokens"].get<int64_t>(), 0);
  auto s = flopwise("sample --ckpt " + run + "/model.safetensors --prompt 'It is' --tokens 20 --seed 3 --json");
  ASSERT_EQ(s.code, 0) << s.out;
  auto sj = last_json_line(s.out);
  EXPECT_TRUE(sj["text"].is_string());
  EXPECT_GT(sj["tokens_per_s"].get<double>(), 0);
  // same seed, same text; greedy is deterministic too
  auto s2 = flopwise("sample --ckpt " + run + " --prompt 'It is' --tokens 20 --seed 3 --json");
  EXPECT_EQ(last_json_line(s2.out)["text"], sj["text"]);
  auto b = flopwise(std::string("bench train --steps 1 --warmup 0 ") + kTiny + " --json");
  ASSERT_EQ(b.code, 0) << b.out;
  auto bj = last_json_line(b.out);
  EXPECT_GT(bj["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(bj["mfu"].get<double>(), 0);
  EXPECT_LT(bj["mfu"].get<double>(), 1.5);
  auto bs = flopwise(std::string("bench sample --prompt-tokens 8 --new-tokens 8 ") + kTiny + " --json");
  ASSERT_EQ(bs.code, 0) << bs.out;
  EXPECT_GT(last_json_line(bs.out)["tokens_per_s"].get<double>(), 0);
  for (auto sub : {"prepare", "train", "eval", "sample", "bench", "bench train", "bench sample"})
    EXPECT_EQ(flopwise(std::string(sub) + " --help").code, 0) << sub;
}

TEST(Cli, MissingFiles) {
  std::string dir = test::temp_dir("cli_missing");
  expect_error(flopwise("prepare --input " + dir + "/nope.txt --out " + dir + "/d"), "nope.txt: input file not found");
  expect_error(flopwise("prepare --input " + dir + " --out " + dir + "/d"), "is a folder, not an input file");
  expect_error(flopwise("train --data " + dir + "/nodata --out " + dir + "/r " + kTiny), "nodata: data folder not found");
  expect_error(flopwise("eval --ckpt " + dir + "/norun --data " + dir), "checkpoint file not found");
  expect_error(flopwise("train --out " + dir + "/r --config " + dir + "/none.json"), "none.json: config file not found");
}

TEST(Cli, BadTokenFiles) {
  std::string data = prepared_data("cli_badtok");
  std::string run = test::temp_dir("cli_badtok_run");
  std::string good = slurp(data + "/train.bin");
  {  // wrong magic
    std::string bad = good;
    bad[0] = 'X';
    std::ofstream(data + "/train.bin", std::ios::binary) << bad;
    expect_error(flopwise("train --data " + data + " --out " + run + " " + kTiny), "wrong magic");
  }
  {  // truncated
    std::ofstream(data + "/train.bin", std::ios::binary) << good.substr(0, good.size() - 10);
    expect_error(flopwise("train --data " + data + " --out " + run + " " + kTiny), "truncated");
  }
  {  // shorter than the header
    std::ofstream(data + "/train.bin", std::ios::binary) << "hello";
    expect_error(flopwise("train --data " + data + " --out " + run + " " + kTiny), "shorter than the 1024-byte header");
  }
  std::ofstream(data + "/train.bin", std::ios::binary) << good;
  // token ids >= vocab: the tokenizer's vocabulary is checked against the model's
  expect_error(flopwise("train --data " + data + " --out " + run + " " + kTiny + " --set model.vocab_size=100"),
               "tokenizer 'bytes' has vocab 256 but model.vocab_size = 100");
  // and without meta.json (llm.c files), every token id is checked
  fs::remove(data + "/meta.json");
  expect_error(flopwise("train --data " + data + " --out " + run + " " + kTiny + " --set model.vocab_size=100"),
               ">= model.vocab_size = 100");
}

TEST(Cli, LlmcTokenFilesLoad) {
  // llm.c's naming (*_train.bin / *_val.bin) and its uint32 format (magic 20240801)
  std::string dir = test::temp_dir("cli_llmc");
  std::vector<int32_t> tok;
  for (int i = 0; i < 3000; i++) tok.push_back((i * 7) % 256);
  write_token_file(dir + "/shakespeare_train.bin", tok);
  std::vector<int32_t> wide(tok.begin(), tok.begin() + 500);
  wide.push_back(70000);  // forces the uint32 format...
  write_token_file(dir + "/shakespeare_val.bin", wide);
  EXPECT_EQ(read_token_file(dir + "/shakespeare_val.bin"), wide);
  std::string run = test::temp_dir("cli_llmc_run");
  // ...whose id 70000 a 256-token model must refuse, naming the file
  expect_error(flopwise("train --data " + dir + " --out " + run + " " + kTiny + " --set train.steps=2"),
               "shakespeare_val.bin: token 500 has id 70000");
  wide.back() = 3;
  write_token_file(dir + "/shakespeare_val.bin", wide);
  auto r = flopwise("train --data " + dir + " --out " + run + " " + kTiny + " --set train.steps=2");
  EXPECT_EQ(r.code, 0) << r.out;
}

// AdamW's betas are config fields: the defaults (0.9, 0.95) written out train the same
// bits as not writing them, and another beta2 trains differently.
TEST(Cli, AdamBetasAreConfigFields) {
  std::string data = prepared_data("cli_betas");
  const std::string dir = test::temp_dir("cli_betas_runs");
  auto final_loss = [&](const std::string& name, const std::string& extra) {
    auto r = flopwise("train --data " + data + " --out " + dir + "/" + name + " " + kTiny +
                      " --set train.steps=20 --json " + extra);
    EXPECT_EQ(r.code, 0) << r.out;
    return test::last_json_line(r.out)["train_loss"].get<double>();
  };
  const double plain = final_loss("plain", "");
  EXPECT_EQ(final_loss("explicit", "--set train.beta1=0.9 --set train.beta2=0.95"), plain);
  EXPECT_NE(final_loss("beta2", "--set train.beta2=0.99"), plain);
  EXPECT_NE(final_loss("beta1", "--set train.beta1=0.5"), plain);
  const auto cfg = nlohmann::json::parse(test::slurp(dir + "/beta2/config.json"));
  EXPECT_EQ(cfg["train"]["beta2"].get<double>(), 0.99);
}

// train.matmul_bf16 = "auto": training times both precisions, says which it took in the
// log, the summary and every metrics row, records it in the run's config (so eval,
// sample and --resume use it without measuring), and then trains exactly as a run
// configured with that precision would.
TEST(Cli, AutoPrecisionMeasuresDecidesAndRecords) {
  std::string data = prepared_data("cli_auto_precision");
  const std::string dir = test::temp_dir("cli_auto_precision_runs");
  auto train = [&](const std::string& name, const std::string& precision) {
    auto r = flopwise("train --data " + data + " --out " + dir + "/" + name + " " + kTiny +
                      " --set train.steps=10 --json --set train.matmul_bf16=" + precision);
    EXPECT_EQ(r.code, 0) << r.out;
    return r;
  };
  const auto a = train("auto", "auto");
  const auto summary = test::last_json_line(a.out);
  const std::string took = summary["precision"].get<std::string>();
  ASSERT_TRUE(took == "fp32" || took == "bf16") << a.out;
  EXPECT_NE(a.out.find("precision: train.matmul_bf16 = auto: forward + backward of a micro-batch takes "),
            std::string::npos) << a.out;
  EXPECT_NE(a.out.find("; training in " + took), std::string::npos) << a.out;
  const auto cfg = nlohmann::json::parse(test::slurp(dir + "/auto/config.json"));
  EXPECT_EQ(cfg["train"]["matmul_bf16"], nlohmann::json(took == "bf16"));
  const std::string metrics = test::slurp(dir + "/auto/metrics.jsonl");
  EXPECT_NE(metrics.find("\"precision\":\"" + took + "\""), std::string::npos) << metrics;
  // the same numbers as the explicit setting of what it took
  const auto explicit_run = test::last_json_line(train("explicit", took == "bf16" ? "true" : "false").out);
  EXPECT_EQ(explicit_run["train_loss"].get<double>(), summary["train_loss"].get<double>());
  EXPECT_EQ(explicit_run["val_loss"].get<double>(), summary["val_loss"].get<double>());
  EXPECT_EQ(explicit_run["precision"], summary["precision"]);
  // eval reads the decision from the run
  auto e = flopwise("eval --ckpt " + dir + "/auto --data " + data + " --json");
  EXPECT_EQ(e.code, 0) << e.out;
  // bench train decides the same way
  auto b = flopwise("bench train " + std::string(kTiny) + " --steps 1 --warmup 0 --json --set train.matmul_bf16=auto");
  EXPECT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("bench train: train.matmul_bf16 = auto: "), std::string::npos) << b.out;
  const std::string bench_took = test::last_json_line(b.out)["precision"].get<std::string>();
  EXPECT_TRUE(bench_took == "fp32" || bench_took == "bf16");
}

TEST(Cli, BadConfigs) {
  std::string data = prepared_data("cli_badcfg");
  std::string run = test::temp_dir("cli_badcfg_run") + "/r";
  auto train = [&](const std::string& extra) {
    return flopwise("train --data " + data + " --out " + run + " " + kTiny + " " + extra);
  };
  expect_error(train("--set model.colour=3"), "unknown config field 'model.colour'");
  expect_error(train("--set optim.lr=3"), "unknown config section 'optim'");
  expect_error(train("--set train.beta2=1"), "train.beta2 = 1 must be in [0, 1)");
  expect_error(train("--set train.beta1=-0.1"), "train.beta1 = -0.1 must be in [0, 1)");
  expect_error(train("--set model.n_heads=5"), "model.n_heads = 5 does not divide model.d_model = 32");
  expect_error(train("--set model.d_model=0"), "model.d_model = 0 must be in");
  expect_error(train("--set train.batch_size=0"), "train.batch_size = 0 must be positive");
  expect_error(train("--set train.grad_accum=3"), "train.grad_accum = 3 does not divide train.batch_size = 4");
  expect_error(train("--set train.seq_len=64"), "train.seq_len = 64 exceeds model.max_seq_len = 32");
  expect_error(train("--set model.d_model=1.5"), "model.d_model must be an integer");
  expect_error(train("--set train.matmul_bf16=yes"), "train.matmul_bf16 must be true, false or \"auto\", got \"yes\"");
  expect_error(train("--set train.matmul_bf16=1"), "train.matmul_bf16 must be true, false or \"auto\", got 1");
  expect_error(train("--set model.tie_embeddings=3"), "must be true or false");
  expect_error(train("--set mod.enabled=true --set mod.capacity=0"), "mod.capacity = 0 must be in (0, 1]");
  expect_error(train("--set mod.enabled=true --set mod.capacity=1.5"), "mod.capacity = 1.5 must be in (0, 1]");
  expect_error(train("--set mod.enabled=true --set mod.every=0"), "mod.every = 0 must be >= 1");
  expect_error(train("--set mod.enabled=true --set mod.gate=tanh"), "mod.gate = 'tanh' must be 'raw' or 'sigmoid'");
  expect_error(train("--set mod.enabled=true --set mod.causal=oracle"), "mod.causal = 'oracle' must be");
  expect_error(train("--set mod.gate=3"), "mod.gate must be a string");
  // a config file with an unknown field names the file and the field
  std::string cfg = test::temp_dir("cli_badcfg_file") + "/c.json";
  std::ofstream(cfg) << R"({"model": {"d_model": 64}, "train": {"stepz": 5}})";
  expect_error(flopwise("train --data " + data + " --out " + run + " --config " + cfg), "c.json: unknown config field 'train.stepz'");
  std::ofstream(cfg) << R"({"model": {"d_model": 64,}})";
  expect_error(flopwise("train --data " + data + " --out " + run + " --config " + cfg), "c.json: invalid JSON");
  // a number too large for a double (found by fuzz/fuzz_config.cpp: it escaped as an uncaught exception)
  std::ofstream(cfg) << R"({"train": {"batch_size": 8, "seq_r": 2e5536}})";
  expect_error(flopwise("train --data " + data + " --out " + run + " --config " + cfg), "c.json: invalid JSON");
  // an integer field given a whole number beyond int64 (found by fuzz/fuzz_config.cpp: the
  // cast to int64 was undefined behaviour)
  std::ofstream(cfg) << R"({"model": {"vocab_size": 8888888888888888888888888888888888888256}})";
  expect_error(flopwise("train --data " + data + " --out " + run + " --config " + cfg),
               "c.json: model.vocab_size must be an integer, got 8.888888888888889e+39");
  expect_error(train("--set train.steps=1e19"), "train.steps must be an integer");
  // out-of-memory sized: refused with the estimate before allocating
  expect_error(train("--set model.d_model=32768 --set model.n_heads=256 --set model.n_layers=64"), "of memory but only");
  EXPECT_FALSE(fs::exists(run + "/model.safetensors"));
}

TEST(Cli, TornAndMismatchedCheckpoints) {
  std::string data = prepared_data("cli_ckpt");
  std::string run = test::temp_dir("cli_ckpt_run");
  ASSERT_EQ(flopwise("train --data " + data + " --out " + run + " " + kTiny + " --set train.steps=4").code, 0);
  const std::string model = run + "/model.safetensors", good = slurp(model);
  std::string dir = test::temp_dir("cli_ckpt_bad");
  // torn: cut off mid-tensor
  std::ofstream(dir + "/torn.safetensors", std::ios::binary) << good.substr(0, good.size() / 2);
  expect_error(flopwise("eval --ckpt " + dir + "/torn.safetensors --data " + data), "truncated checkpoint");
  // torn inside the header
  std::ofstream(dir + "/torn2.safetensors", std::ios::binary) << good.substr(0, 100);
  expect_error(flopwise("eval --ckpt " + dir + "/torn2.safetensors --data " + data), "torn");
  // not a checkpoint at all
  std::ofstream(dir + "/junk.safetensors", std::ios::binary) << "junk";
  expect_error(flopwise("sample --ckpt " + dir + "/junk.safetensors --prompt x"), "not a safetensors file");
  // shape mismatch: the embedding stored transposed (same bytes, wrong shape)
  {
    SafetensorsFile f(model);
    auto meta = f.metadata();
    auto cfg = nlohmann::json::parse(meta["flopwise.config"]);
    Model m(test::small_model(32, 2, 2, 32));
    std::vector<SafeTensor> ts;
    for (auto& t : m.tensors) {
      f.read_f32(t.name, t.shape, m.params.data() + t.offset);
      ts.push_back({t.name, t.shape, m.params.data() + t.offset});
    }
    ts[0].shape = {32, 256};
    write_safetensors(dir + "/shape.safetensors", ts, meta);
    expect_error(flopwise("eval --ckpt " + dir + "/shape.safetensors --data " + data),
                 "tensor 'embedding.weight' has shape [32, 256], the config expects [256, 32]");
    ts[0].shape = {256, 32};
    // a config whose model is larger than the weights in the file: refused before allocating
    cfg["model"]["d_model"] = 32;
    cfg["model"]["n_layers"] = 400;
    meta["flopwise.config"] = cfg.dump();
    write_safetensors(dir + "/layers.safetensors", ts, meta);
    expect_error(flopwise("sample --ckpt " + dir + "/layers.safetensors --prompt x"), "config and weights disagree");
    cfg["model"]["n_layers"] = 2;
    // unknown config field inside the checkpoint
    cfg["model"]["d_model"] = 32;
    cfg["model"]["wings"] = 2;
    meta["flopwise.config"] = cfg.dump();
    write_safetensors(dir + "/cfg.safetensors", ts, meta);
    expect_error(flopwise("eval --ckpt " + dir + "/cfg.safetensors --data " + data), "unknown config field 'model.wings'");
  }
  // dtype mismatch: an F16 tensor where F32 is expected
  {
    std::string json = R"({"__metadata__":{"flopwise.format":"flopwise-1"},"embedding.weight":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
    uint64_t n = json.size();
    std::string bytes(reinterpret_cast<const char*>(&n), 8);
    bytes += json + "abcd";
    std::ofstream(dir + "/f16.safetensors", std::ios::binary) << bytes;
    SafetensorsFile f(dir + "/f16.safetensors");
    try {
      std::vector<float> out(2);
      f.read_f32("embedding.weight", {2}, out.data());
      ADD_FAILURE() << "F16 read as F32";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("has dtype F16, expected F32"), std::string::npos) << e.what();
    }
  }
  // data tokenized with another tokenizer than the checkpoint's
  std::string other = test::temp_dir("cli_ckpt_other");
  fs::copy(data, other, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ofstream(other + "/meta.json") << R"({"tokenizer": "other", "vocab_size": 256})";
  expect_error(flopwise("eval --ckpt " + run + " --data " + other), "tokenized with 'other' but the checkpoint was trained with 'bytes'");
  // a KV cache larger than memory is refused with the estimate
  expect_error(flopwise("sample --ckpt " + run + " --prompt x --context 4000000000"), "of memory but only");
  // torn pair: state from another step than the model
  std::string run2 = test::temp_dir("cli_ckpt_run2");
  ASSERT_EQ(flopwise("train --data " + data + " --out " + run2 + " " + kTiny + " --set train.steps=6 --stop-after 2").code, 0);
  fs::copy_file(run + "/state.safetensors", run2 + "/state.safetensors", fs::copy_options::overwrite_existing);
  const std::string before = slurp(run2 + "/model.safetensors");
  expect_error(flopwise("train --resume " + run2), "torn checkpoint pair");
  EXPECT_EQ(slurp(run2 + "/model.safetensors"), before) << "a failed resume must not touch the checkpoint";
  expect_error(flopwise("train --resume " + run2 + " --set train.lr=1"), "--config/--set are not allowed");
  EXPECT_EQ(slurp(model), good) << "nothing above may modify the original checkpoint";
}

TEST(Cli, NanLossStopsAndKeepsLastGoodCheckpoint) {
  std::string data = prepared_data("cli_nan");
  std::string run = test::temp_dir("cli_nan_run");
  // lr 1e30 blows the weights up after one update; the second step is not finite
  auto r = flopwise("train --data " + data + " --out " + run + " " + kTiny +
                    " --set train.steps=10 --set train.warmup=0 --set train.lr=1e30 --set train.min_lr=0"
                    " --set train.ckpt_every=1");
  expect_error(r, "non-finite training loss");
  EXPECT_NE(r.out.find("last good checkpoint"), std::string::npos);
  SafetensorsFile f(run + "/model.safetensors");  // still a clean file...
  EXPECT_EQ(f.meta("flopwise.step"), "1");        // ...from the last finite step
}

TEST(Cli, StopAfterThenResumeThroughTheCli) {
  std::string data = prepared_data("cli_resume");
  std::string a = test::temp_dir("cli_resume_a"), b = test::temp_dir("cli_resume_b");
  const std::string args = std::string(kTiny) + " --set train.steps=12 --set train.eval_every=4";
  ASSERT_EQ(flopwise("train --data " + data + " --out " + a + " " + args).code, 0);
  auto p = flopwise("train --data " + data + " --out " + b + " " + args + " --stop-after 5 --json");
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_EQ(last_json_line(p.out)["step"], 5);
  EXPECT_EQ(last_json_line(p.out)["finished"], false);
  auto q = flopwise("train --resume " + b + " --json");
  ASSERT_EQ(q.code, 0) << q.out;
  EXPECT_EQ(last_json_line(q.out)["step"], 12);
  EXPECT_EQ(slurp(a + "/model.safetensors"), slurp(b + "/model.safetensors"));
  expect_error(flopwise("train --resume " + b), "already finished");
  // a MoD run trains, evaluates and samples (with causal routing) from the CLI
  std::string mod_run = test::temp_dir("cli_resume_mod");
  ASSERT_EQ(flopwise("train --data " + data + " --out " + mod_run + " " + args + " --set mod.enabled=true").code, 0);
  EXPECT_EQ(flopwise("eval --ckpt " + mod_run + " --data " + data).code, 0);
  const std::string trace = mod_run + "/trace.jsonl";
  auto s = flopwise("sample --ckpt " + mod_run + " --prompt 'It is' --tokens 10 --json --trace " + trace);
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_EQ(last_json_line(s.out)["tokens"], 10);
  {  // one line per fed token (prompt 5 + 9 fed back), each naming routed block 1
    std::ifstream in(trace);
    std::string line;
    int rows = 0;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["layers"], nlohmann::json::array({1}));
      EXPECT_EQ(j["processed"].size(), 1u);
      EXPECT_TRUE(j["router"][0].is_number());
      EXPECT_EQ(j["pos"], rows);
      rows++;
    }
    EXPECT_EQ(rows, 5 + 9);
  }
  auto e = flopwise("eval --ckpt " + mod_run + " --data " + data + " --json --trace " + trace);
  ASSERT_EQ(e.code, 0) << e.out;
  auto ej = last_json_line(e.out);
  for (auto key : {"val_loss", "val_loss_causal", "causal_accuracy", "router_accuracy", "predictor_accuracy",
                   "processed_fraction", "flops_per_token"})
    EXPECT_TRUE(ej.contains(key)) << key;
  EXPECT_GE(ej["causal_accuracy"].get<double>(), 0.0);
  EXPECT_LE(ej["causal_accuracy"].get<double>(), 1.0);
  EXPECT_EQ(ej["routed_layers"], nlohmann::json::array({1}));
  // a fresh run never overwrites an existing one
  const std::string before = slurp(b + "/model.safetensors");
  expect_error(flopwise("train --data " + data + " --out " + b + " " + args), "already holds a checkpoint");
  EXPECT_EQ(slurp(b + "/model.safetensors"), before);
}

// flopwise never links libmpi: a copy of the program without the MPI plugin beside it
// trains in one process, and says what is missing if an MPI launcher starts it.
TEST(Cli, RunsWithoutTheMpiPlugin) {
  const std::string dir = test::temp_dir("cli_no_mpi");
  fs::copy_file(FLOPWISE_BIN, dir + "/flopwise");
  std::string data = prepared_data("cli_no_mpi_data");
  auto r = test::shell(dir + "/flopwise train --data " + data + " --out " + dir + "/run " + kTiny +
                       " --set train.steps=3");
  EXPECT_EQ(r.code, 0) << r.out;
  r = test::shell("OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 " + dir + "/flopwise train --data " + data +
                  " --out " + dir + "/run2 " + kTiny);
  expect_error(r, "rank 0 of 2: started by an MPI launcher (2 ranks) but libflopwise_mpi.so is not beside the "
                  "program: this flopwise was built without MPI");
}
