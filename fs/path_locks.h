// PathLocks: locks on names of the tree, the way a local filesystem locks the inodes a change
// touches, instead of one lock for every namespace change of the mount. A change locks the
// paths it decides on (the parent directories and the entries it creates, removes or moves) for
// as long as it decides and queues, so that two changes of the same names never interleave,
// while changes of other names proceed. A directory rename locks its whole subtree: it
// conflicts with any lock on a path below it.
//
// All paths of one Lock call are taken together (or none, while waiting), so no order between
// calls is needed and they cannot deadlock with each other. A thread must not call Lock while
// it holds a Guard (that could deadlock). Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/thread_annotations.h"

namespace strata {

class PathLocks {
 public:
  struct Request {
    std::string path;      // "" is the root
    bool subtree = false;  // also every path below it
  };

  // Holds the paths of one Lock call until it is destroyed (or Unlock).
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& other) noexcept;
    Guard& operator=(Guard&& other) noexcept;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { Unlock(); }
    void Unlock();

   private:
    friend class PathLocks;
    Guard(PathLocks* owner, uint64_t id) : owner_(owner), id_(id) {}
    PathLocks* owner_ = nullptr;
    uint64_t id_ = 0;
  };

  // Waits until none of `requests` conflicts with a held lock, then holds them all. Duplicate
  // paths are fine.
  Guard Lock(std::vector<Request> requests);

  // Paths held now (for tests).
  size_t held() const;

 private:
  struct Held {
    uint64_t id;
    Request request;
  };
  static bool Conflicts(const Request& a, const Request& b);
  bool Free(const std::vector<Request>& requests) const REQUIRES(mu_);
  void Release(uint64_t id);

  mutable Mutex mu_;
  CondVar released_;
  std::vector<Held> held_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
};

}  // namespace strata
