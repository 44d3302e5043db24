// flopwise sample: continue a prompt with a trained model (KV-cached decoding).
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "infer/generator.h"
#include "infer/routing_trace.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace fw::cli {

namespace {
struct SampleFlags {
  std::string ckpt, prompt;
  int64_t tokens = 200, context = 0;
  std::string trace;
  uint64_t seed = 0;
  SamplingParams sp{0.8, 0, 0.95};
  CommonFlags common;
};

void run_sample(const SampleFlags& f) {
  f.common.apply();
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
  std::vector<int32_t> prompt = tok->encode(f.prompt);
  const int64_t cap = f.context > 0 ? f.context : lm.config.model.max_seq_len;
  check_memory(Generator::bytes(lm.config.model, cap), "sampling with this --context");
  apply_precision(*lm.model, lm.config);
  Generator gen(*lm.model, cap);
  if (!f.common.json) {
    std::fputs(f.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  std::unique_ptr<RoutingTrace> trace;
  if (!f.trace.empty()) trace = std::make_unique<RoutingTrace>(f.trace, tok.get());
  FeedCallback on_feed = nullptr;
  if (trace) on_feed = [&](const int32_t* t, int64_t n, const Generator& g) { trace->record(0, t, n, g); };
  GenerateResult r = generate(
      gen, prompt, f.tokens, f.sp, f.seed,
      [&](int32_t t) {
        if (f.common.json) return;
        std::string s = tok->decode({t});
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      },
      on_feed);
  const double tps = double(r.tokens.size()) / r.seconds;
  const std::string text = tok->decode(r.tokens);
  if (f.common.json) print_json({{"text", text}, {"tokens_per_s", tps}, {"tokens", r.tokens.size()}});
  else {
    std::printf("\n");
    note(str("sampled ", r.tokens.size(), " tokens at ", int64_t(tps), " tokens/s"));
  }
}
}  // namespace

void register_sample(CLI::App& app) {
  auto f = std::make_shared<SampleFlags>();
  auto* sub = app.add_subcommand("sample", "generate text from a checkpoint");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--prompt", f->prompt, "text to continue")->required();
  sub->add_option("--tokens", f->tokens, "new tokens to generate");
  sub->add_option("--temperature", f->sp.temperature, "softmax temperature (0: greedy)");
  sub->add_option("--top-k", f->sp.top_k, "sample among the k most likely tokens (0: all)");
  sub->add_option("--top-p", f->sp.top_p, "nucleus: smallest set with this probability mass");
  sub->add_option("--seed", f->seed, "random seed");
  sub->add_option("--context", f->context, "KV cache length (default: model.max_seq_len)");
  sub->add_option("--trace", f->trace, "write per-token Mixture-of-Depths routing decisions (JSON lines)");
  f->common.add(sub);
  sub->callback([f]() { run_sample(*f); });
}

}  // namespace fw::cli
