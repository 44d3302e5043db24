// Learning rate: linear warmup to lr over `warmup` steps, then cosine decay to
// min_lr at the last step.
#pragma once
#include <cmath>
#include <cstdint>

#include "config/config.h"

namespace fw {

// step counts from 0 (the first optimizer step).
inline double learning_rate(const TrainConfig& t, int64_t step) {
  if (step < t.warmup) return t.lr * double(step + 1) / double(t.warmup);
  const double span = double(std::max<int64_t>(1, t.steps - t.warmup));
  const double progress = std::min(1.0, double(step - t.warmup) / span);
  return t.min_lr + 0.5 * (1.0 + std::cos(M_PI * progress)) * (t.lr - t.min_lr);
}

}  // namespace fw
