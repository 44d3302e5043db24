// Autoregressive decoding with a KV cache, for one sequence or a batch of them.
// Each layer keeps, per sequence (a "row"), the rotated keys and the values of the
// tokens it processed: caches (rows,H,capacity,hd). Feeding tokens runs the blocks on
// those tokens only, attending to their own row's cache.
// Mixture-of-Depths layers decide per token and causally: the router's logit r (mod.causal
// router_bce or both) or the predictor's (mod.causal predictor) above a threshold: the
// model's calibrated one when it has them (CausalCalibration), else 0 (σ > 0.5).
// A skipped token computes nothing in that block and writes no key or value there,
// exactly as in training, where unselected tokens never enter the block. So the rows
// of a batch hold different numbers of keys per layer, and a batched step runs each
// routed block on just the rows whose new token it processes.
// The weight matrices of the products (attention projections, dense MLPs, LM head) are
// packed once at construction for oneDNN (kernels/packed_matmul.h): a Generator sees
// the model's weights as they were when it was made.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/rng.h"
#include "infer/sampling.h"
#include "kernels/packed_matmul.h"
#include "nn/model.h"

namespace fw {

// How the caches hold the rotated keys and the values: fp32, the model's own numbers,
// or bf16, rounded as they are written (half the bytes; at 16 sequences of ~170
// tokens a step reads more cache than weights). With bf16, a token's result differs
// from fp32's by the rounding of what it attends to (kernels/kv_slot.h).
enum class KvCache { fp32, bf16 };
// "fp32" or "bf16"; a name that is neither fails naming `what` ("<what> 'x' is not ...").
KvCache kv_cache_named(const std::string& name, const std::string& what);
inline const char* kv_cache_name(KvCache kv) { return kv == KvCache::bf16 ? "bf16" : "fp32"; }

class Generator {
 public:
  // capacity: cache rows per sequence (tokens of context); chunk: most tokens one
  // feed() runs at once; rows: sequences decoded side by side; batch_tokens: most
  // tokens one mixed() runs (at least max(chunk, rows), the default); kv: the caches' precision.
  Generator(const Model& model, int64_t capacity, int64_t chunk = 64, int64_t rows = 1, int64_t batch_tokens = 0,
            KvCache kv = KvCache::fp32);
  // Bytes a Generator of this shape allocates (for the memory estimate).
  static size_t bytes(const ModelConfig& cfg, int64_t capacity, int64_t chunk = 64, int64_t rows = 1,
                      int64_t batch_tokens = 0, KvCache kv = KvCache::fp32);

  // Appends n tokens to the context of sequence `row` (prefill, chunk tokens at a
  // time); returns the logits (V) after the last one. Fails if the cache would overflow.
  float* feed(const int32_t* tokens, int64_t n, int64_t row = 0);
  // One new token for each of n distinct sequences at once (batched decode):
  // tokens[i] goes to sequence rows[i]. Returns the logits (n,V), entry i for rows[i].
  float* step(const int32_t* tokens, const int64_t* rows, int64_t n);
  // A prompt's chunk for mixed(): n tokens (1..chunk()) appended to sequence `row`.
  struct Chunk {
    int64_t row;
    const int32_t* tokens;
    int64_t n;
  };
  // Continuous batching's forward: prompt chunks of some sequences and one new token
  // (tokens[i]) for each of n other sequences (rows[i]), all in one pass. The norms,
  // products and MLPs run over every token at once, so the decoding rows ride along
  // with the prompts' products instead of costing a step of their own; each chunk and
  // the step attend to their own sequences' caches. A token's result is what feed() or
  // step() would give it. Entries: the chunks' tokens in order, then the steps'.
  // Returns the logits (n_chunks + n, V) of each chunk's last token, then of each
  // step's. Every sequence at most once; at most batch_tokens() tokens in all.
  float* mixed(const Chunk* chunks, int64_t n_chunks, const int32_t* tokens, const int64_t* rows, int64_t n);

  // The last feed() or step() ran "entries": the tokens of its last chunk (feed) or
  // one token per listed row (step); their logits (V). (After mixed(), the logits are
  // those it returned, and decisions() covers all its entries.)
  const float* logits(int64_t entry) const { return b_.logits + entry * m_.cfg.vocab_size; }
  // A routed layer's decision for one token: its router logit r, the logit the rule
  // compared with the layer's threshold (r, or the predictor's with mod.causal =
  // predictor), and whether the token was processed.
  struct Decision {
    float router;
    float decider;
    bool processed;
  };
  // The thresholds routed layers decide by, per layer (uncalibrated: all 0; the
  // constructor sets the model's, Model::causal_thresholds). Set between sequences,
  // not within one.
  void set_thresholds(const std::vector<float>& per_layer);
  // Decisions of routed layer l, per entry of the last feed(), step() or mixed().
  const std::vector<Decision>& decisions(int64_t l) const { return decisions_[size_t(l)]; }

  int64_t length(int64_t row = 0) const { return len_[size_t(row)]; }
  // Tokens in layer l's cache of a sequence (= tokens that layer processed since its reset).
  int64_t cache_length(int64_t l, int64_t row = 0) const { return kv_len_[size_t(row * m_.cfg.n_layers + l)]; }
  int64_t capacity() const { return cap_; }
  int64_t rows() const { return rows_; }
  int64_t chunk() const { return chunk_; }
  int64_t batch_tokens() const { return tokens_; }
  int64_t vocab_size() const { return m_.cfg.vocab_size; }
  const Model& model() const { return m_; }
  // The activations of the last block call of the last feed(), step() or mixed()
  // (tests use it to read an FFF's tree paths).
  const BlockActs& last_block_acts() const { return b_.acts; }
  void reset();               // every sequence
  void reset_row(int64_t row);

 private:
  struct Buffers {
    std::vector<float*> k, v;  // per layer (rows,H,cap,hd): rotated keys, values (bf16 caches: half as many floats, as bf16)
    BlockActs acts;            // one block's activations for N = batch_tokens() tokens; P is (N,H,cap)
    BlockScratch scratch;
    float *x, *y;              // (N, C) residual stream in and out of a block
    float *lnf, *rstd;         // (N, C), (N): final norm
    float* logits;             // (N, V)
    float *r, *pred_p;         // (N) router and predictor logits (MoD)
    float *pred_h;             // (N, P)
    float *xs, *ys;            // (N, C) the processed tokens in and out of a routed block
  };
  static void layout(Buffers& b, const ModelConfig& c, int64_t cap, int64_t tokens, int64_t rows, KvCache kv,
                     const std::function<void(float*&, size_t)>& f);
  // New tokens of B sequences × T each (b-major) that attend together: B = 1 (a
  // prompt's chunk) or T = 1 (one token of each of B sequences). A forward runs
  // several spans' tokens one span after another.
  struct Span {
    const int64_t* rows;
    int64_t B, T;
  };
  // Runs all layers on the spans' tokens (S spans, tokens in span order); the logits
  // of every token, or of the n_out entries listed in outputs.
  void forward(const Span* spans, int64_t S, const int32_t* tokens, const int64_t* outputs = nullptr,
               int64_t n_out = 0);
  // One routed block on those tokens at b_.x → b_.y: decide, gather, run, scatter.
  void routed_layer(int64_t l, const Span* spans, int64_t S);
  // A block on the spans' tokens whose inputs are at x (positions pos), appending to
  // layer l's caches of their sequences.
  void run_block(int64_t l, const Span* spans, int64_t S, float* y, const float* x, const int32_t* pos);
  void check_row(int64_t row, int64_t n);  // step() and mixed(): in the batch, listed once, room for n

  const Model& m_;
  std::vector<PackedMatrix> packed_;     // the packed copies w_ points to
  ModelWeights w_;                       // m_'s weights, with the packed copies set
  int64_t cap_, chunk_, rows_, tokens_;  // tokens_: most tokens one forward() runs
  KvCache kv_;
  Arena arena_;
  Buffers b_;
  std::vector<int64_t> len_;             // (rows) context length
  std::vector<char> seen_;               // (rows) step(): rows listed so far
  std::vector<int64_t> kv_len_;          // (rows, L) tokens in each layer's cache
  std::vector<int32_t> pos_, sel_pos_;   // (tokens_) positions of the entries / of those a routed block processes
  std::vector<int64_t> sel_rows_, past_; // (tokens_) per batch row of a block call: sequence, cached tokens
  std::vector<int64_t> sel_entry_;       // (tokens_) entry of each processed token
  std::vector<Span> sel_spans_;          // (tokens_) the spans of those a routed block processes
  std::vector<AttentionGroup> groups_;   // (tokens_) run_block's attention groups
  std::vector<int32_t> mixed_tokens_;    // (tokens_) mixed()'s tokens, chunks then steps
  std::vector<Span> mixed_spans_;        // (rows_ + 1) and its spans,
  std::vector<int64_t> mixed_out_;       // (rows_) the entries it returns logits of
  std::vector<uint8_t> processed_;       // (tokens_) a routed layer's causal decisions
  std::vector<std::vector<Decision>> decisions_;  // per layer, per entry
  std::vector<float> threshold_;                 // (L) causal_route's threshold per layer
  RopeTable rope_;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens
  double seconds;               // prefill + decode
};
struct BatchGenerateResult {
  std::vector<std::vector<int32_t>> tokens;  // per prompt, the new tokens
  double seconds;                            // prefill + decode of all
};

// on_token (may be null) sees each new token of sequence `row` as it is sampled.
// on_feed (may be null) sees the generator after n tokens were fed to sequence `row`
// (a prompt chunk, a new token, a re-fed window); their decisions are the entries
// entry..entry+n-1 of gen.decisions(l): for routing traces.
using TokenCallback = std::function<void(int64_t row, int32_t token)>;
using FeedCallback = std::function<void(int64_t row, const int32_t* tokens, int64_t n, int64_t entry,
                                        const Generator& gen)>;

// Sampling after several prompts one position at a time, for callers that consume each
// token before the next is computed (Python's generate steps it on the caller's
// thread). Each prompt has its own row; next() samples the next token of every prompt:
// the first call feeds the prompts, each later one decodes all rows in one batched step.
// Row i samples with its own Rng(seed + i). When a row's cache is full, its context
// slides: its last capacity/2 tokens are fed again from position 0.
class BatchSampler {
 public:
  BatchSampler(Generator& gen, const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp,
               uint64_t seed, const FeedCallback& on_feed = nullptr);
  // The next token of each prompt (in prompt order).
  const std::vector<int32_t>& next();

 private:
  int32_t draw(int64_t row, float* logits);  // (sampling may modify the logits)
  void fill_and_sample(int64_t row);         // (re)fills a row's cache with its context, samples its next token

  Generator& gen_;
  SamplingParams sp_;
  FeedCallback on_feed_;
  std::vector<std::vector<int32_t>> context_;  // per row: prompt and tokens so far (the window after a slide)
  std::vector<Rng> rng_;
  std::vector<int32_t> last_;                  // per row: its newest token
  std::vector<int64_t> rows_;                  // a step's rows and their tokens
  std::vector<int32_t> toks_;
  bool started_ = false;
};

// Feeds each prompt into its own row, then samples n_new tokens per prompt, decoding
// all rows in one batched step per token (a BatchSampler run n_new times). Row i
// samples with its own Rng(seed + i), so a prompt's continuation is the same alone
// (generate) or in any batch position i with seed - i. When a row's cache is full, its
// context slides: its last capacity/2 tokens are fed again from position 0.
BatchGenerateResult generate_batch(Generator& gen, const std::vector<std::vector<int32_t>>& prompts,
                                   int64_t n_new, const SamplingParams& sp, uint64_t seed,
                                   const TokenCallback& on_token = nullptr,
                                   const FeedCallback& on_feed = nullptr);
// One prompt in row 0.
GenerateResult generate(Generator& gen, const std::vector<int32_t>& prompt, int64_t n_new,
                        const SamplingParams& sp, uint64_t seed,
                        const std::function<void(int32_t)>& on_token = nullptr,
                        const FeedCallback& on_feed = nullptr);

}  // namespace fw
