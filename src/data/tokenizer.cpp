#include "data/tokenizer.h"

#include "core/error.h"

namespace fw {

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); i++) ids[i] = int32_t(static_cast<unsigned char>(text[i]));
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  s.reserve(ids.size());
  for (int32_t id : ids) {
    FW_CHECK(id >= 0 && id < 256, "bytes tokenizer: token id ", id, " is not a byte");
    s.push_back(char(id));
  }
  return s;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "bytes") return std::make_unique<ByteTokenizer>();
  fail("tokenizer: unknown tokenizer '", spec, "' (available: bytes)");
}

}  // namespace fw
