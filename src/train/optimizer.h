// AdamW over the model's flat buffers: moments m, v (num_params each), decay on
// matrices and embeddings, none on norm gains; clipping by global gradient norm.
#pragma once
#include <cstdint>

#include "core/buffer.h"
#include "nn/model.h"

namespace fw {

struct AdamW {
  static constexpr float kBeta1 = 0.9f, kBeta2 = 0.95f, kEps = 1e-8f;
  Buffer m, v;       // (num_params)
  int64_t step = 0;  // updates done

  void init(size_t n) {
    m.resize(n);
    v.resize(n);
    step = 0;
  }
  // Applies one update with the model's gradients; returns the gradient norm
  // before clipping (grad_clip <= 0: no clipping).
  double update(Model& model, double lr, double weight_decay, double grad_clip);
};

}  // namespace fw
