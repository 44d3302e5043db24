// flopwise tokenize: text ↔ token ids with any tokenizer; flopwise tokenizer train:
// a SentencePiece model; flopwise bench tokenizer: encoding throughput.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/files.h"
#include "core/timer.h"
#include "tokenizers/spm_tokenizer.h"
#include "tokenizers/tokenizer.h"

namespace fw::cli {

namespace {
std::string read_all(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return read_file(path, "input file");
}

struct TokenizeFlags {
  std::string tokenizer = "bytes", input = "-", text;
  bool decode = false, json = false, has_text = false;
};

// Ids written as whitespace-separated integers or one JSON array.
std::vector<int32_t> parse_ids(const std::string& s, const std::string& where) {
  std::string t = s;
  for (char& c : t)
    if (c == '[' || c == ']' || c == ',') c = ' ';
  std::istringstream in(t);
  std::vector<int32_t> ids;
  std::string w;
  while (in >> w) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(w, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    FW_CHECK(used == w.size() && v >= 0 && v < INT32_MAX, where, ": '", w, "' is not a token id");
    ids.push_back(int32_t(v));
  }
  return ids;
}

void run_tokenize(const TokenizeFlags& f) {
  auto tok = make_tokenizer(f.tokenizer);
  const std::string where = f.has_text ? "--text" : f.input == "-" ? "stdin" : f.input;
  const std::string in = f.has_text ? f.text : read_all(f.input);
  if (f.decode) {
    const std::string bytes = tok->decode(parse_ids(in, where));
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return;
  }
  const std::vector<int32_t> ids = tok->encode(in);
  if (f.json) {
    print_json(nlohmann::json(ids));
    return;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); i++) line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
}

struct BenchTokenizerFlags {
  std::vector<std::string> tokenizers{"bytes"};
  std::vector<std::string> inputs;
  int runs = 3;
  CommonFlags common;
};

// MB/s of encode on the inputs (best of `runs`, a fresh tokenizer each run so caches
// start cold as in one pass of `prepare`), and that decode gives the bytes back.
void bench_tokenizer(const BenchTokenizerFlags& f) {
  f.common.apply();
  FW_CHECK(f.runs >= 1, "--runs must be at least 1");
  std::string text;
  for (const auto& p : f.inputs) text += read_all(p);
  FW_CHECK(!text.empty(), "bench tokenizer: the inputs are empty");
  nlohmann::json rows = nlohmann::json::array();
  if (!f.common.json)
    std::printf("%zu bytes of text\n| tokenizer | tokens | bytes/token | encode MB/s | decode MB/s |\n|---|---:|---:|---:|---:|\n",
                text.size());
  for (const auto& spec : f.tokenizers) {
    double best_enc = 1e30, best_dec = 1e30;
    std::vector<int32_t> ids;
    for (int r = 0; r < f.runs; r++) {
      auto tok = make_tokenizer(spec);
      const double t0 = now_seconds();
      ids = tok->encode(text);
      const double t1 = now_seconds();
      const std::string back = tok->decode(ids);
      const double t2 = now_seconds();
      FW_CHECK(back == text, "bench tokenizer: ", spec, " did not decode back to the input");
      best_enc = std::min(best_enc, t1 - t0);
      best_dec = std::min(best_dec, t2 - t1);
    }
    const double mb = double(text.size()) / 1e6;
    nlohmann::json row = {{"tokenizer", spec}, {"bytes", text.size()}, {"tokens", ids.size()},
                          {"bytes_per_token", double(text.size()) / double(ids.size())},
                          {"encode_mb_per_s", mb / best_enc}, {"decode_mb_per_s", mb / best_dec}};
    rows.push_back(row);
    if (!f.common.json)
      std::printf("| %s | %zu | %.2f | %.1f | %.1f |\n", spec.c_str(), ids.size(), double(text.size()) / double(ids.size()),
                  mb / best_enc, mb / best_dec);
  }
  if (f.common.json) print_json({{"bytes", text.size()}, {"runs", f.runs}, {"tokenizers", rows}});
}
}  // namespace

void register_tokenize(CLI::App& app) {
  auto f = std::make_shared<TokenizeFlags>();
  auto* sub = app.add_subcommand("tokenize", "text to token ids (or --decode ids to text) with a tokenizer");
  sub->add_option("--tokenizer", f->tokenizer, "bytes (default), gpt2, gpt2:DIR or spm:MODEL");
  sub->add_option("--input", f->input, "file to read ('-' = stdin, the default)");
  sub->add_option("--text", f->text, "the text itself instead of --input");
  sub->add_flag("--decode", f->decode, "read token ids (whitespace-separated or a JSON array), write the bytes");
  sub->add_flag("--json", f->json, "print the ids as one JSON array");
  sub->callback([f, sub]() {
    f->has_text = sub->count("--text") > 0;
    run_tokenize(*f);
  });

  auto o = std::make_shared<SpmTrainOptions>();
  auto* tk = app.add_subcommand("tokenizer", "train a SentencePiece tokenizer");
  tk->require_subcommand(1);
  auto* tr = tk->add_subcommand("train", "train a byte-exact SentencePiece model (identity normalisation, byte fallback)");
  tr->add_option("--input", o->inputs, "text files")->required();
  tr->add_option("--vocab", o->vocab_size, "vocabulary size (at least 300)")->required();
  tr->add_option("--model-type", o->model_type, "bpe (default) or unigram");
  tr->add_option("--out", o->out, "the .model file to write")->required();
  tr->callback([o]() {
    train_spm(*o);
    std::printf("wrote %s (%s, vocab %lld); use it as --tokenizer spm:%s\n", o->out.c_str(), o->model_type.c_str(),
                (long long)make_tokenizer("spm:" + o->out)->vocab_size(), o->out.c_str());
  });
}

void add_bench_tokenizer(CLI::App* bench) {
  auto f = std::make_shared<BenchTokenizerFlags>();
  auto* sub = bench->add_subcommand("tokenizer", "encode/decode MB/s of tokenizers on text files (best of --runs)");
  sub->add_option("--tokenizer", f->tokenizers, "tokenizers to compare (repeatable)");
  sub->add_option("--input", f->inputs, "text files")->required();
  sub->add_option("--runs", f->runs, "runs per tokenizer; the fastest counts");
  f->common.add(sub);
  sub->callback([f]() { bench_tokenizer(*f); });
}

}  // namespace fw::cli
