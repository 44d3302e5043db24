// Wall-clock timing for progress lines and benchmarks.
#pragma once
#include <algorithm>
#include <chrono>

namespace fw {

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// The fastest of repeated runs of f: three untimed warm-up runs (threads spun up,
// clocks settled), then at least 10 runs and 0.4 s. On a shared machine a single
// short measurement can read far slow; the best of many is the machine's capability.
template <typename F>
double best_seconds(F&& f) {
  for (int rep = 0; rep < 3; rep++) f();
  double best = 1e30;
  const double start = now_seconds();
  for (int rep = 0; rep < 10 || now_seconds() - start < 0.4; rep++) {
    const double t0 = now_seconds();
    f();
    best = std::min(best, now_seconds() - t0);
  }
  return best;
}

}  // namespace fw
