// OpenAI's completions API as `flopwise serve` speaks it: the request's fields, checked
// one by one (an error names the field, in OpenAI's error shape), and the response and
// stream-chunk bodies. Unknown fields are ignored, as OpenAI's own server ignores the
// fields of other models; `top_k` is an extension.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizers/tokenizer.h"

namespace fw {

// An answer that is not a completion: HTTP status and OpenAI's error body.
struct ApiError {
  int status = 400;
  std::string message, type = "invalid_request_error", param, code;
  nlohmann::json body() const;
};

struct CompletionRequest {
  std::vector<std::vector<int32_t>> prompts;  // tokenized, one per prompt
  int64_t max_tokens = 16, n = 1, top_k = 0;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  bool has_seed = false, stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
  std::vector<std::string> stop;
  int64_t logprobs = -1;  // ≥ 0: each token's log-probability and this many alternatives (at most 5); -1: none
  std::string model;
};

// Parses and checks a request body; `encode` tokenizes a prompt string. ctx: the
// context each choice must fit (prompt + max_tokens). Throws ApiError.
CompletionRequest parse_completion_request(const std::string& body, const Tokenizer& tok, int64_t ctx,
                                           const std::string& model_name);

// JSON that never fails on invalid UTF-8 (replaced by U+FFFD).
std::string dump_json(const nlohmann::json& j);

}  // namespace fw
