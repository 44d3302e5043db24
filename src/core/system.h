// Facts about the machine the process runs on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace fw {

// MemAvailable from /proc/meminfo in bytes (0 if unknown).
uint64_t available_memory_bytes();

// Refuses (one line naming `what` and both sizes) when `bytes` would take more than 90%
// of the available memory; called before allocating, so a too-large config fails
// cleanly instead of being killed.
void check_memory(size_t bytes, const std::string& what);

// "AMD EPYC ..." from /proc/cpuinfo's model name ("unknown" if absent).
std::string cpu_model_name();

std::string human_bytes(double bytes);  // "1.5 GiB"

// The folder of the running program (from /proc/self/exe; "" if unknown): an
// installed flopwise finds its plugin and data relative to it.
std::string executable_dir();

}  // namespace fw
