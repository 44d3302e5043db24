// Continuous batching for `flopwise serve`: one thread (run()'s) owns the model's
// Generator, whose rows are the server's slots. Requests wait in a bounded queue, take
// a free row at the next token boundary, prefill their prompt one chunk (64 tokens) per
// iteration, then decode one token per iteration. Each iteration is one forward
// (Generator::mixed) over the decoding rows' tokens and, within a token budget, the
// prefilling rows' chunks (the longest-waiting first): prompts delay the rows already
// decoding by at most one budget's forward at a time, not by their whole prefill, and
// the decoding rows' products ride along with the chunks' instead of costing a step of
// their own. A finished or cancelled request frees its row at once. Each request
// samples from its own random stream (seed), so its tokens are those `flopwise sample
// --seed` gives it alone.
// run() belongs on the thread that loaded the model (the process's main thread): with
// libgomp, once one thread has run OpenMP work, parallel regions started from another
// thread run 3-8x slower on 2 cores (an empty region 8 µs instead of 3, a 1-row matrix
// product 27 µs instead of 8), which made the server's decoding 4x slower than
// `flopwise sample`'s.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "infer/generator.h"
#include "infer/sampling.h"
#include "tokenizers/tokenizer.h"

namespace fw {

// One sequence to continue (a choice of a completion request).
struct Job {
  // what to do (set before submit)
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  SamplingParams sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // stop strings: the text ends before the first one found
  int64_t logprobs = -1;          // ≥ 0: record each token's log-probability and this many alternatives

  // progress, under mutex; cv is notified at every change
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<int32_t> tokens;  // sampled so far
  std::string text;             // the text that may be shown: no partial UTF-8 character, no
                                // possible start of a stop string (the whole text once done)
  bool done = false;
  std::string finish_reason;    // "length" or "stop" (or "cancelled", "error: ...")
  struct Logprob {              // one sampled token's, with logprobs ≥ 0
    std::string text;           // its bytes (may be part of a UTF-8 character)
    size_t offset;              // where they begin in the completion's text
    float logprob;
    std::vector<std::pair<std::string, float>> top;  // the most likely tokens' bytes and log-probabilities
  };
  std::vector<Logprob> token_logprobs;  // per sampled token
  std::atomic<bool> cancelled{false};  // the client went away: the row is freed at the next boundary

  size_t fed = 0;  // the scheduler's own: prompt tokens fed so far

  // Ends the job (unless it ended already) with `reason` and wakes its waiters.
  void end(const std::string& reason);
};

struct SchedulerStats {  // for /metrics and bench serve (copied under the scheduler's lock)
  int64_t queued = 0, busy_slots = 0, slots = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0;  // totals
  double forward_seconds = 0;  // in the iterations' forwards and draws (prompt chunks and decoding together;
                               // not the delivery of the tokens drawn)
  int64_t drawn_tokens = 0;    // tokens those iterations sampled
  int64_t iterations = 0;      // forwards run
  // of those, the ones that fed prompt chunks (decoding rows riding along): their count,
  // time (part of forward_seconds) and the tokens they sampled; the rest
  // were decoding steps alone
  int64_t chunk_iterations = 0;
  double chunk_seconds = 0;
  int64_t chunk_drawn_tokens = 0;
  std::vector<int64_t> routed_layers;         // Mixture-of-Depths: the routed blocks
  std::vector<int64_t> routed_processed;      // per routed block: tokens it processed
  int64_t routed_seen = 0;                    // tokens every routed block decided on
};

class Scheduler {
 public:
  // slots: rows decoded side by side; queue: jobs that may wait for a row; ctx: tokens
  // of context per row (prompt + completion); batch_tokens: most tokens one forward runs
  // (the decoding rows' one each, then prompt chunks while they fit; 0: kBatchTokens),
  // see forward_budget.
  Scheduler(const Model& model, const Tokenizer& tokenizer, int64_t slots, int64_t queue, int64_t ctx,
            int64_t batch_tokens = 0, KvCache kv = KvCache::fp32);
  // The default budget: four chunks. Measured (bench shape, 16 rows, a throwaway
  // harness over Generator): one forward of k 64-token chunks beside 16 − k decoding
  // rows took 0.83-0.89 of separate feeds and a step for k = 1, 4 and 15, so larger
  // budgets gain little throughput while each token of the decoding rows waits for
  // the whole forward; 256 bounds that wait at about four chunks' forward.
  static constexpr int64_t kBatchTokens = 256;
  static constexpr int64_t kChunk = 64;  // prompt tokens a row feeds per forward at most
  ~Scheduler();  // unfinished jobs end as "cancelled"

  // Runs jobs on the calling thread until stop() is called (from another thread).
  void run();
  void stop();

  // The choices of one request, queued all or none: false when the queue is full (the
  // caller answers 503). Each must fit: prompt not empty, prompt + max_tokens ≤ ctx
  // (checked here as an internal error).
  bool submit_all(const std::vector<std::shared_ptr<Job>>& jobs);
  bool idle();  // nothing queued or running
  SchedulerStats stats();
  // For tests of the safety net in run(): the next iteration throws `what`, as an
  // unexpected fault inside the model would.
  void fail_next_iteration(const std::string& what);
  int64_t ctx() const { return ctx_; }
  int64_t batch_tokens() const { return gen_.batch_tokens(); }

 private:
  // The tokens per forward for batch_tokens = asked (first checking slots, 1 to 256, for
  // serve and bench serve alike): at least one chunk beside the other
  // slots' tokens (less is refused, naming --batch-tokens), and no more than every slot's
  // chunk, all a forward can ever hold (more would only allocate unused buffers).
  static int64_t forward_budget(int64_t slots, int64_t ctx, int64_t asked);
  void iterate();                       // one token boundary: cancellations, then one forward (chunks, decoding rows)
  void admit();                         // queued jobs into free rows
  int32_t draw(int64_t row, float* logits);  // the next token of the row's job (its logprobs into drawn_logprobs_)
  bool deliver(int64_t row, int32_t token);  // a sampled token: text, stop, finish; whether the job ended
  void count_routing(int64_t entries);  // MoD: what each routed block of the last forward processed
  void release(int64_t row);

  const Model& model_;
  const Tokenizer& tok_;
  Generator gen_;
  int64_t slots_, queue_cap_, ctx_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::shared_ptr<Job>> rows_;  // (slots) the job in each row, or null
  std::vector<Rng> rng_;                    // (slots) each row's job's stream
  std::vector<uint64_t> admitted_;          // (slots) when each row's job was admitted (prefill goes oldest first)
  uint64_t admissions_ = 0;
  std::vector<Generator::Chunk> chunks_;    // iterate()'s scratch: the prefilling rows' chunks,
  std::vector<int64_t> step_rows_;          // the decoding rows,
  std::vector<int32_t> step_tokens_, drawn_;  // their last tokens, the tokens drawn for them,
  std::vector<int32_t> first_;              // (chunks) the first token of each prompt fed to its end, or -1
  std::vector<TokenLogprobs> drawn_logprobs_;  // (slots) of each row's last draw, when its job asks
  SchedulerStats stats_;
  bool stop_ = false;
  std::string fault_;  // fail_next_iteration's message, under mutex_ (empty: none)
};

// How many leading bytes of s are whole UTF-8 characters (a trailing incomplete
// sequence is left out; invalid bytes count as whole).
size_t complete_utf8_prefix(const std::string& s);

}  // namespace fw
