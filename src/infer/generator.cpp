#include "infer/generator.h"

#include <algorithm>

#include "core/error.h"
#include "core/timer.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"

namespace fw {

Generator::Generator(const Model& model, int64_t capacity, int64_t chunk)
    : m_(model), cap_(capacity), chunk_(std::min(chunk, capacity)) {
  const ModelConfig& c = m_.cfg;
  FW_CHECK(capacity >= 2, "sample: context capacity ", capacity, " too small");
  dims_ = {1, chunk_, c.d_model, c.n_heads, c.hidden()};
  const size_t C = size_t(c.d_model), L = size_t(c.n_layers);
  kcache_.resize(L);
  vcache_.resize(L);
  auto layout = [&](const std::function<void(float*&, size_t)>& f) {
    for (size_t l = 0; l < L; l++) {
      f(kcache_[l], size_t(cap_) * C);
      f(vcache_[l], size_t(cap_) * C);
    }
    for_each_block_act(acts_, dims_, cap_, f);  // P holds (1,H,chunk,cap)
    for_each_block_scratch(scratch_, dims_, false, f);
    f(x_, size_t(chunk_) * C);
    f(y_, size_t(chunk_) * C);
    f(lnf_, C);
    f(rstd_, 1);
    f(logits_, size_t(c.vocab_size));
  };
  layout([&](float*&, size_t n) { arena_.reserve(n); });
  arena_.allocate();
  layout([&](float*& p, size_t n) { p = arena_.take(n); });
  pos_.resize(size_t(chunk_));
  rope_.build(cap_, c.head_dim());
}

float* Generator::feed(const int32_t* tokens, int64_t n) {
  FW_CHECK(n >= 1, "sample: nothing to feed");
  FW_CHECK(len_ + n <= cap_, "sample: context of ", len_ + n, " tokens exceeds the cache (", cap_, ")");
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model;
  for (int64_t i = 0; i < n; i++)
    FW_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "sample: token id ", tokens[i],
             " >= model.vocab_size = ", c.vocab_size);
  for (int64_t start = 0; start < n; start += chunk_) {
    const int64_t k = std::min(chunk_, n - start);
    BlockDims d = dims_;
    d.T = k;
    for (int64_t i = 0; i < k; i++) pos_[size_t(i)] = int32_t(len_ + i);
    embedding_forward(x_, tokens + start, m_.w.embedding, k, C);
    for (int64_t l = 0; l < c.n_layers; l++) {
      block_forward(d, m_.w.blocks[size_t(l)], acts_, scratch_, y_, x_, pos_.data(), rope_,
                    KvSlot{kcache_[size_t(l)], vcache_[size_t(l)], cap_, len_});
      std::swap(x_, y_);
    }
    len_ += k;
    if (start + k == n) {  // logits of the last token only
      rmsnorm_forward(lnf_, rstd_, x_ + (k - 1) * C, m_.w.final_norm, 1, C);
      matmul_forward(logits_, lnf_, m_.w.lm_head, 1, C, c.vocab_size);
    }
  }
  return logits_;
}

GenerateResult generate(Generator& gen, const std::vector<int32_t>& prompt, int64_t n_new,
                        const SamplingParams& sp, uint64_t seed,
                        const std::function<void(int32_t)>& on_token) {
  FW_CHECK(!prompt.empty(), "sample: the prompt is empty (give at least one token)");
  Rng rng(seed);
  GenerateResult r;
  const double t0 = now_seconds();
  std::vector<int32_t> context = prompt;
  const int64_t keep = gen.capacity() / 2;
  if (int64_t(context.size()) > gen.capacity())
    context.erase(context.begin(), context.end() - keep);
  gen.reset();
  float* logits = gen.feed(context.data(), int64_t(context.size()));
  for (int64_t i = 0; i < n_new; i++) {
    int32_t tok = sample_token(logits, gen.vocab_size(), sp, rng);
    r.tokens.push_back(tok);
    context.push_back(tok);
    if (on_token) on_token(tok);
    if (i + 1 == n_new) break;
    if (gen.length() == gen.capacity()) {  // slide the window
      context.erase(context.begin(), context.end() - keep);
      gen.reset();
      logits = gen.feed(context.data(), int64_t(context.size()));
    } else {
      logits = gen.feed(&tok, 1);
    }
  }
  r.seconds = now_seconds() - t0;
  return r;
}

}  // namespace fw
