// flopwise bench train | sample: throughput of the configured model on random data
// (bench serve, fff and tokenizer are registered here, written in their own files).
#include <algorithm>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/system.h"
#include "core/threads.h"
#include "core/timer.h"
#include "infer/generator.h"
#include "kernels/matmul.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "train/trainer.h"

namespace fw::cli {

namespace {
struct BenchFlags {
  std::string ckpt;  // bench sample: a trained model instead of random weights
  int64_t steps = 10, warmup = 2;
  int64_t prompt_tokens = 64, new_tokens = 256, batch = 1;
  ConfigFlags config;
  PrecisionFlag precision;  // bench sample
  KvCacheFlag kv;
  RoutingFlag routing;      // bench sample --ckpt
  CommonFlags common;
};

void random_tokens(std::vector<int32_t>& v, int64_t vocab, Rng& rng) {
  for (auto& t : v) t = int32_t(rng.next_u64() % uint64_t(vocab));
}

void bench_train(const BenchFlags& f) {
  f.common.apply();
  Config cfg = f.config.build();
  check_memory(training_memory_bytes(cfg), "this bench config");
  FW_CHECK(f.steps >= 1 && f.warmup >= 0, "bench: --steps must be >= 1 and --warmup >= 0");
  TrainConfig& tc = cfg.train;
  const int64_t B = tc.micro_batch(), T = tc.seq_len;
  Model model(cfg.model);
  model.init_weights(uint64_t(tc.seed));
  model.enable_grads();
  AdamW adam;
  adam.init(model.num_params());
  Activations acts(model, B, T, true);
  if (tc.matmul_bf16 == MatmulPrecision::automatic) {  // as training decides it
    const PrecisionChoice c = measure_matmul_precision(model, acts, B, T);
    note("bench train: train.matmul_bf16 = auto: " + c.summary());
    tc.matmul_bf16 = c.bf16 ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
  }
  model.set_matmul_bf16(tc.bf16());
  Rng rng(uint64_t(tc.seed));
  std::vector<int32_t> in(static_cast<size_t>(B * T)), tgt(static_cast<size_t>(B * T));
  const double peak = matmul_peak_flops(tc.bf16());
  double best = 1e30, total = 0;
  for (int64_t s = 0; s < f.warmup + f.steps; s++) {
    const double t0 = now_seconds();
    model.grads.zero();
    for (int64_t micro = 0; micro < tc.grad_accum; micro++) {
      random_tokens(in, cfg.model.vocab_size, rng);
      random_tokens(tgt, cfg.model.vocab_size, rng);
      model_forward(model, acts, in.data(), tgt.data(), ForwardMode{true, uint64_t(s * tc.grad_accum + micro)});
      model_backward(model, acts, in.data(), tgt.data(), 1.0f / float(tc.grad_accum));
    }
    adam.update(model, tc, tc.lr);
    model.sync_bf16();
    const double dt = now_seconds() - t0;
    if (s >= f.warmup) {
      total += dt;
      best = std::min(best, dt);
    }
  }
  const FlopCount fc = count_flops(cfg.model, T, cfg.train.mask_rate);
  const double step_s = total / double(f.steps);
  const double tps = double(tc.batch_size * T) / step_s;
  const double mfu = tps * fc.train_per_token() / peak;
  nlohmann::json j = {{"tokens_per_s", tps},          {"mfu", mfu},
                      {"flops_per_token", fc.train_per_token()},
                      {"forward_flops_per_token", fc.forward_per_token()},
                      {"step_ms", 1e3 * step_s},      {"best_step_ms", 1e3 * best},
                      {"peak_gflops", peak / 1e9},    {"params", model.num_params()},
                      {"threads", num_threads()},     {"cpu", cpu_model_name()},
                      {"precision", tc.bf16() ? "bf16" : "fp32"}};
  if (f.common.json) print_json(j);
  else std::printf("bench train (%s): %.0f tokens/s, MFU %.1f%% (peak %.0f GFLOP/s), %.1f ms/step, "
                   "%.1f MFLOP/token training\n", tc.bf16() ? "bf16 matmuls" : "fp32", tps, 100 * mfu,
                   peak / 1e9, 1e3 * step_s, fc.train_per_token() / 1e6);
}

void bench_sample(const BenchFlags& f) {
  f.common.apply();
  FW_CHECK(f.prompt_tokens >= 1 && f.new_tokens >= 1, "bench: --prompt-tokens and --new-tokens must be >= 1");
  FW_CHECK(f.batch >= 1, "bench: --batch must be >= 1");
  FW_CHECK(f.ckpt.empty() || (f.config.file.empty() && f.config.sets.empty()),
           "bench sample --ckpt uses the checkpoint's config; --config/--set are not allowed");
  // A Mixture-of-Depths model's sampling speed depends on how many tokens its trained
  // router accepts; random weights accept about half. --ckpt measures a trained model.
  LoadedModel lm;
  std::unique_ptr<Model> fresh;
  Config cfg;
  if (!f.ckpt.empty()) {
    lm = load_model(f.ckpt);
    cfg = lm.config;
  } else {
    cfg = f.config.build();
    fresh = std::make_unique<Model>(cfg.model);
    fresh->init_weights(uint64_t(cfg.train.seed));
  }
  Model& model = lm.model ? *lm.model : *fresh;
  f.precision.apply(model, cfg);
  if (lm.model) f.routing.apply(model, f.ckpt);
  Rng rng(uint64_t(cfg.train.seed));
  std::vector<std::vector<int32_t>> prompts(size_t(f.batch), std::vector<int32_t>(size_t(f.prompt_tokens)));
  for (auto& p : prompts) random_tokens(p, cfg.model.vocab_size, rng);  // each row its own prompt
  check_memory(Generator::bytes(cfg.model, f.prompt_tokens + f.new_tokens, 64, f.batch, 0, f.kv.value()),
               "this bench sample");
  Generator gen(model, f.prompt_tokens + f.new_tokens, 64, f.batch, 0, f.kv.value());
  generate_batch(gen, prompts, 8, SamplingParams{}, 1);  // warm up caches and threads
  // the best of 3 runs: a single short run on a shared machine can read far slow
  BatchGenerateResult r;
  r.seconds = 1e30;
  for (int round = 0; round < 3; round++) {
    BatchGenerateResult run = generate_batch(gen, prompts, f.new_tokens, SamplingParams{}, 1);
    if (run.seconds < r.seconds) r = std::move(run);
  }
  const double tps = double(f.batch * f.new_tokens) / r.seconds;
  const char* precision = model.bf16_enabled() ? "bf16" : "fp32";
  nlohmann::json j = {{"tokens_per_s", tps},   {"new_tokens", f.new_tokens},
                      {"batch", f.batch},      {"prompt_tokens", f.prompt_tokens},
                      {"seconds", r.seconds},  {"threads", num_threads()},
                      {"precision", precision},      {"kv_cache", f.kv.kv_cache}};
  if (cfg.model.mod.enabled) {  // the fraction of fed tokens each routed layer processed
    double processed = 0;
    int64_t n = 0;
    for (int64_t l = 0; l < cfg.model.n_layers; l++)
      if (cfg.model.mod.routed(l))
        for (int64_t row = 0; row < f.batch; row++) {
          processed += double(gen.cache_length(l, row)) / double(gen.length(row));
          n++;
        }
    j["processed_fraction"] = processed / double(n);
    j["routing"] = model.calibration.empty() ? "uncalibrated" : "calibrated";
  }
  if (f.common.json) print_json(j);
  else std::printf("bench sample: %.1f tokens/s (batch %lld, %lld new tokens each after a %lld-token prompt, %s "
                   "products, %s KV cache)\n", tps, (long long)f.batch, (long long)f.new_tokens, (long long)f.prompt_tokens, precision,
                   f.kv.kv_cache.c_str());
}
}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "measure training, sampling, serving, FFF layer or tokenizer throughput");
  bench->require_subcommand(1);
  auto ft = std::make_shared<BenchFlags>();
  auto* tr = bench->add_subcommand("train", "training tokens/s and MFU on random tokens");
  tr->add_option("--steps", ft->steps, "timed steps");
  tr->add_option("--warmup", ft->warmup, "untimed steps first");
  ft->config.add(tr);
  ft->common.add(tr);
  tr->callback([ft]() { bench_train(*ft); });
  auto fs = std::make_shared<BenchFlags>();
  auto* sa = bench->add_subcommand("sample", "sampling tokens/s with the KV cache (best of 3 runs)");
  sa->add_option("--ckpt", fs->ckpt, "measure this trained model (run folder or file) instead of random weights");
  sa->add_option("--prompt-tokens", fs->prompt_tokens, "prompt length");
  sa->add_option("--new-tokens", fs->new_tokens, "tokens to generate per sequence");
  sa->add_option("--batch", fs->batch, "sequences decoded side by side (each its own random prompt)");
  fs->config.add(sa);
  fs->precision.add(sa);
  fs->kv.add(sa);
  fs->routing.add(sa);
  fs->common.add(sa);
  sa->callback([fs]() { bench_sample(*fs); });
  add_bench_serve(bench);
  add_bench_fff(bench);
  add_bench_tokenizer(bench);
}

}  // namespace fw::cli
