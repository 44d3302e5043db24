// Shared by the fuzz targets: the readers under test take a path, so each input is
// written to a file of this process's own, and only fw::Error (one clear line) counts
// as a proper refusal. Anything else escaping a reader (another exception, a crash, a
// sanitizer report) is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fw::fuzz {

// Writes data to $TMPDIR/flopwise-fuzz-<pid>/<name> and returns its path.
inline std::string input_file(const uint8_t* data, size_t size, const std::string& name) {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("flopwise-fuzz-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace fw::fuzz
