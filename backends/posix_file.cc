#include "backends/posix_file.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace strata {

Status ErrnoStatus(int err, const std::string& what) {
  std::string message = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::NoSpace(std::move(message));
  if (err == ENOENT) return Status::NotFound(std::move(message));
  return Status::Io(std::move(message));
}

Status FsyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open " + dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync " + dir);
  return Status::Ok();
}

Status Fd::Close(const std::string& path) {
  const int fd = fd_;
  fd_ = -1;
  if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus(errno, "close " + path);
  return Status::Ok();
}

}  // namespace strata
