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

// The two halves, for files that must change together (a checkpoint's pair):
// write_temp writes and fsyncs PATH.tmp and returns its name (on failure it removes
// it and throws); commit_temp renames it over PATH and fsyncs the folder.
std::string write_temp(const std::string& path, const void* const* parts, const size_t* sizes, size_t nparts);
void commit_temp(const std::string& tmp, const std::string& path);

// PATH's temporary, as write_temp names it.
std::string temp_name(const std::string& path);

}  // namespace fw
