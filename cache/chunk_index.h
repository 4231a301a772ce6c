// ChunkIndex: the SQLite index of the disk tier, one row per chunk file: its id (file name),
// full ChunkKey, data size, data checksum and last access tick. It is bookkeeping only: the
// chunk files are the truth and the index can always be rebuilt from them.
//
// The database runs in WAL mode with synchronous=NORMAL: a commit is durable against a process
// crash at once and against a power loss at the next checkpoint; losing the newest rows is
// harmless because Open re-indexes chunk files that have no row.
//
// Thread-safe: one connection, serialized by an internal mutex; every method is one statement
// or one transaction. Every method does disk I/O, so callers must not hold a lock that other
// threads wait on for memory-only work while calling it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/chunk_key.h"
#include "cache/sqlite_util.h"

namespace strata {

class ChunkIndex {
 public:
  struct Row {
    std::string id;  // key.Id()
    ChunkKey key;
    uint64_t size = 0;      // data bytes
    uint64_t checksum = 0;  // ChunkFile::Header::data_checksum (a digest of the block checksums)
    int64_t last_access = 0;
  };

  // Opens the index at `path`, creating an empty one if the file is missing or empty.
  // kCorrupt when the file is not a usable index (not SQLite, PRAGMA quick_check fails, another
  // schema or version): the caller moves it aside and rebuilds. Other kinds for I/O failures.
  static Result<std::unique_ptr<ChunkIndex>> Open(const std::string& path);

  ~ChunkIndex();
  ChunkIndex(const ChunkIndex&) = delete;
  ChunkIndex& operator=(const ChunkIndex&) = delete;

  // Every row, ordered by last_access then id (least recently used first).
  Result<std::vector<Row>> LoadAll();

  // Inserts (or replaces, by id) `rows` in one transaction.
  Status Insert(const std::vector<Row>& rows);

  // Removes the rows of `ids` in one transaction; unknown ids are ignored.
  Status Remove(const std::vector<std::string>& ids);

  // Raises last_access of each (id, tick) in one transaction; never lowers it, so concurrent
  // flushes may commit in any order. Unknown ids are ignored.
  Status UpdateAccess(const std::vector<std::pair<std::string, int64_t>>& ticks);

  // Write transactions committed since Open (for tests and stats).
  uint64_t write_transactions();

 private:
  explicit ChunkIndex(sqlite::Database db);

  Status Prepare() REQUIRES(mu_);

  Mutex mu_;
  sqlite::Database db_ GUARDED_BY(mu_);  // declared first: closed after the statements
  sqlite::Statement insert_ GUARDED_BY(mu_);
  sqlite::Statement remove_ GUARDED_BY(mu_);
  sqlite::Statement touch_ GUARDED_BY(mu_);
};

}  // namespace strata
