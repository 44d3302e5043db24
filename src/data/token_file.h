// Token files in llm.c's format: a header of 256 int32 — [0] magic, [1] version,
// [2] token count — then the tokens: uint16 (magic 20240520, version 1) or uint32
// (magic 20240801, version 7, for vocabularies over 65535).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fw {

constexpr int32_t kTokenMagic16 = 20240520, kTokenVersion16 = 1;
constexpr int32_t kTokenMagic32 = 20240801, kTokenVersion32 = 7;

// Reads and checks the whole file; every failure names the file.
std::vector<int32_t> read_token_file(const std::string& path);

// Writes uint16 tokens when every id fits, uint32 otherwise; atomic (temp + rename).
void write_token_file(const std::string& path, const std::vector<int32_t>& tokens);

// Finds DIR/train.bin and DIR/val.bin, or llm.c's DIR/*_train.bin and DIR/*_val.bin.
struct DataFiles {
  std::string train, val;
};
DataFiles find_data_files(const std::string& dir);

// The tokenizer `flopwise prepare` recorded in DIR/meta.json, checked to fit a model
// of vocab_size tokens; "unknown" for folders without one (e.g. llm.c's).
std::string data_folder_tokenizer(const std::string& dir, int64_t vocab_size);

}  // namespace fw
