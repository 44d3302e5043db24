// AdamW with decoupled weight decay (Loshchilov & Hutter):
//   m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
//   p -= lr · ( m̂ / (√v̂ + ε) + wd · p ),  m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
#pragma once
#include <cstdint>

namespace fw {

struct AdamWHyper {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;       // t, starting at 1
  float grad_scale;   // gradient clipping factor applied to g
};

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h);

// Σ g² over n values in double (for the global gradient norm).
double sum_squares(const float* g, int64_t n);

}  // namespace fw
