// Batches of (input, target) windows from a token stream. Reads B·T+1 consecutive
// tokens from the current position (wrapping at the end) and advances by B·T, so a
// pass visits every token once. The position is part of the checkpoint.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fw {

class TokenLoader {
 public:
  // Loads `path` and checks every id is < vocab_size (naming the first bad one and
  // the limit as `limit`).
  TokenLoader(const std::string& path, int64_t vocab_size, const std::string& limit = "model.vocab_size");
  TokenLoader(std::vector<int32_t> tokens, int64_t vocab_size, std::string name);

  // inputs, targets: (B, T). targets[b,t] = the token after inputs[b,t].
  void next_batch(int32_t* inputs, int32_t* targets, int64_t B, int64_t T);

  int64_t position() const { return pos_; }
  void set_position(int64_t p);
  void advance(int64_t n) { pos_ = (pos_ + n) % size(); }  // skip n tokens (wrapping)
  uint64_t checksum() const;  // FNV-1a over the ids: tells two copies of a file apart
  int64_t size() const { return int64_t(tokens_.size()); }
  const std::string& name() const { return name_; }

 private:
  void check(int64_t vocab_size, const std::string& limit = "model.vocab_size") const;
  std::vector<int32_t> tokens_;
  std::string name_;
  int64_t pos_ = 0;
};

// Validation windows: window w is the T inputs from token w·T and the T targets after
// them. The number for `tokens` tokens is tokens / T (at least 1), at most what `data`
// holds whole, so a pass never wraps around the file's end. Errors if the file holds
// less than one window, or fewer than `ranks` (each data-parallel rank needs one).
int64_t validation_windows(const TokenLoader& data, int64_t tokens, int64_t T, int ranks = 1);

}  // namespace fw
