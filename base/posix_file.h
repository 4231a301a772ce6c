// Small POSIX helpers shared by everything that writes files durably (chunk files, the local
// store, staging, the upload queue): an owning file descriptor and errno-to-Status mapping.
#pragma once

#include <unistd.h>

#include <string>

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

// Takes an exclusive flock on `dir`/LOCK so that one user at a time works in `dir` (a disk
// cache, a staging area, an upload queue), waiting up to `wait` for a previous holder (a daemon
// still draining after its unmount) to let go. Returns the descriptor that holds the lock; kIo
// "DIR is already in use by another USER" when it stays taken.
Result<int> LockDirectory(const std::string& dir, const std::string& user, Clock& clock,
                          Clock::Duration wait);

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
