// flopwise bench serve: the serving scheduler (serve/scheduler.h) under load, in one
// process, without HTTP. C client threads each send R requests in turn, as
// bench/serve_load.py does over HTTP; the difference between the two is what the HTTP
// side (connections, a handler thread woken per token, the load generator on the same
// cores) costs. The scheduler's counters split its time into decoding steps alone and
// forwards that fed prompt chunks, so a throughput can be read against the engine's.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cli/common.h"
#include "core/error.h"
#include "core/system.h"
#include "core/threads.h"
#include "core/timer.h"
#include "serve/scheduler.h"
#include "tokenizers/tokenizer.h"
#include "train/checkpoint.h"

namespace fw::cli {

namespace {
struct BenchServeFlags {
  std::string ckpt, prompts;
  int64_t clients = 16, requests = 4, max_tokens = 64, slots = 16, batch_tokens = 0, rounds = 3;
  double temperature = 0.8, top_p = 0.95;
  uint64_t seed = 1000;
  PrecisionFlag precision;
  KvCacheFlag kv;
  RoutingFlag routing;
  CommonFlags common;
};

struct RequestTimes {
  double ttft = 0, per_token = -1;  // seconds; per_token < 0: fewer than two tokens
  int64_t tokens = 0;
};

struct Round {
  double seconds = 0;
  std::vector<RequestTimes> requests;
  SchedulerStats stats;  // of the timed requests (the warm-up's taken out)
};

// The prompts file's lines (blank ones skipped), encoded; each must leave room for
// max_tokens in the context.
std::vector<std::vector<int32_t>> read_prompts(const std::string& path, const Tokenizer& tok, int64_t max_tokens,
                                               int64_t ctx) {
  std::vector<std::vector<int32_t>> out;
  for (const PromptLine& p : read_prompt_lines(path)) {
    out.push_back(tok.encode(p.text));
    FW_CHECK(int64_t(out.back().size()) + max_tokens <= ctx, "bench serve: ", path, " line ", p.line, ": a prompt of ",
             out.back().size(), " tokens + --max-tokens ", max_tokens, " exceeds the model's context of ", ctx);
  }
  FW_CHECK(!out.empty(), "bench serve: ", path, " holds no prompts (one per line)");
  return out;
}

// What happened between two snapshots of the counters.
SchedulerStats since(SchedulerStats b, const SchedulerStats& a) {
  b.prompt_tokens -= a.prompt_tokens, b.completion_tokens -= a.completion_tokens;
  b.forward_seconds -= a.forward_seconds, b.drawn_tokens -= a.drawn_tokens, b.iterations -= a.iterations;
  b.chunk_iterations -= a.chunk_iterations, b.chunk_seconds -= a.chunk_seconds;
  b.chunk_drawn_tokens -= a.chunk_drawn_tokens, b.routed_seen -= a.routed_seen;
  for (size_t i = 0; i < b.routed_processed.size(); i++) b.routed_processed[i] -= a.routed_processed[i];
  return b;
}

// One load on a fresh scheduler: the model's compute on this thread (the one that
// loaded it; Scheduler says why), the clients on their own.
Round run_round(const Model& model, const Tokenizer& tok, const std::vector<std::vector<int32_t>>& prompts,
                const BenchServeFlags& f, int64_t ctx, int64_t vocab_limit) {
  // each client has one request waiting at most, the warm-up runs alone
  Scheduler sched(model, tok, f.slots, f.clients, ctx, f.batch_tokens, f.kv.value());
  auto job = [&](int64_t i) {
    auto j = std::make_shared<Job>();
    j->prompt = prompts[size_t(i) % prompts.size()];
    j->max_tokens = f.max_tokens;
    j->sampling = {f.temperature, 0, f.top_p, vocab_limit};
    j->seed = f.seed + uint64_t(i);
    return j;
  };
  // submits j and waits for it: (time to its first token or its end, time to its end)
  auto complete = [&](const std::shared_ptr<Job>& j) {
    const double t0 = now_seconds();
    FW_CHECK(sched.submit_all({j}), "internal: bench serve's queue is full");
    std::unique_lock<std::mutex> lk(j->mutex);
    j->cv.wait(lk, [&] { return j->done || !j->tokens.empty(); });
    const double first = now_seconds();
    j->cv.wait(lk, [&] { return j->done; });
    return std::make_pair(first - t0, now_seconds() - first);
  };
  Round r;
  r.requests.resize(size_t(f.clients * f.requests));
  std::string failure;  // a client's exception, rethrown on this thread
  std::mutex failure_mutex;
  std::thread driver([&] {
    try {
      complete(job(0));  // warm-up, untimed: oneDNN generates its kernels on first use
      const SchedulerStats before = sched.stats();
      const double t0 = now_seconds();
      std::vector<std::thread> clients;
      for (int64_t c = 0; c < f.clients; c++)
        clients.emplace_back([&, c] {
          try {
            for (int64_t k = 0; k < f.requests; k++) {
              const int64_t i = c * f.requests + k;
              const auto j = job(i);
              const auto [ttft, rest] = complete(j);
              RequestTimes& t = r.requests[size_t(i)];
              t.ttft = ttft, t.tokens = int64_t(j->tokens.size());
              if (t.tokens > 1) t.per_token = rest / double(t.tokens - 1);
            }
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lk(failure_mutex);
            failure = e.what();
          }
        });
      for (auto& t : clients) t.join();
      r.seconds = now_seconds() - t0;
      r.stats = since(sched.stats(), before);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(failure_mutex);
      failure = e.what();
    }
    sched.stop();
  });
  sched.run();
  driver.join();
  FW_CHECK(failure.empty(), failure);
  return r;
}

// xs sorted: the value at quantile p (as bench/serve_load.py takes it)
double quantile(const std::vector<double>& xs, double p) {
  return xs.empty() ? 0.0 : xs[std::min(xs.size() - 1, size_t(p * double(xs.size())))];
}

void bench_serve(const BenchServeFlags& f) {
  f.common.apply();
  FW_CHECK(f.clients >= 1 && f.requests >= 1, "bench serve: --clients and --requests must be >= 1");
  FW_CHECK(f.max_tokens >= 1, "bench serve: --max-tokens must be >= 1, not ", f.max_tokens);
  FW_CHECK(f.rounds >= 1, "bench serve: --rounds must be >= 1, not ", f.rounds);
  FW_CHECK(f.temperature >= 0, "bench serve: --temperature must be >= 0, not ", f.temperature);
  FW_CHECK(f.top_p > 0 && f.top_p <= 1, "bench serve: --top-p must be in (0, 1], not ", f.top_p);
  LoadedModel lm = load_model(f.ckpt);
  FW_CHECK(!lm.config.model.encoder(), "bench serve: ", f.ckpt, " is an encoder, which does not generate text");
  f.precision.apply(*lm.model, lm.config);
  f.routing.apply(*lm.model, f.ckpt);
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(lm.tokenizer);
  const int64_t ctx = lm.config.model.max_seq_len;
  const std::vector<std::vector<int32_t>> prompts = read_prompts(f.prompts, *tok, f.max_tokens, ctx);

  Round best;
  for (int64_t k = 0; k < f.rounds; k++) {  // the fastest round: a shared machine's speed drifts
    Round r = run_round(*lm.model, *tok, prompts, f, ctx, tok->vocab_size());
    if (k == 0 || r.seconds < best.seconds) best = std::move(r);
  }
  const SchedulerStats& s = best.stats;
  std::vector<double> ttft, per;
  int64_t tokens = 0;
  for (const RequestTimes& t : best.requests) {
    ttft.push_back(t.ttft);
    if (t.per_token >= 0) per.push_back(t.per_token);
    tokens += t.tokens;
  }
  std::sort(ttft.begin(), ttft.end());
  std::sort(per.begin(), per.end());
  const int64_t step_iterations = s.iterations - s.chunk_iterations;
  const int64_t step_tokens = s.drawn_tokens - s.chunk_drawn_tokens;
  const double step_seconds = s.forward_seconds - s.chunk_seconds;
  const char* precision = lm.model->bf16_enabled() ? "bf16" : "fp32";
  nlohmann::json j = {{"tokens_per_s", double(tokens) / best.seconds},
                      {"seconds", best.seconds},
                      {"tokens", tokens},
                      {"requests", best.requests.size()},
                      {"clients", f.clients},
                      {"slots", f.slots},
                      {"max_tokens", f.max_tokens},
                      {"rounds", f.rounds},
                      {"ttft_p50_ms", 1e3 * quantile(ttft, 0.5)},
                      {"ttft_p99_ms", 1e3 * quantile(ttft, 0.99)},
                      {"per_token_p50_ms", 1e3 * quantile(per, 0.5)},
                      {"per_token_p99_ms", 1e3 * quantile(per, 0.99)},
                      {"forward_share", s.forward_seconds / best.seconds},
                      {"step_iterations", step_iterations},
                      {"step_seconds", step_seconds},
                      {"step_tokens", step_tokens},
                      {"chunk_iterations", s.chunk_iterations},
                      {"chunk_seconds", s.chunk_seconds},
                      {"chunk_prompt_tokens", s.prompt_tokens},
                      {"chunk_drawn_tokens", s.chunk_drawn_tokens},
                      {"precision", precision},
                      {"kv_cache", f.kv.kv_cache},
                      {"threads", num_threads()},
                      {"cpu", cpu_model_name()}};
  std::string shares;
  if (!s.routed_layers.empty()) {  // Mixture-of-Depths: the share of tokens each routed block processed
    nlohmann::json p = nlohmann::json::object();
    for (size_t i = 0; i < s.routed_layers.size(); i++) {
      const double share = s.routed_seen ? double(s.routed_processed[i]) / double(s.routed_seen) : 0.0;
      p[std::to_string(s.routed_layers[i])] = share;
      shares += str(i ? ", " : "", "block ", s.routed_layers[i], " ", int(100 * share + 0.5), "%");
    }
    j["processed_share"] = p;
  }
  if (f.common.json) return print_json(j);
  std::printf("bench serve: %.0f tokens/s (%lld tokens in %.2f s; %lld clients x %lld requests of up to %lld tokens, "
              "%lld slots, %s products, %s KV cache; fastest of %lld rounds)\n",
              double(tokens) / best.seconds, (long long)tokens, best.seconds, (long long)f.clients,
              (long long)f.requests, (long long)f.max_tokens, (long long)f.slots, precision, f.kv.kv_cache.c_str(),
              (long long)f.rounds);
  std::printf("  forwards %.0f%% of the time: %lld decoding steps alone, %.1f rows and %.2f ms each (%.0f us/token); "
              "%lld with prompt chunks, %.2f ms each (%lld prompt tokens and %lld sampled)\n",
              100 * s.forward_seconds / best.seconds, (long long)step_iterations,
              step_iterations ? double(step_tokens) / double(step_iterations) : 0.0,
              step_iterations ? 1e3 * step_seconds / double(step_iterations) : 0.0,
              step_tokens ? 1e6 * step_seconds / double(step_tokens) : 0.0, (long long)s.chunk_iterations,
              s.chunk_iterations ? 1e3 * s.chunk_seconds / double(s.chunk_iterations) : 0.0,
              (long long)s.prompt_tokens, (long long)s.chunk_drawn_tokens);
  std::printf("  time to first token p50 / p99 %.1f / %.1f ms, per token %.2f / %.2f ms\n", j["ttft_p50_ms"].get<double>(),
              j["ttft_p99_ms"].get<double>(), j["per_token_p50_ms"].get<double>(), j["per_token_p99_ms"].get<double>());
  if (!shares.empty()) std::printf("  Mixture-of-Depths: processed %s of tokens\n", shares.c_str());
}
}  // namespace

void add_bench_serve(CLI::App* bench) {
  auto f = std::make_shared<BenchServeFlags>();
  auto* sub = bench->add_subcommand("serve", "the serving scheduler under load, in-process (no HTTP)");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--prompts", f->prompts, "text file, one prompt per line (used in turn)")->required();
  sub->add_option("--clients", f->clients, "concurrent clients (default 16)");
  sub->add_option("--requests", f->requests, "requests each client sends, one after another (default 4)");
  sub->add_option("--max-tokens", f->max_tokens, "tokens per completion at most (default 64)");
  sub->add_option("--slots", f->slots, "sequences decoded side by side, as serve --slots (default 16)");
  sub->add_option("--batch-tokens", f->batch_tokens, "as serve --batch-tokens (default 256)");
  sub->add_option("--temperature", f->temperature, "sampling temperature (default 0.8)");
  sub->add_option("--top-p", f->top_p, "nucleus sampling mass (default 0.95)");
  sub->add_option("--seed", f->seed, "request i samples with seed + i (default 1000)");
  sub->add_option("--rounds", f->rounds, "loads, each on a fresh scheduler; the fastest is reported (default 3)");
  f->precision.add(sub);
  f->kv.add(sub);
  f->routing.add(sub);
  f->common.add(sub);
  sub->callback([f]() { bench_serve(*f); });
}

}  // namespace fw::cli
