// Thread count for OpenMP loops and oneDNN (which uses the same OpenMP runtime).
#pragma once
#include <cstdint>

namespace fw {

// Element-wise loops over fewer floats than this run on one thread: starting and
// joining an OpenMP team costs ~3 µs here (2 cores), what one core needs for some
// 10^4 simple float operations. A decoding step (a few rows) falls below it; a
// training batch is far above.
constexpr int64_t kParallelFloats = int64_t(1) << 14;

void set_num_threads(int n);  // n <= 0: keep the runtime's default
int num_threads();

}  // namespace fw
