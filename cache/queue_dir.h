// QueueDir: the upload queue's directory on local disk and the staged files it owns.
//
// Layout (directories 0700; data files keep the mode their writer gave them):
//   <root>/LOCK        flock held while a queue has the directory open: one queue per directory
//   <root>/queue.db    QueueDb (with its -wal and -shm files)
//   <root>/data/<name> staged files adopted by the queue; names are unique per process run
//
// Thread-safe: holds only constants and the lock descriptor. Callers make sure that no two
// threads work on the same data file at once.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "base/clock.h"
#include "base/posix_file.h"
#include "base/status.h"

namespace strata {

class QueueDir {
 public:
  // Creates `root` (and its parents) and root/data with mode 0700, tightens an existing root to
  // 0700, and takes the exclusive lock. kIo when another queue holds the directory.
  // `lock_wait`: how long to wait for another user of root (a daemon still draining) to let go.
  static Result<std::unique_ptr<QueueDir>> Open(const std::string& root,
                                                Clock::Duration lock_wait = {});

  ~QueueDir();  // releases the lock
  QueueDir(const QueueDir&) = delete;
  QueueDir& operator=(const QueueDir&) = delete;

  const std::string& root() const { return root_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string DbPath() const { return root_ + "/queue.db"; }
  std::string DataPath(const std::string& name) const { return data_dir_ + "/" + name; }

  // Checks that `staged_path` is a regular file of exactly `size` bytes (kInvalidArgument
  // otherwise) and fsyncs it, which costs little when its writer already did.
  static Status CheckStaged(const std::string& staged_path, uint64_t size);

  // Moves `staged_path` to data/<name> and fsyncs data/. Durable at return: the file's data and
  // its entry in data/ survive a power loss. kInvalidArgument when `staged_path` is on another
  // filesystem (rename fails with EXDEV): staging must live on the queue's filesystem.
  Status Adopt(const std::string& staged_path, const std::string& name);

  // Moves data/<name> back to `staged_path`: undoes Adopt when the enqueue failed afterwards.
  Status GiveBack(const std::string& name, const std::string& staged_path);

  // Removes data/<name>; a missing file is fine, other failures are logged.
  void Remove(const std::string& name);

  // The size of data/<name>; kNotFound when it is missing.
  Result<uint64_t> SizeOf(const std::string& name) const;

  // Removes every file under data/ whose name is not in `keep`. Returns how many it removed.
  uint64_t RemoveUnreferenced(const std::set<std::string>& keep);

 private:
  QueueDir(std::string root, DirLock lock);

  const std::string root_;
  const std::string data_dir_;
  const DirLock dir_lock_;  // held for the lifetime of this object
};

}  // namespace strata
