// Autoregressive decoding with a KV cache. Each layer keeps the rotated keys and
// the values of the tokens it processed (1,H,capacity,hd); feeding n new tokens runs
// the blocks on those n tokens only, attending to the cache.
// Mixture-of-Depths layers decide per token and causally: the router's σ(r) > 0.5
// (mod.causal router_bce or both) or the predictor's > 0.5 (mod.causal predictor).
// A skipped token computes nothing in that block and writes no key or value there,
// exactly as in training, where unselected tokens never enter the block.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/buffer.h"
#include "core/rng.h"
#include "infer/sampling.h"
#include "nn/model.h"

namespace fw {

class Generator {
 public:
  // capacity: cache rows (tokens of context); chunk: most tokens fed in one call.
  Generator(const Model& model, int64_t capacity, int64_t chunk = 64);
  // Bytes a Generator of this shape allocates (for the memory estimate).
  static size_t bytes(const ModelConfig& cfg, int64_t capacity, int64_t chunk = 64);

  // Appends tokens to the context; returns the logits (V) after the last one.
  // Fails if the cache would overflow (see generate() for sliding).
  float* feed(const int32_t* tokens, int64_t n);
  // After feed(): the logits (V) after token i of the last chunk fed (i < chunk).
  const float* logits(int64_t i) const { return b_.logits + i * m_.cfg.vocab_size; }

  // A routed layer's decision for one token: its router logit r, and whether the
  // token was processed (σ(r) > 0.5, or the predictor's > 0.5 with mod.causal = predictor).
  struct Decision {
    float router;
    bool processed;
  };
  // After feed(): decisions of routed layer l for the tokens of the last chunk fed.
  const std::vector<Decision>& decisions(int64_t l) const { return decisions_[size_t(l)]; }
  int64_t length() const { return len_; }
  int64_t capacity() const { return cap_; }
  int64_t vocab_size() const { return m_.cfg.vocab_size; }
  const Model& model() const { return m_; }
  int64_t chunk() const { return chunk_; }
  void reset();
  // Per layer: tokens in its KV cache (= tokens it processed since reset()).
  const std::vector<int64_t>& cache_lengths() const { return kv_len_; }

 private:
  struct Buffers {
    std::vector<float*> k, v;  // per layer (1,H,cap,hd): rotated keys, values
    BlockActs acts;            // one block's activations for (1, chunk); P is (1,H,chunk,cap)
    BlockScratch scratch;
    float *x, *y;              // (chunk, C) residual stream in and out of a block
    float *lnf, *rstd;         // (chunk, C), (chunk): final norm
    float* logits;             // (chunk, V)
    float *r, *pred_p;         // (chunk) router and predictor logits (MoD)
    float *pred_h;             // (chunk, P)
    float *xs, *ys;            // (chunk, C) the processed tokens in and out of a routed block
  };
  static void layout(Buffers& b, const ModelConfig& c, int64_t cap, int64_t chunk,
                     const std::function<void(float*&, size_t)>& f);
  // One routed block on k tokens at b_.x → b_.y: decide, gather, run, scatter.
  void routed_layer(int64_t l, int64_t k);

  const Model& m_;
  int64_t cap_, chunk_, len_ = 0, last_ = 0;  // last_: tokens in the last chunk fed
  Arena arena_;
  Buffers b_;
  std::vector<int32_t> pos_;      // (chunk) positions of the tokens being fed
  std::vector<int32_t> sel_pos_;  // (chunk) positions of those a routed block processes
  std::vector<int64_t> kv_len_;   // per layer
  std::vector<std::vector<Decision>> decisions_;  // per layer, per token of the chunk
  RopeTable rope_;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens
  double seconds;               // prefill + decode
};

// Feeds the prompt, then samples n_new tokens. When the cache is full, the context
// slides: the last capacity/2 tokens are fed again from position 0.
// on_token (may be null) sees each new token as it is sampled.
// on_feed (may be null) sees the generator after each feed of n tokens (the prompt,
// each new token, each re-fed window): for routing traces.
using FeedCallback = std::function<void(const int32_t* tokens, int64_t n, const Generator& gen)>;
GenerateResult generate(Generator& gen, const std::vector<int32_t>& prompt, int64_t n_new,
                        const SamplingParams& sp, uint64_t seed,
                        const std::function<void(int32_t)>& on_token = nullptr,
                        const FeedCallback& on_feed = nullptr);

}  // namespace fw
