// SentencePiece models (Kudo & Richardson, 2018) through libsentencepiece, held to
// flopwise's contract that tokenizers are exact on bytes: the model must keep text as
// it is (identity normalisation, no dummy prefix, no whitespace folding) and have
// byte-fallback pieces. `flopwise tokenizer train` makes such models; others are
// refused when loaded. Bytes that are not valid UTF-8, and the character U+2581 that
// SentencePiece uses for spaces, are encoded as byte pieces.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace fw {

class SpmTokenizer : public Tokenizer {
 public:
  explicit SpmTokenizer(const std::string& model_path);
  ~SpmTokenizer() override;
  std::string spec() const override { return "spm:" + path_; }
  int64_t vocab_size() const override { return int64_t(bytes_of_.size()); }
  std::vector<int32_t> encode(const std::string& text) const override;
  const std::string& token_bytes(int32_t id) const override;
  int32_t end_of_text() const override { return eos_; }

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::string> bytes_of_;  // [vocab] id → bytes ("" for control pieces)
  int32_t byte_piece_[256];
  int32_t eos_ = -1;
  bool lines_independent_ = true;  // no piece holds a newline with other text
};

struct SpmTrainOptions {
  std::vector<std::string> inputs;
  int64_t vocab_size = 4096;
  std::string model_type = "bpe";  // bpe | unigram
  std::string out;                 // the .model file to write
};

// Trains a byte-exact model (see above) and writes it atomically to options.out.
void train_spm(const SpmTrainOptions& options);

}  // namespace fw
