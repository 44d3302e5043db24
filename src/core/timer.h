// Wall-clock timing for progress lines and benchmarks.
#pragma once
#include <chrono>

namespace fw {

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace fw
