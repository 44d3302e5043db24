#include "batching/loader.h"

#include <algorithm>

#include "core/error.h"
#include "formats/token_file.h"

namespace fw {

TokenLoader::TokenLoader(const std::string& path, int64_t vocab_size, const std::string& limit)
    : tokens_(read_token_file(path)), name_(path) {
  check(vocab_size, limit);
}

TokenLoader::TokenLoader(std::vector<int32_t> tokens, int64_t vocab_size, std::string name)
    : tokens_(std::move(tokens)), name_(std::move(name)) {
  check(vocab_size);
}

void TokenLoader::check(int64_t vocab_size, const std::string& limit) const {
  FW_CHECK(tokens_.size() >= 2, name_, ": only ", tokens_.size(),
           " tokens; need at least 2 to form an (input, target) pair");
  for (size_t i = 0; i < tokens_.size(); i++)
    FW_CHECK(tokens_[i] >= 0 && tokens_[i] < vocab_size, name_, ": token ", i, " has id ",
             tokens_[i], " >= ", limit, " = ", vocab_size,
             " (was the file made with another tokenizer?)");
}

void TokenLoader::set_position(int64_t p) {
  FW_CHECK(p >= 0 && p < size(), name_, ": data position ", p, " outside the file's ", size(),
           " tokens (checkpoint from another data set?)");
  pos_ = p;
}

uint64_t TokenLoader::checksum() const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t id : tokens_) {
    h ^= uint64_t(uint32_t(id));
    h *= 0x100000001b3ull;
  }
  return h;
}

int64_t validation_windows(const TokenLoader& data, int64_t tokens, int64_t T, int ranks) {
  const int64_t whole = (data.size() - 1) / T;  // each window needs its T inputs and one more target
  FW_CHECK(whole >= 1, data.name(), ": ", data.size(), " tokens, too few for one validation sequence of ", T);
  const int64_t windows = std::clamp<int64_t>(tokens / T, 1, whole);
  FW_CHECK(windows >= ranks, data.name(), ": ", windows, " validation sequences of ", T, " tokens for ", ranks,
           " ranks; each needs one");
  return windows;
}

void TokenLoader::next_batch(int32_t* inputs, int32_t* targets, int64_t B, int64_t T) {
  const int64_t n = size();
  for (int64_t i = 0; i < B * T; i++) {
    inputs[i] = tokens_[size_t((pos_ + i) % n)];
    targets[i] = tokens_[size_t((pos_ + i + 1) % n)];
  }
  pos_ = (pos_ + B * T) % n;
}

}  // namespace fw
