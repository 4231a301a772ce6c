// InodeTable: the inode numbers the kernel knows, following libfuse's lookup-count contract:
// every successful lookup (and every entry of readdirplus) adds one to an inode's count, and
// forget(ino, n) takes n away; an inode is dropped when its count reaches zero. The root
// (FUSE_ROOT_ID = 1) is never dropped. An inode names a path relative to the mount root and a
// type; if the object behind a path changes type, the path gets a new inode and the old one
// lives until the kernel forgets it. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "fs/metadata_cache.h"

namespace strata {

class InodeTable {
 public:
  static constexpr uint64_t kRootInode = 1;

  InodeTable();

  struct Node {
    std::string path;  // "" for the root
    EntryType type = EntryType::kFile;
    uint64_t lookups = 0;
  };

  // The inode of `path` with `type`, created if needed, with its lookup count raised by one.
  uint64_t Lookup(const std::string& path, EntryType type);

  // The inode of `path`, if it has one, without raising its count.
  std::optional<uint64_t> Find(const std::string& path);

  // Lowers the lookup count by `n`; drops the inode at zero (never the root).
  void Forget(uint64_t ino, uint64_t n);

  // The path was unlinked: later lookups of it get a new inode; the old one lives (for open
  // handles) until forgotten.
  void Unlink(const std::string& path);
  // Moves `from`, and for a directory everything under it, to `to`, as the kernel does with
  // its dentries on rename. An inode that was at `to` is unlinked.
  void Rename(const std::string& from, const std::string& to);

  std::optional<Node> Get(uint64_t ino);
  size_t size();

 private:
  Mutex mu_;  // a leaf lock
  std::unordered_map<uint64_t, Node> nodes_ GUARDED_BY(mu_);
  std::unordered_map<std::string, uint64_t> by_path_ GUARDED_BY(mu_);
  uint64_t next_ino_ GUARDED_BY(mu_) = kRootInode + 1;
};

}  // namespace strata
