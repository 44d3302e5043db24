// libFuzzer target: a SentencePiece model file (a protobuf, parsed by Debian's
// libsentencepiece) through flopwise's checks: byte fallback present, exact on bytes.
// A model that loads then encodes a fixed text and the input itself, and decodes what
// it encoded, which must give the text back.
#include <string>
#include <string_view>

#include "core/error.h"
#include "fuzz_input.h"
#include "tokenizers/spm_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string model = fw::fuzz::input_file(data, size, "tok.model");
  try {
    fw::SpmTokenizer tok(model);
    for (const std::string& text : {std::string("Hello, world! It's 2026.\n"),
                                    std::string(reinterpret_cast<const char*>(data), size)}) {
      if (tok.decode(tok.encode(text)) != text) __builtin_trap();  // flopwise promises exact bytes
    }
  } catch (const fw::Error&) {
  }
  return 0;
}
