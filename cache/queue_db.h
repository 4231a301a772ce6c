// QueueDb: the SQLite database that makes the upload queue durable. One row per queued
// operation (QueueRecord), the parts of multipart uploads the store has acknowledged, and the
// next sequence number to hand out (so numbers are never reused, even after the newest entries
// finished).
//
// Durable means: the database runs in WAL mode with synchronous=FULL, so the WAL is fsynced at
// every commit and a method that returns OK has its change on disk; it survives kill -9 of the
// process and a power loss. Every method is one transaction: all of it or nothing is stored.
//
// A database that is not ours or fails PRAGMA quick_check makes Open fail with kCorrupt. Unlike
// the chunk index it cannot be rebuilt from anything else, so the caller must not replace it
// silently: acknowledged writes would be lost.
//
// Thread-safe: one connection serialized by an internal mutex that is held across the disk I/O
// of each call. Callers must not hold a lock that other threads wait on for memory-only work
// while calling it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/object_store.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/queue_record.h"
#include "cache/sqlite_util.h"

namespace strata {

class QueueDb {
 public:
  // Changes committed together.
  struct Batch {
    std::vector<QueueRecord> inserts{};  // new rows; their parts are not stored
    std::vector<uint64_t> removes{};     // rows to delete, with their parts; unknown ones ignored
    uint64_t next_seq = 0;               // stored when non-zero
  };

  struct Contents {
    std::vector<QueueRecord> records{};  // ascending seq, parts filled in
    uint64_t next_seq = 0;               // 0 when never stored
  };

  // Opens the database at `path`, creating an empty one when the file is missing or empty.
  // kCorrupt when the file is not a queue database of this version or fails quick_check.
  static Result<std::unique_ptr<QueueDb>> Open(const std::string& path);

  ~QueueDb();
  QueueDb(const QueueDb&) = delete;
  QueueDb& operator=(const QueueDb&) = delete;

  Result<Contents> Load();

  Status Apply(const Batch& batch);

  // Stores the outcome of a failed attempt: the state (pending to retry, or dead), the attempt
  // count and the error. Unknown seq: OK, nothing changes.
  Status SetOutcome(uint64_t seq, QueueState state, uint32_t attempts, const Status& error);

  // Puts every row of `seqs` back to pending with zero attempts (the last error is kept).
  Status Requeue(const std::vector<uint64_t>& seqs);

  // Sets the multipart upload of row `seq` (empty id: none) and forgets its stored parts.
  Status SetUpload(uint64_t seq, const std::string& upload_id, uint64_t part_size);

  // Adds (or replaces, by number) one acknowledged part of row `seq`'s upload.
  Status AddPart(uint64_t seq, const PartInfo& part);

  // Write transactions committed since Open (for tests).
  uint64_t commits();

 private:
  explicit QueueDb(sqlite::Database db);

  Status Prepare() REQUIRES(mu_);
  Status InsertRow(const QueueRecord& record) REQUIRES(mu_);
  Status RemoveRow(uint64_t seq) REQUIRES(mu_);

  Mutex mu_;
  sqlite::Database db_ GUARDED_BY(mu_);  // declared first: closed after the statements
  sqlite::Statement insert_ GUARDED_BY(mu_);
  sqlite::Statement remove_entry_ GUARDED_BY(mu_);
  sqlite::Statement remove_parts_ GUARDED_BY(mu_);
  sqlite::Statement set_outcome_ GUARDED_BY(mu_);
  sqlite::Statement requeue_ GUARDED_BY(mu_);
  sqlite::Statement set_upload_ GUARDED_BY(mu_);
  sqlite::Statement add_part_ GUARDED_BY(mu_);
  sqlite::Statement set_next_seq_ GUARDED_BY(mu_);
};

}  // namespace strata
