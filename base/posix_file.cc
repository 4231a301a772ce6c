#include "base/posix_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

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

Status MakePrivateDir(const std::string& dir) {
  const std::filesystem::path path(dir);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return Status::Io("create " + path.parent_path().string() + ": " + ec.message());
  if (::mkdir(dir.c_str(), 0700) == 0) {
    STRATA_RETURN_IF_ERROR(FsyncDir(path.has_parent_path() ? path.parent_path().string() : "."));
  } else if (errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir " + dir);
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir + " is not a directory");
  const mode_t mode = st.st_mode & 07777;
  if (mode != 0700) {
    if (::chmod(dir.c_str(), 0700) != 0) return ErrnoStatus(errno, "chmod " + dir);
    spdlog::info("{}: permissions changed from {:04o} to 0700", dir, mode);
  }
  return Status::Ok();
}

Result<size_t> ReadFull(int fd, uint64_t offset, std::span<char> out, const std::string& path) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read " + path);
    }
    if (n == 0) break;  // end of file
    done += static_cast<size_t>(n);
  }
  return done;
}

Status WriteFull(int fd, uint64_t offset, std::span<const char> data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write " + path);
    }
    if (n == 0) return Status::Io("write " + path + ": no progress");
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

uint64_t FreeSpaceOrUnlimited(const std::string& dir, std::string_view who) {
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) {
    spdlog::warn("{}: statvfs {}: {}", who, dir, std::strerror(errno));
    return std::numeric_limits<uint64_t>::max();
  }
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

Result<DirLock> DirLock::Acquire(const std::string& dir, const std::string& user, Clock& clock,
                                 Clock::Duration wait) {
  const std::string lock_path = dir + "/LOCK";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "open " + lock_path);
  const Clock::MonoTime deadline = clock.Now() + wait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK && clock.Now() < deadline) {
      clock.SleepFor(std::chrono::milliseconds(50));
      continue;
    }
    ::close(fd);
    if (err == EWOULDBLOCK) return Status::Io(dir + " is already in use by another " + user);
    return ErrnoStatus(err, "flock " + lock_path);
  }
  return DirLock(fd);
}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status Fd::Close(const std::string& path) {
  const int fd = fd_;
  fd_ = -1;
  if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus(errno, "close " + path);
  return Status::Ok();
}

}  // namespace strata
