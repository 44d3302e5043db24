// Tokenizers turn text into token ids and back. The byte tokenizer (vocab 256)
// maps each byte to its value, so any byte string round-trips exactly.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fw {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string spec() const = 0;  // how to name it again: "bytes", ...
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
};

class ByteTokenizer : public Tokenizer {
 public:
  std::string spec() const override { return "bytes"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
};

// "bytes" (later: "gpt2[:DIR]", "spm:MODEL"). Unknown specs fail naming the spec.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec);

}  // namespace fw
