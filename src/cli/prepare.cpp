// flopwise prepare: text files → llm.c token files DATA/train.bin, DATA/val.bin.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/files.h"
#include "data/token_file.h"
#include "data/tokenizer.h"

namespace fw::cli {

namespace fs = std::filesystem;

namespace {
struct PrepareFlags {
  std::vector<std::string> inputs;
  std::string tokenizer = "bytes", out;
  double val_fraction = 0.1;
  CommonFlags common;
};

void run_prepare(const PrepareFlags& f) {
  f.common.apply();
  FW_CHECK(f.val_fraction > 0 && f.val_fraction < 1, "--val-fraction ", f.val_fraction,
           " must be in (0, 1)");
  auto tok = make_tokenizer(f.tokenizer);
  // Each file is split on its own: its last val_fraction of tokens is validation,
  // so every document contributes to both sides in proportion.
  std::vector<int32_t> train, val;
  for (const auto& path : f.inputs) {
    require_readable_file(path, "input file");
    std::ifstream in(path, std::ios::binary);
    FW_CHECK(in, path, ": cannot open input file");
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<int32_t> ids = tok->encode(ss.str());
    FW_CHECK(ids.size() >= 4, path, ": only ", ids.size(), " tokens, too short to split");
    const size_t n_val = std::max<size_t>(2, size_t(double(ids.size()) * f.val_fraction));
    train.insert(train.end(), ids.begin(), ids.end() - ptrdiff_t(n_val));
    val.insert(val.end(), ids.end() - ptrdiff_t(n_val), ids.end());
  }
  fs::create_directories(f.out);
  write_token_file((fs::path(f.out) / "train.bin").string(), train);
  write_token_file((fs::path(f.out) / "val.bin").string(), val);
  nlohmann::json meta = {{"tokenizer", tok->spec()}, {"vocab_size", tok->vocab_size()},
                         {"train_tokens", train.size()}, {"val_tokens", val.size()},
                         {"inputs", f.inputs}};
  std::ofstream(fs::path(f.out) / "meta.json") << meta.dump(2) << "\n";
  nlohmann::json summary = {{"out", f.out}, {"tokenizer", tok->spec()},
                            {"train_tokens", train.size()}, {"val_tokens", val.size()}};
  if (f.common.json) print_json(summary);
  else std::printf("wrote %s: %zu train tokens, %zu val tokens (tokenizer %s)\n", f.out.c_str(),
                   train.size(), val.size(), tok->spec().c_str());
}
}  // namespace

void register_prepare(CLI::App& app) {
  auto f = std::make_shared<PrepareFlags>();
  auto* sub = app.add_subcommand("prepare", "tokenize text files into llm.c token files (train/val)");
  sub->add_option("--input", f->inputs, "text files")->required();
  sub->add_option("--tokenizer", f->tokenizer, "tokenizer: bytes");
  sub->add_option("--out", f->out, "output data folder")->required();
  sub->add_option("--val-fraction", f->val_fraction, "share of each file held out for validation");
  f->common.add(sub);
  sub->callback([f]() { run_prepare(*f); });
}

}  // namespace fw::cli
