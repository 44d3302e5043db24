// Thread count for OpenMP loops and oneDNN (which uses the same OpenMP runtime).
#pragma once

namespace fw {

void set_num_threads(int n);  // n <= 0: keep the runtime's default
int num_threads();

}  // namespace fw
