#include "formats/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace fw {

static void write_all(int fd, const char* p, size_t n, const std::string& tmp) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(tmp, ": write failed: ", why);
    }
    p += w;
    n -= size_t(w);
  }
}

std::string temp_name(const std::string& path) { return path + ".tmp"; }

std::string write_temp(const std::string& path, const void* const* parts, const size_t* sizes, size_t nparts) {
  const std::string tmp = temp_name(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  FW_CHECK(fd >= 0, tmp, ": cannot create: ", std::strerror(errno));
  for (size_t i = 0; i < nparts; i++) write_all(fd, static_cast<const char*>(parts[i]), sizes[i], tmp);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(tmp, ": fsync/close failed: ", std::strerror(errno));
  }
  return tmp;
}

void commit_temp(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, ": rename failed: ", why);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const void* const* parts, const size_t* sizes,
                       size_t nparts) {
  commit_temp(write_temp(path, parts, sizes, nparts), path);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const void* parts[1] = {bytes.data()};
  size_t sizes[1] = {bytes.size()};
  write_file_atomic(path, parts, sizes, 1);
}

}  // namespace fw
