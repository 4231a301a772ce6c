// Small POSIX helpers shared by everything that writes files durably (chunk files, the local
// store, staging, the upload queue): an owning file descriptor, errno-to-Status mapping, full
// reads and writes, free space and directory locks.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "base/clock.h"
#include "base/status.h"

namespace strata {

// ENOSPC/EDQUOT -> kNoSpace, ENOENT -> kNotFound, anything else -> kIo; the message names `what`.
Status ErrnoStatus(int err, const std::string& what);

// fsync of a directory, so that the entries created or renamed in it survive a crash.
Status FsyncDir(const std::string& dir);

// Creates `dir` and its parents with mode 0700 (fsyncing the parent of a new `dir`), or tightens
// an existing directory to 0700. kInvalidArgument when `dir` exists but is not a directory.
Status MakePrivateDir(const std::string& dir);

// Reads out.size() bytes at `offset` with pread, resuming after EINTR and short reads. Returns
// how many bytes were read: out.size(), or fewer only when the file ends first (what a short
// file means is the caller's to say). A failing pread -> ErrnoStatus(errno, "read " + path).
Result<size_t> ReadFull(int fd, uint64_t offset, std::span<char> out, const std::string& path);

// Writes all of `data` at `offset` with pwrite, resuming after EINTR and short writes. A failing
// pwrite -> ErrnoStatus(errno, "write " + path); a pwrite that writes nothing -> kIo.
Status WriteFull(int fd, uint64_t offset, std::span<const char> data, const std::string& path);

// Bytes an unprivileged user may still write on the filesystem holding `dir` (statvfs f_bavail *
// f_frsize). When statvfs fails, logs a warning that starts with `who` and returns UINT64_MAX:
// not knowing is no reason to refuse writes; a write on a full disk fails on its own.
uint64_t FreeSpaceOrUnlimited(const std::string& dir, std::string_view who);

// An exclusive flock on `dir`/LOCK, so that one user at a time works in `dir` (a disk cache, a
// staging area, an upload queue). Released (the descriptor closed) when the DirLock is destroyed.
// Movable, not copyable; not thread-safe.
class DirLock {
 public:
  // Takes the lock, waiting up to `wait` for a previous holder (a daemon still draining after its
  // unmount) to let go. kIo "DIR is already in use by another USER" when it stays taken.
  static Result<DirLock> Acquire(const std::string& dir, const std::string& user, Clock& clock,
                                 Clock::Duration wait);

  DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();

  bool held() const { return fd_ >= 0; }

 private:
  explicit DirLock(int fd) : fd_(fd) {}

  int fd_;
};

// Owns a file descriptor: closed when it goes out of scope. Not thread-safe.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Closes now, reporting the error close() may carry for a file just written.
  Status Close(const std::string& path);

 private:
  int fd_;
};

}  // namespace strata
