#include "core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fw {

void require_readable_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  FW_CHECK(fs::exists(st), path, ": ", what, " not found");
  FW_CHECK(!fs::is_directory(st), path, ": is a folder, not ", std::string("aeiou").find(what[0]) != std::string::npos ? "an " : "a ", what);
  FW_CHECK(::access(path.c_str(), R_OK) == 0, path, ": cannot read ", what, " (permission denied)");
}

void require_writable_folder(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(path, ec);
  FW_CHECK(!ec, path, ": cannot create ", what, ": ", ec.message());
  FW_CHECK(fs::is_directory(path), path, ": is a file, not a folder (", what, ")");
  const std::string probe = (fs::path(path) / ".flopwise-write-check").string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  FW_CHECK(fd >= 0, path, ": ", what, " is not writable: ", std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string read_file(const std::string& path, const std::string& what) {
  require_readable_file(path, what);
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  FW_CHECK(in && ss, path, ": read error (", what, ")");
  return ss.str();
}

}  // namespace fw
