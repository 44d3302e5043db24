#include "serve/openai_api.h"

#include <cmath>

#include "core/error.h"

namespace fw {

nlohmann::json ApiError::body() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
}

std::string dump_json(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message, const std::string& code = "") {
  throw ApiError{400, message, "invalid_request_error", param, code};
}

double number(const nlohmann::json& j, const char* name, double lo, double hi) {
  if (!j.is_number()) bad(name, str("'", name, "' must be a number, not ", j.type_name()));
  const double v = j.get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) bad(name, str("'", name, "' must be in [", lo, ", ", hi, "], not ", v));
  return v;
}

int64_t integer(const nlohmann::json& j, const char* name, int64_t lo, int64_t hi) {
  if (!j.is_number_integer() && !(j.is_number_float() && std::floor(j.get<double>()) == j.get<double>() &&
                                   std::abs(j.get<double>()) < 9e18))
    bad(name, str("'", name, "' must be an integer, not ", j.dump()));
  const double v = j.get<double>();
  if (v < double(lo) || v > double(hi)) bad(name, str("'", name, "' must be in [", lo, ", ", hi, "], not ", j.dump()));
  return j.is_number_integer() ? j.get<int64_t>() : int64_t(v);
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& text, const Tokenizer& tok, int64_t ctx,
                                           const std::string& model_name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann refuses invalid UTF-8 inside strings too; say which it was
    const bool utf8 = std::string(e.what()).find("UTF-8") != std::string::npos ||
                      std::string(e.what()).find("utf-8") != std::string::npos;
    bad("", utf8 ? "the request body is not valid UTF-8" : str("the request body is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) bad("", "the request body must be a JSON object");
  CompletionRequest r;
  r.model = model_name;
  if (j.contains("model")) {
    if (!j["model"].is_string()) bad("model", "'model' must be a string");
    r.model = j["model"].get<std::string>();  // one model is served; any name is answered by it
  }
  if (!j.contains("prompt")) bad("prompt", "'prompt' is required");
  std::vector<std::string> prompts;
  const auto& p = j["prompt"];
  if (p.is_string()) {
    prompts.push_back(p.get<std::string>());
  } else if (p.is_array() && !p.empty() && p[0].is_string()) {
    for (const auto& e : p) {
      if (!e.is_string()) bad("prompt", "'prompt' must be a string or a list of strings");
      prompts.push_back(e.get<std::string>());
    }
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {  // one prompt as token ids
    std::vector<int32_t> ids;
    for (const auto& e : p) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= tok.vocab_size())
        bad("prompt", str("'prompt' token ids must be integers in [0, ", tok.vocab_size(), ")"));
      ids.push_back(int32_t(e.get<int64_t>()));
    }
    r.prompts.push_back(ids);
  } else {
    bad("prompt", "'prompt' must be a string, a list of strings or a list of token ids");
  }
  if (prompts.size() > 64) bad("prompt", str("at most 64 prompts per request, not ", prompts.size()));
  if (j.contains("max_tokens") && !j["max_tokens"].is_null()) r.max_tokens = integer(j["max_tokens"], "max_tokens", 1, ctx);
  if (j.contains("n") && !j["n"].is_null()) r.n = integer(j["n"], "n", 1, 16);
  if (j.contains("temperature") && !j["temperature"].is_null()) r.temperature = number(j["temperature"], "temperature", 0, 2);
  if (j.contains("top_p") && !j["top_p"].is_null()) r.top_p = number(j["top_p"], "top_p", 0, 1);
  if (r.top_p == 0) bad("top_p", "'top_p' must be above 0");
  if (j.contains("top_k") && !j["top_k"].is_null()) r.top_k = integer(j["top_k"], "top_k", 0, 1 << 30);
  if (j.contains("logprobs") && !j["logprobs"].is_null()) r.logprobs = integer(j["logprobs"], "logprobs", 0, 5);
  if (j.contains("seed") && !j["seed"].is_null()) {
    if (!j["seed"].is_number_integer()) bad("seed", "'seed' must be an integer");
    r.seed = j["seed"].is_number_unsigned() ? j["seed"].get<uint64_t>() : uint64_t(j["seed"].get<int64_t>());
    r.has_seed = true;
  }
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) bad("stream", "'stream' must be true or false");
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const auto& so = j["stream_options"];
    if (!so.is_object() || (so.contains("include_usage") && !so["include_usage"].is_boolean()))
      bad("stream_options", "'stream_options' must be an object like {\"include_usage\": true}");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed with 'stream': true");
    r.include_usage = so.value("include_usage", false);
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    const auto& s = j["stop"];
    if (s.is_string()) r.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4) {
      for (const auto& e : s) {
        if (!e.is_string()) bad("stop", "'stop' must be a string or a list of at most 4 strings");
        r.stop.push_back(e.get<std::string>());
      }
    } else bad("stop", "'stop' must be a string or a list of at most 4 strings");
    for (const auto& e : r.stop)
      if (e.empty()) bad("stop", "'stop' strings must not be empty");
  }
  for (const auto& text : prompts) {
    std::vector<int32_t> ids = tok.encode(text);
    if (ids.empty()) bad("prompt", "a prompt is empty (give at least one character)");
    r.prompts.push_back(std::move(ids));
  }
  for (const auto& ids : r.prompts)
    if (int64_t(ids.size()) + r.max_tokens > ctx)
      bad("prompt", str("this model's context is ", ctx, " tokens; the prompt has ", ids.size(), " and max_tokens is ",
                        r.max_tokens, ": shorten the prompt or lower max_tokens"),
          "context_length_exceeded");
  return r;
}

}  // namespace fw
