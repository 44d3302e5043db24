// AdamW over the model's flat buffers: moments m, v, decay on matrices and
// embeddings, none on norm gains; clipping by global gradient norm.
//
// The optimizer may own a shard [lo, hi) of the parameters only (ZeRO-1 across
// ranks): its moments then cover that range and an update changes only those
// parameters. The whole range [0, num_params) is the usual single-owner case.
#pragma once
#include <cstdint>

#include "core/buffer.h"
#include "nn/model.h"
#include "config/config.h"

namespace fw {

struct AdamW {
  static constexpr float kEps = 1e-8f;
  Buffer m, v;               // (hi - lo): moments of parameters lo..hi-1
  int64_t lo = 0, hi = 0;    // the parameters this optimizer updates
  int64_t step = 0;          // updates done

  void init(size_t n) { init_shard(0, int64_t(n)); }
  void init_shard(int64_t first, int64_t end);
  // Keeps the moments of [first, end) of a whole-model optimizer (after loading one).
  void keep_shard(int64_t first, int64_t end);

  // One update with the model's gradients at learning rate lr, with t's betas, weight
  // decay and clipping (t.grad_clip <= 0: none); returns the gradient norm before
  // clipping. Whole-model optimizers only.
  double update(Model& model, const TrainConfig& t, double lr);
  // Updates parameters lo..hi-1, clipping by grad_norm: the norm of the whole gradient
  // (the caller sums the shards' squares across ranks).
  void apply(Model& model, const TrainConfig& t, double lr, double grad_norm);
};

}  // namespace fw
