#include "fs/path_locks.h"

#include <algorithm>
#include <utility>

#include "fs/paths.h"

namespace strata {

PathLocks::Guard::Guard(Guard&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}

PathLocks::Guard& PathLocks::Guard::operator=(Guard&& other) noexcept {
  if (this != &other) {
    Unlock();
    owner_ = std::exchange(other.owner_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

void PathLocks::Guard::Unlock() {
  if (owner_ != nullptr) std::exchange(owner_, nullptr)->Release(id_);
}

bool PathLocks::Conflicts(const Request& a, const Request& b) {
  if (a.path == b.path) return true;
  return (a.subtree && PathWithin(b.path, a.path)) || (b.subtree && PathWithin(a.path, b.path));
}

bool PathLocks::Free(const std::vector<Request>& requests) const {
  for (const Held& held : held_) {
    for (const Request& request : requests) {
      if (Conflicts(held.request, request)) return false;
    }
  }
  return true;
}

PathLocks::Guard PathLocks::Lock(std::vector<Request> requests) {
  MutexLock lock(mu_);
  released_.Wait(lock, [&]() REQUIRES(mu_) { return Free(requests); });
  const uint64_t id = next_id_++;
  for (Request& request : requests) held_.push_back(Held{id, std::move(request)});
  return Guard(this, id);
}

void PathLocks::Release(uint64_t id) {
  {
    MutexLock lock(mu_);
    std::erase_if(held_, [id](const Held& held) { return held.id == id; });
  }
  released_.NotifyAll();
}

size_t PathLocks::held() const {
  MutexLock lock(mu_);
  return held_.size();
}

}  // namespace strata
