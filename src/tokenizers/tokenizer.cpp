#include "tokenizers/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "core/system.h"
#include "tokenizers/gpt2_bpe.h"
#include "tokenizers/spm_tokenizer.h"

namespace fw {

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) s += token_bytes(id);
  return s;
}

std::vector<uint32_t> Tokenizer::token_starts(const std::vector<int32_t>& ids) const {
  std::vector<uint32_t> starts(ids.size());
  uint64_t at = 0;
  for (size_t i = 0; i < ids.size(); i++) {
    starts[i] = uint32_t(at);
    at += token_bytes(ids[i]).size();
  }
  FW_CHECK(at < (uint64_t(1) << 32), "tokenizer: text over 4 GiB in one piece");
  return starts;
}

ByteTokenizer::ByteTokenizer() : bytes_(256) {
  for (int b = 0; b < 256; b++) bytes_[size_t(b)] = std::string(1, char(b));
}

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); i++) ids[i] = int32_t(static_cast<unsigned char>(text[i]));
  return ids;
}

const std::string& ByteTokenizer::token_bytes(int32_t id) const {
  FW_CHECK(id >= 0 && id < 256, "bytes tokenizer: token id ", id, " is not a byte");
  return bytes_[size_t(id)];
}

// Where `gpt2` without a folder finds encoder.json and vocab.bpe: $FLOPWISE_GPT2_DIR if
// set; else an installation's share/flopwise/tokenizers/gpt2 beside the program's bin/;
// else the source tree it was built from, where scripts/fetch.sh puts them.
static std::string default_gpt2_dir() {
  if (const char* env = std::getenv("FLOPWISE_GPT2_DIR"); env && *env) return env;
  const std::filesystem::path installed =
      std::filesystem::path(executable_dir()).parent_path() / "share/flopwise/tokenizers/gpt2";
  const std::filesystem::path source = FLOPWISE_SOURCE_DIR "/data/tokenizers/gpt2";
  for (const auto& dir : {installed, source})
    if (std::filesystem::exists(dir / "encoder.json")) return dir.string();
  fail("tokenizer gpt2: GPT-2's encoder.json and vocab.bpe are in neither ", installed.string(), " nor ",
       source.string(), ": run scripts/fetch.sh gpt2, set FLOPWISE_GPT2_DIR, or give gpt2:DIR");
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "bytes") return std::make_unique<ByteTokenizer>();
  if (spec == "gpt2" || spec.rfind("gpt2:", 0) == 0) {
    std::string dir = spec.size() > 5 ? spec.substr(5) : "";
    if (dir.empty()) dir = default_gpt2_dir();
    return std::make_unique<Gpt2Tokenizer>(std::filesystem::absolute(dir).lexically_normal().string());
  }
  if (spec.rfind("spm:", 0) == 0 && spec.size() > 4)
    return std::make_unique<SpmTokenizer>(std::filesystem::absolute(spec.substr(4)).lexically_normal().string());
  fail("tokenizer: unknown tokenizer '", spec, "' (available: bytes, gpt2, gpt2:DIR, spm:MODEL)");
}

}  // namespace fw
