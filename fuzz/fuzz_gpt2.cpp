// libFuzzer target: GPT-2's tokenizer files. The input is encoder.json, a line
// "#vocab.bpe", then vocab.bpe; a tokenizer that loads then encodes a fixed text and
// the input itself, and decodes what it encoded.
#include <filesystem>
#include <string_view>

#include "core/error.h"
#include "fuzz_input.h"
#include "tokenizers/gpt2_bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view sep = "\n#vocab.bpe\n";
  const size_t at = in.find(sep);
  if (at == std::string_view::npos) return 0;
  const std::string encoder = fw::fuzz::input_file(data, at, "encoder.json");
  const size_t rest = at + sep.size();
  fw::fuzz::input_file(data + rest, size - rest, "vocab.bpe");
  try {
    fw::Gpt2Tokenizer tok(std::filesystem::path(encoder).parent_path().string());
    for (const std::string& text : {std::string("Hello, world! It's 2026."), std::string(in)}) {
      const auto ids = tok.encode(text);
      (void)tok.decode(ids);
    }
  } catch (const fw::Error&) {
  }
  return 0;
}
