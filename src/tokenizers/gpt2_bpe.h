// GPT-2's byte-level BPE (Radford et al., 2019), reading OpenAI's encoder.json and
// vocab.bpe. Text is first split by GPT-2's pre-tokenisation pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// then each piece's UTF-8 bytes are merged pairwise, lowest merge rank first. Ids equal
// those of the reference encoder (the npm package gpt-3-encoder under Node; tested on
// varied text). Bytes that are not valid UTF-8 (which JavaScript cannot even hold)
// split like punctuation, so every byte string round-trips exactly.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace fw {

// The pieces GPT-2's pattern cuts `text` into, as byte offsets: piece i is
// [cuts[i], cuts[i+1]), the last ending at text.size().
std::vector<uint32_t> gpt2_pretokenize(std::string_view text);

class Gpt2Tokenizer : public Tokenizer {
 public:
  // dir holds encoder.json and vocab.bpe; errors name the file and line.
  explicit Gpt2Tokenizer(const std::string& dir);
  std::string spec() const override { return "gpt2:" + dir_; }
  int64_t vocab_size() const override { return int64_t(bytes_of_.size()); }
  std::vector<int32_t> encode(const std::string& text) const override;
  const std::string& token_bytes(int32_t id) const override;
  int32_t end_of_text() const override { return eot_; }

 private:
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::string dir_;
  std::vector<std::string> bytes_of_;  // [vocab] token id → its bytes
  std::array<int32_t, 256> byte_id_{};  // byte → its single-byte token
  struct Merge {
    int32_t rank, merged;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) → merge
  int32_t eot_ = -1;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // piece → ids
};

}  // namespace fw
