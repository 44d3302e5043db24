// Helpers shared by the tests: temporary folders, running the flopwise binary.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>

namespace fw::test {

// A fresh empty folder under the build tree, named for the test.
inline std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(FLOPWISE_TEST_TMP) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

struct Run {
  int code;
  std::string out;  // stdout and stderr together
};

// Runs `flopwise ARGS` through the shell.
inline Run flopwise(const std::string& args) {
  std::string cmd = std::string(FLOPWISE_BIN) + " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  Run r{-1, ""};
  if (!f) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.out.append(buf, n);
  int status = pclose(f);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace fw::test
