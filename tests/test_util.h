// Helpers shared by the tests: temporary folders, running the flopwise binary.
#pragma once
#include <cstdio>
#include <cstring>
#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "formats/token_file.h"
#include "nn/config.h"
#include "train/trainer.h"
#include "config/config.h"

namespace fw::test {

// A fresh empty folder under the build tree: FLOPWISE_TEST_TMP/<test>/<name>, where
// <test> is the running test's full name, so tests never share a folder and
// `ctest -j` can run them side by side.
inline std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "outside_tests";
  for (char& c : test)
    if (c == '/') c = '_';  // parameterised tests: Suite/Instance.Name/param
  fs::path p = fs::path(FLOPWISE_TEST_TMP) / test / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// A whole file's bytes.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A safetensors file split as it lies on disk: its JSON header (metadata included) and
// the tensors' bytes after it, for tests that edit a checkpoint's metadata or compare
// its tensors byte for byte.
struct RawSafetensors {
  nlohmann::json header;
  std::string tensors;
};
inline RawSafetensors read_raw_safetensors(const std::string& path) {
  const std::string bytes = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}
inline void write_raw_safetensors(const std::string& path, const RawSafetensors& f) {
  const std::string h = f.header.dump();
  const uint64_t n = h.size();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << f.tensors;
}

struct Run {
  int code;
  std::string out;  // stdout and stderr together
};

// Runs a shell command line, collecting its output and exit code.
inline Run shell(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  Run r{-1, ""};
  if (!f) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.out.append(buf, n);
  int status = pclose(f);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs `flopwise ARGS` through the shell.
inline Run flopwise(const std::string& args) { return shell(std::string(FLOPWISE_BIN) + " " + args); }

// n normal draws with standard deviation sd, from a fixed seed.
template <typename T = float>
std::vector<T> randn(size_t n, uint64_t seed, double sd = 1.0) {
  Rng r(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = T(sd * r.normal());
  return v;
}

// Expects failure with exit 1 and a message containing `what` on one line.
inline void expect_error(const Run& r, const std::string& what) {
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("flopwise: error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(what), std::string::npos) << "expected '" << what << "' in: " << r.out;
  const auto at = r.out.find("flopwise: error: ");
  if (at != std::string::npos) {
    EXPECT_EQ(r.out.find('\n', at), r.out.size() - 1) << "one line: " << r.out;
  }
}

// The last non-empty line of a command's output parsed as JSON (the `--json` summary).
inline nlohmann::json last_json_line(const std::string& out) {
  std::string line, last;
  std::istringstream in(out);
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return nlohmann::json::parse(last);
}

// A small model config (byte vocabulary unless changed).
inline ModelConfig small_model(int64_t d, int64_t heads, int64_t layers, int64_t max_seq = 256) {
  ModelConfig c;
  c.d_model = d;
  c.n_heads = heads;
  c.n_layers = layers;
  c.max_seq_len = max_seq;
  return c;
}

// A data folder of `text` repeated `reps` times (bytes), with its first `val` tokens
// as the validation file.
inline std::string text_data(const std::string& name, const std::string& text, int reps = 40,
                             size_t val = 400) {
  std::string dir = temp_dir(name);
  std::vector<int32_t> tok;
  for (int rep = 0; rep < reps; rep++)
    for (unsigned char c : text) tok.push_back(c);
  write_token_file(dir + "/train.bin", tok);
  write_token_file(dir + "/val.bin", std::vector<int32_t>(tok.begin(), tok.begin() + ptrdiff_t(val)));
  std::ofstream(dir + "/meta.json") << R"({"tokenizer": "bytes", "vocab_size": 256})";
  return dir;
}

// A tiny training run: 2 layers of width 32, 4 sequences of 32 tokens, 30 steps.
inline Config tiny_run_config() {
  Config c;
  c.model = small_model(32, 2, 2, 32);
  c.train.seq_len = 32;
  c.train.batch_size = 4;
  c.train.steps = 30;
  c.train.warmup = 5;
  c.train.lr = 3e-3;
  c.train.eval_every = 10;
  c.train.eval_tokens = 256;
  c.train.ckpt_every = 0;
  return c;
}

// The same run trained straight through (NAME_full) and stopped after step `stop`
// then resumed (NAME_part): for tests that the two end bit-identical.
struct ResumePair {
  TrainSummary full;
  std::string full_dir, part_dir;
};
inline ResumePair train_straight_and_resumed(const Config& c, const std::string& data, const std::string& name,
                                             int64_t stop = 17) {
  ResumePair r;
  TrainOptions full;
  full.data_dir = data;
  full.run_dir = r.full_dir = temp_dir(name + "_full");
  r.full = run_training(c, full);
  TrainOptions part = full;
  part.run_dir = r.part_dir = temp_dir(name + "_part");
  part.stop_after = stop;
  run_training(c, part);
  TrainOptions rest;
  rest.run_dir = part.run_dir;
  rest.resume = true;
  run_training(Config{}, rest);
  return r;
}

}  // namespace fw::test
