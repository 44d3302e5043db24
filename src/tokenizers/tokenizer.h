// Tokenizers turn text into token ids and back. Every flopwise tokenizer is exact on
// bytes: each id stands for a fixed byte string, and decode(encode(s)) == s for any
// byte string s, valid UTF-8 or not. Specs name them: "bytes", "gpt2[:DIR]",
// "spm:MODEL". encode() may cache; one tokenizer object is for one thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fw {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string spec() const = 0;  // names it again, with absolute paths
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  virtual const std::string& token_bytes(int32_t id) const = 0;  // throws for ids out of range
  virtual int32_t end_of_text() const { return -1; }  // the document separator, or -1 for none

  std::string decode(const std::vector<int32_t>& ids) const;
  // Byte offset of each token in decode(ids).
  std::vector<uint32_t> token_starts(const std::vector<int32_t>& ids) const;
};

class ByteTokenizer : public Tokenizer {
 public:
  ByteTokenizer();
  std::string spec() const override { return "bytes"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(const std::string& text) const override;
  const std::string& token_bytes(int32_t id) const override;

 private:
  std::vector<std::string> bytes_;
};

// "bytes"; "gpt2" (files from scripts/fetch.sh gpt2, found as make_tokenizer says) or
// "gpt2:DIR"; "spm:MODEL" (a SentencePiece model). Errors name the spec or file.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec);

}  // namespace fw
