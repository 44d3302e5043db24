#include "serve/scheduler.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "core/error.h"
#include "core/timer.h"

namespace fw {

size_t complete_utf8_prefix(const std::string& s) {
  // walk back over at most 3 continuation bytes to the last lead byte; keep it only
  // when its sequence is complete
  size_t i = s.size(), back = 0;
  while (i > 0 && back < 3 && (uint8_t(s[i - 1]) & 0xC0) == 0x80) i--, back++;
  if (i == 0) return s.size();
  const uint8_t lead = uint8_t(s[i - 1]);
  const size_t need = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > 1 && back + 1 < need ? i - 1 : s.size();
}

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, int64_t slots, int64_t queue, int64_t ctx,
                     int64_t batch_tokens, KvCache kv)
    : model_(model), tok_(tokenizer), gen_(model, ctx, kChunk, slots, forward_budget(slots, ctx, batch_tokens), kv),
      slots_(slots), queue_cap_(queue), ctx_(ctx), rows_(size_t(slots)), rng_(size_t(slots)), admitted_(size_t(slots)),
      drawn_logprobs_(size_t(slots)) {
  stats_.slots = slots;
  for (int64_t l = 0; l < model.cfg.n_layers; l++)
    if (model.cfg.mod.routed(l)) stats_.routed_layers.push_back(l);
  stats_.routed_processed.assign(stats_.routed_layers.size(), 0);
}

int64_t Scheduler::forward_budget(int64_t slots, int64_t ctx, int64_t asked) {
  FW_CHECK(slots >= 1 && slots <= 256, "serve: --slots must be in [1, 256], not ", slots);
  const int64_t chunk = std::min(kChunk, ctx), least = chunk + slots - 1, most = slots * chunk;
  FW_CHECK(asked == 0 || asked >= least, "serve: --batch-tokens ", asked, " is below ", least,
           " (one prompt chunk of ", chunk, " tokens beside ", slots - 1, " decoding slots)");
  return std::min(asked == 0 ? std::max(kBatchTokens, least) : asked, most);
}

void Job::end(const std::string& reason) {
  std::lock_guard<std::mutex> lk(mutex);
  if (!done) done = true, finish_reason = reason;
  cv.notify_all();
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
}

Scheduler::~Scheduler() {
  for (auto& j : queue_) j->end("cancelled");
  for (auto& j : rows_)
    if (j) j->end("cancelled");
}

bool Scheduler::submit_all(const std::vector<std::shared_ptr<Job>>& jobs) {
  for (const auto& j : jobs)
    FW_CHECK(!j->prompt.empty() && j->max_tokens >= 1 && int64_t(j->prompt.size()) + j->max_tokens <= ctx_,
             "internal: a job of ", j->prompt.size(), " + ", j->max_tokens, " tokens for a context of ", ctx_);
  {
    std::lock_guard<std::mutex> lk(mutex_);
    if (int64_t(queue_.size() + jobs.size()) > queue_cap_) return false;
    for (const auto& j : jobs) {
      queue_.push_back(j);
      stats_.prompt_tokens += int64_t(j->prompt.size());
    }
    stats_.queued = int64_t(queue_.size());
  }
  wake_.notify_all();
  return true;
}

bool Scheduler::idle() {
  std::lock_guard<std::mutex> lk(mutex_);
  return queue_.empty() && stats_.busy_slots == 0;
}

SchedulerStats Scheduler::stats() {
  std::lock_guard<std::mutex> lk(mutex_);
  return stats_;
}

// Under mutex_.
void Scheduler::admit() {
  for (int64_t r = 0; r < slots_ && !queue_.empty(); r++) {
    if (rows_[size_t(r)]) continue;
    std::shared_ptr<Job> j = queue_.front();
    queue_.pop_front();
    if (j->cancelled) {  // gone before it started
      j->end("cancelled");
      r--;
      continue;
    }
    j->fed = 0;
    rows_[size_t(r)] = j;
    rng_[size_t(r)] = Rng(j->seed);
    admitted_[size_t(r)] = admissions_++;
    gen_.reset_row(r);
    stats_.busy_slots++;
  }
  stats_.queued = int64_t(queue_.size());
}

void Scheduler::release(int64_t row) {
  std::lock_guard<std::mutex> lk(mutex_);
  rows_[size_t(row)].reset();
  stats_.busy_slots--;
}

int32_t Scheduler::draw(int64_t row, float* logits) {
  const Job& j = *rows_[size_t(row)];
  const int64_t limit = j.sampling.candidates(model_.cfg.vocab_size);
  if (j.logprobs < 0) return sample_token(logits, limit, j.sampling, rng_[size_t(row)]);
  thread_local std::vector<float> raw;  // sampling overwrites the logits
  raw.assign(logits, logits + limit);
  const int32_t token = sample_token(logits, limit, j.sampling, rng_[size_t(row)]);
  drawn_logprobs_[size_t(row)] = token_logprobs(raw.data(), limit, token, j.logprobs);
  return token;
}

bool Scheduler::deliver(int64_t row, int32_t token) {
  Job& j = *rows_[size_t(row)];
  {
    std::lock_guard<std::mutex> slk(mutex_);
    stats_.completion_tokens++;
  }
  std::lock_guard<std::mutex> lk(j.mutex);
  const bool end_of_text = token == tok_.end_of_text();
  if (!end_of_text) j.tokens.push_back(token);
  if (!end_of_text && j.logprobs >= 0) {
    const TokenLogprobs& lp = drawn_logprobs_[size_t(row)];
    Job::Logprob e{tok_.token_bytes(token), 0, lp.logprob, {}};
    if (!j.token_logprobs.empty()) e.offset = j.token_logprobs.back().offset + j.token_logprobs.back().text.size();
    for (const auto& [id, logprob] : lp.top) e.top.emplace_back(tok_.token_bytes(id), logprob);
    j.token_logprobs.push_back(std::move(e));
  }
  const std::string all = tok_.decode(j.tokens);
  size_t cut = std::string::npos;
  for (const auto& s : j.stop) cut = std::min(cut, all.find(s));
  if (cut != std::string::npos || end_of_text) {
    j.text = all.substr(0, std::min(cut, all.size()));
    j.done = true, j.finish_reason = "stop";
  } else if (int64_t(j.tokens.size()) >= j.max_tokens) {
    j.text = all;
    j.done = true, j.finish_reason = "length";
  } else {  // hold back what may begin a stop string, and an unfinished UTF-8 character
    size_t hold = 0;
    for (const auto& s : j.stop)
      for (size_t k = std::min(s.size() - 1, all.size()); k > hold; k--)
        if (all.compare(all.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    const size_t show = complete_utf8_prefix(all.substr(0, all.size() - hold));
    if (show > j.text.size()) j.text = all.substr(0, show);
  }
  j.cv.notify_all();
  return j.done;
}

void Scheduler::count_routing(int64_t entries) {
  std::lock_guard<std::mutex> lk(mutex_);
  for (size_t i = 0; i < stats_.routed_layers.size(); i++)
    for (const auto& d : gen_.decisions(stats_.routed_layers[i])) stats_.routed_processed[i] += d.processed;
  if (!stats_.routed_layers.empty()) stats_.routed_seen += entries;
}

void Scheduler::fail_next_iteration(const std::string& what) {
  std::lock_guard<std::mutex> lk(mutex_);
  fault_ = what;
}

void Scheduler::iterate() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    if (!fault_.empty()) throw std::runtime_error(std::exchange(fault_, std::string()));
  }
  // cancelled jobs give their rows back at once
  for (int64_t r = 0; r < slots_; r++) {
    const auto& j = rows_[size_t(r)];
    if (!j || !j->cancelled) continue;
    j->end("cancelled");
    release(r);
  }
  // the rows decoding now (all their prompt fed, their last token not yet fed) and the
  // next chunk of each prompt still being fed
  step_rows_.clear();
  step_tokens_.clear();
  chunks_.clear();
  for (int64_t r = 0; r < slots_; r++) {
    const auto& j = rows_[size_t(r)];
    if (!j) continue;
    if (j->fed == j->prompt.size()) {
      if (!j->tokens.empty()) step_rows_.push_back(r), step_tokens_.push_back(j->tokens.back());
    } else {
      const int64_t n = std::min<int64_t>(gen_.chunk(), int64_t(j->prompt.size() - j->fed));
      chunks_.push_back({r, j->prompt.data() + j->fed, n});
    }
  }
  const int64_t n = int64_t(step_rows_.size()), V = model_.cfg.vocab_size;
  // the chunks that fit the forward's token budget beside the decoding rows, the
  // longest-admitted rows first (a chunk always fits: batch_tokens ≥ chunk + slots − 1)
  std::sort(chunks_.begin(), chunks_.end(), [&](const Generator::Chunk& x, const Generator::Chunk& y) {
    return admitted_[size_t(x.row)] < admitted_[size_t(y.row)];
  });
  int64_t used = n;
  size_t fit = 0;
  while (fit < chunks_.size() && used + chunks_[fit].n <= gen_.batch_tokens()) used += chunks_[fit++].n;
  chunks_.resize(fit);
  if (n == 0 && chunks_.empty()) return;
  // one forward: the chunks, then one token of each decoding row (Generator::mixed)
  const double t0 = now_seconds();
  const int64_t n_chunks = int64_t(chunks_.size());
  float* logits = gen_.mixed(chunks_.data(), n_chunks, step_tokens_.data(), step_rows_.data(), n);
  int64_t entries = n, drawn = n;
  for (const auto& ch : chunks_) entries += ch.n;
  count_routing(entries);
  // the decoding rows' draws in parallel (each its own stream); mixed() returned each
  // chunk's last logits, then theirs
  drawn_.resize(size_t(n));
  float* step_logits = logits + n_chunks * V;
#pragma omp parallel for if (n > 1)
  for (int64_t i = 0; i < n; i++) drawn_[size_t(i)] = draw(step_rows_[size_t(i)], step_logits + i * V);
  // a prompt fed to its end draws its first token from its last chunk's last logits
  first_.assign(size_t(n_chunks), -1);
  for (int64_t c = 0; c < n_chunks; c++) {
    const Generator::Chunk& ch = chunks_[size_t(c)];
    Job& j = *rows_[size_t(ch.row)];
    j.fed += size_t(ch.n);
    if (j.fed < j.prompt.size()) continue;
    drawn++;
    first_[size_t(c)] = draw(ch.row, logits + c * V);
  }
  // the counters before any job of this iteration is seen to end, so that whoever
  // waits for a job finds its iteration counted
  const double seconds = now_seconds() - t0;
  {
    std::lock_guard<std::mutex> lk(mutex_);
    stats_.forward_seconds += seconds;
    stats_.drawn_tokens += drawn;
    stats_.iterations++;
    if (n_chunks > 0) stats_.chunk_iterations++, stats_.chunk_seconds += seconds, stats_.chunk_drawn_tokens += drawn;
  }
  for (int64_t c = 0; c < n_chunks; c++)
    if (first_[size_t(c)] >= 0 && deliver(chunks_[size_t(c)].row, first_[size_t(c)])) release(chunks_[size_t(c)].row);
  for (int64_t i = 0; i < n; i++)
    if (deliver(step_rows_[size_t(i)], drawn_[size_t(i)])) release(step_rows_[size_t(i)]);
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mutex_);
      wake_.wait(lk, [&] { return stop_ || !queue_.empty() || stats_.busy_slots > 0; });
      if (stop_) return;
      admit();
    }
    try {
      iterate();
    } catch (const std::exception& e) {  // never expected (requests are checked to fit): end the
      for (int64_t r = 0; r < slots_; r++)  // running choices with "error" and keep serving
        if (rows_[size_t(r)]) {
          rows_[size_t(r)]->end(std::string("error: ") + e.what());
          release(r);
        }
    }
  }
}

}  // namespace fw
