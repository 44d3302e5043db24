// Crash-safe file replacement: write a temporary file beside the target, fsync it,
// rename it over the target, fsync the folder. A reader sees the old file or the
// new one, never a torn mix.
#pragma once
#include <string>

namespace fw {

void write_file_atomic(const std::string& path, const std::string& bytes);

// The same, for a file made of several parts written one after another.
void write_file_atomic(const std::string& path, const void* const* parts, const size_t* sizes,
                       size_t nparts);

}  // namespace fw
