// Checked errors. Every user-facing failure is an fw::Error whose message is one
// line naming the file or field and the problem; the CLI prints it and exits 1.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace fw {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str(args...));
}

}  // namespace fw

// FW_CHECK(cond, "message parts", ...): throws fw::Error when cond is false.
#define FW_CHECK(cond, ...)            \
  do {                                 \
    if (!(cond)) ::fw::fail(__VA_ARGS__); \
  } while (0)
