// OpenWrite and OpenWriteTable: the paths being written through this mount. An OpenWrite is the
// state shared by every handle of one path (its staged data, attributes, what was committed
// last); the table maps paths to them. MergedView reads the table to lay open writes over S3 and
// the queue; OpenWrites changes it. Thread-safe: the table has its own lock, each OpenWrite its
// own (see the lock order in filesystem.h).
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/mutex.h"
#include "base/posix_file.h"
#include "base/thread_annotations.h"
#include "cache/staged_file.h"
#include "fs/metadata_cache.h"

namespace strata {

// The Content-Type of a directory marker object (as s3fs writes it).
inline constexpr const char* kDirectoryContentType = "application/x-directory";

// A SourceReader over a local file (a pending upload's data, or what a commit handed over).
SourceReader LocalSource(std::shared_ptr<Fd> fd);

struct OpenWrite {
  // Held shared by calls that use `staged`, exclusively by a commit (which detaches it).
  std::shared_mutex commit_mu;
  Mutex mu;  // guards the fields below; held for Create of `staged`, not across I/O
  std::string path GUARDED_BY(mu);
  EntryInfo info GUARDED_BY(mu);  // type, mode, uid, gid, mtime; size when `staged` is null
  std::shared_ptr<StagedFile> staged GUARDED_BY(mu);
  // What was committed last, kept open to restage from without asking the queue or S3.
  std::shared_ptr<Fd> base GUARDED_BY(mu);
  bool dirty GUARDED_BY(mu) = false;     // changes not committed
  bool unlinked GUARDED_BY(mu) = false;  // its name is gone: nothing more is committed
  int writers GUARDED_BY(mu) = 0;        // handles open for writing

  // Its attributes now (the staged size when staged); nullopt when unlinked.
  std::optional<EntryInfo> Current();
};

class OpenWriteTable {
 public:
  std::shared_ptr<OpenWrite> Find(const std::string& path);
  // Registers `write` under `path`, replacing what was there.
  void Put(const std::string& path, std::shared_ptr<OpenWrite> write);
  // Registers `write` under `path` unless a write is there already; returns the one registered.
  std::shared_ptr<OpenWrite> PutIfAbsent(const std::string& path, std::shared_ptr<OpenWrite> write);
  // Forgets `path` if it still maps to `write` (any write when null).
  void Erase(const std::string& path, const std::shared_ptr<OpenWrite>& write = nullptr);
  // The writes whose path is `dir`'s child, or within `dir` (recursive).
  std::vector<std::shared_ptr<OpenWrite>> Children(const std::string& dir);
  std::vector<std::shared_ptr<OpenWrite>> Within(const std::string& dir);
  // Moves `write` from its path to `to` (it must be registered under its own path).
  void Move(const std::shared_ptr<OpenWrite>& write, const std::string& to);
  // `write` unlinked: marked so (nothing more is committed) and forgotten.
  void Unlink(const std::shared_ptr<OpenWrite>& write);
  // Forgets `write` when no handle writes it and nothing is left to commit.
  void EraseIfIdle(const std::shared_ptr<OpenWrite>& write);
  size_t size();

 private:
  // Lock order: taken before OpenWrite::mu.
  Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<OpenWrite>> writes_ GUARDED_BY(mu_);
};

}  // namespace strata
