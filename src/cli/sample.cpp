// flopwise sample: continue prompts with a trained model (KV-cached decoding; several
// prompts decode as one batch).
#include <cstdio>
#include <functional>

#include "cli/common.h"
#include "core/error.h"
#include "core/system.h"
#include "tokenizers/tokenizer.h"
#include "infer/generator.h"
#include "infer/routing_trace.h"
#include "train/checkpoint.h"

namespace fw::cli {

namespace {
struct SampleFlags {
  std::string ckpt, prompts_file;
  std::vector<std::string> prompts;
  int64_t tokens = 200, context = 0;
  std::string trace;
  uint64_t seed = 0;
  SamplingParams sp{0.8, 0, 0.95};
  PrecisionFlag precision;
  KvCacheFlag kv;
  RoutingFlag routing;
  CommonFlags common;
};

// The prompts of --prompt and --prompts FILE (one per line), in that order.
std::vector<std::string> read_prompts(const SampleFlags& f) {
  std::vector<std::string> texts = f.prompts;
  if (!f.prompts_file.empty())
    for (const PromptLine& p : read_prompt_lines(f.prompts_file)) texts.push_back(p.text);
  FW_CHECK(!texts.empty(), "sample: give --prompt (one or more times) or --prompts FILE");
  return texts;
}

struct SampleResult {
  std::vector<std::string> prompts, continuations;  // per row of the batch
  int64_t tokens = 0;                              // new tokens, all rows
  double tokens_per_s = 0;
  bool streamed = false;  // the single row's text went to on_text as it was drawn
};

// Draws the continuations. With a single prompt, on_text (may be null) sees the text as
// it is drawn, the prompt first (streaming); a batch is only returned.
SampleResult draw_samples(const SampleFlags& f, const std::function<void(const std::string&)>& on_text) {
  FW_CHECK(f.sp.temperature >= 0, "--temperature must be >= 0");
  FW_CHECK(f.sp.top_p > 0 && f.sp.top_p <= 1, "--top-p must be in (0, 1]");
  FW_CHECK(f.sp.top_k >= 0, "--top-k must be >= 0");
  FW_CHECK(f.tokens >= 1, "--tokens must be >= 1");
  LoadedModel lm = load_model(f.ckpt);
  FW_CHECK(lm.tokenizer != "unknown", model_file(f.ckpt),
           ": trained on token files without a recorded tokenizer; cannot encode a text prompt");
  auto tok = make_tokenizer(lm.tokenizer);
  FW_CHECK(tok->vocab_size() <= lm.config.model.vocab_size, model_file(f.ckpt), ": tokenizer '",
           lm.tokenizer, "' has more tokens than the model");
  SampleResult res;
  res.prompts = read_prompts(f);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& t : res.prompts) {
    prompts.push_back(tok->encode(t));
    FW_CHECK(!prompts.back().empty(), "sample: prompt ", prompts.size(), " is empty");
  }
  const int64_t B = int64_t(prompts.size());
  const int64_t cap = f.context > 0 ? f.context : lm.config.model.max_seq_len;
  check_memory(Generator::bytes(lm.config.model, cap, 64, B, 0, f.kv.value()), "sampling with this --context and batch");
  f.precision.apply(*lm.model, lm.config);
  f.routing.apply(*lm.model, f.ckpt);
  Generator gen(*lm.model, cap, 64, B, 0, f.kv.value());
  std::unique_ptr<RoutingTrace> trace;
  if (!f.trace.empty()) trace = std::make_unique<RoutingTrace>(f.trace, tok.get());
  FeedCallback on_feed = nullptr;
  if (trace)
    on_feed = [&](int64_t row, const int32_t* t, int64_t n, int64_t entry, const Generator& g) {
      trace->record(row, row, t, n, entry, g);
    };
  TokenCallback on_token = nullptr;
  res.streamed = on_text && B == 1;
  if (res.streamed) {
    on_text(res.prompts[0]);
    on_token = [&](int64_t, int32_t t) { on_text(tok->decode({t})); };
  }
  SamplingParams sp = f.sp;
  sp.vocab_limit = tok->vocab_size();  // the model's extra ids (padding) stand for no text
  BatchGenerateResult r = generate_batch(gen, prompts, f.tokens, sp, f.seed, on_token, on_feed);
  for (const auto& row : r.tokens) {
    res.tokens += int64_t(row.size());
    res.continuations.push_back(tok->decode(row));
  }
  res.tokens_per_s = double(res.tokens) / r.seconds;
  return res;
}

void run_sample(const SampleFlags& f) {
  f.common.apply();
  auto print_text = [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  };
  const SampleResult r = draw_samples(f, f.common.json ? nullptr : std::function<void(const std::string&)>(print_text));
  const size_t B = r.prompts.size();
  if (f.common.json) {
    print_json({{"text", r.continuations[0]}, {"texts", r.continuations}, {"tokens_per_s", r.tokens_per_s},
                {"tokens", r.tokens}, {"batch", B}});
    return;
  }
  if (r.streamed) std::printf("\n");
  else
    for (size_t i = 0; i < B; i++)
      std::printf("--- sample %zu ---\n%s%s\n", i, r.prompts[i].c_str(), r.continuations[i].c_str());
  note(str("sampled ", r.tokens, " tokens (batch ", B, ") at ", int64_t(r.tokens_per_s), " tokens/s"));
}
}  // namespace

void register_sample(CLI::App& app) {
  auto f = std::make_shared<SampleFlags>();
  auto* sub = app.add_subcommand("sample", "generate text from a checkpoint");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--prompt", f->prompts, "text to continue (repeat for a batch)")->allow_extra_args(false);
  sub->add_option("--prompts", f->prompts_file, "file with one prompt per line, decoded as one batch");
  sub->add_option("--tokens", f->tokens, "new tokens to generate");
  sub->add_option("--temperature", f->sp.temperature, "softmax temperature (0: greedy)");
  sub->add_option("--top-k", f->sp.top_k, "sample among the k most likely tokens (0: all)");
  sub->add_option("--top-p", f->sp.top_p, "nucleus: smallest set with this probability mass");
  sub->add_option("--seed", f->seed, "random seed");
  sub->add_option("--context", f->context, "KV cache length (default: model.max_seq_len)");
  sub->add_option("--trace", f->trace, "write per-token Mixture-of-Depths routing decisions (JSON lines)");
  f->precision.add(sub);
  f->kv.add(sub);
  f->routing.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_sample(*f); });
}

}  // namespace fw::cli
