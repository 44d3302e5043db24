// libFuzzer target: a request body of POST /v1/completions, as `flopwise serve` checks
// it (byte tokenizer, a 64-token context): an answer or an ApiError, never a crash; an
// accepted request fits the context and its error bodies serialise.
#include <cstdlib>
#include <string>

#include "serve/openai_api.h"
#include "tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fw::ByteTokenizer tok;
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    const fw::CompletionRequest r = fw::parse_completion_request(body, tok, 64, "m");
    for (const auto& p : r.prompts)
      if (p.empty() || int64_t(p.size()) + r.max_tokens > 64) std::abort();
  } catch (const fw::ApiError& e) {
    (void)fw::dump_json(e.body());
  }
  return 0;
}
