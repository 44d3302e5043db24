// Token files in llm.c's format: a header of 256 int32 — [0] magic, [1] version,
// [2] token count — then the tokens: uint16 (magic 20240520, version 1) or uint32
// (magic 20240801, version 7, for vocabularies over 65535).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace fw {

constexpr int32_t kTokenMagic16 = 20240520, kTokenVersion16 = 1;
constexpr int32_t kTokenMagic32 = 20240801, kTokenVersion32 = 7;

// Reads and checks the whole file; every failure names the file.
std::vector<int32_t> read_token_file(const std::string& path);

// Writes uint16 tokens when every id fits, uint32 otherwise; atomic (temp + rename).
void write_token_file(const std::string& path, const std::vector<int32_t>& tokens);

// Streams a token file too large to hold: tokens are appended as they come, the
// header last; the file appears under its name only when finish() succeeds (a
// writer destroyed unfinished removes its temporary file).
class TokenFileWriter {
 public:
  TokenFileWriter(std::string path, bool wide);  // wide: uint32 ids (vocabularies over 65535)
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;
  template <typename Id>
  void append(const std::vector<Id>& ids) {
    for (Id id : ids) put(int64_t(id));
  }
  int64_t count() const { return count_; }
  void finish();

 private:
  void put(int64_t id);
  std::string path_, tmp_;
  bool wide_;
  std::FILE* f_ = nullptr;
  int64_t count_ = 0;
};

// Finds DIR/train.bin and DIR/val.bin, or llm.c's DIR/*_train.bin and DIR/*_val.bin.
struct DataFiles {
  std::string train, val;
};
DataFiles find_data_files(const std::string& dir);

// The tokenizer `flopwise prepare` recorded in DIR/meta.json, checked to fit a model
// of vocab_size tokens of which the last `special` are not text (an encoder's four
// special tokens); "unknown" for folders without one (e.g. llm.c's).
std::string data_folder_tokenizer(const std::string& dir, int64_t vocab_size, int64_t special = 0);

}  // namespace fw
