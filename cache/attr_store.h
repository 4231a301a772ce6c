// AttrStore: a persistent record of what strata learned (by HEAD or GET) or wrote (by PUT or
// COPY) about each S3 object version: its user metadata, content type and, for a symlink, its
// target. After a restart, listings (which carry no user metadata) can show mode, uid, gid,
// times, file type and symlink targets without one HEAD request.
//
// It is a cache, not a store of record: every answer is checked against the ETag the caller
// has from S3, and losing the file costs only speed. So no failure reaches the caller. A file
// that is corrupt, unreadable or of another schema is moved aside and rebuilt empty at Open;
// corruption found later rebuilds it the same way; disk full and I/O errors make the call a
// miss (or a write that did not happen), are counted and are logged at most once a minute.
//
// One row per key, holding the newest version written. The database runs in WAL mode with
// synchronous=NORMAL: a write survives a process crash at once and a power loss at the next
// checkpoint. It holds at most max_entries rows: past that, the oldest written go.
//
// Thread-safe: one connection serialized by an internal mutex. Every method does disk I/O, so
// callers must not call it while holding a lock that other threads wait on for memory-only work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/object_store.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/sqlite_util.h"

namespace strata {

// What is known of one object version.
struct KnownVersion {
  std::string etag{};   // without quotes, as ObjectInfo::etag
  Metadata metadata{};  // user metadata: x-amz-meta-* names in lower case, without the prefix
  std::string content_type{};
  std::optional<std::string> symlink_target{};  // the body of a symlink object, when known

  bool operator==(const KnownVersion&) const = default;
};

struct AttrStoreOptions {
  std::string path{};  // the database file, e.g. <cache dir>/attrs.db; its directory exists
  size_t max_entries = 500000;  // past this, the oldest-written rows go, down to about 90% of it
  Clock* clock = nullptr;  // times the warnings' rate limit; nullptr: real time. Outlives *this.
};

class AttrStore {
 public:
  struct Counters {
    uint64_t hits = 0;      // Get answered with a version
    uint64_t misses = 0;    // Get answered nullopt (unknown key, other ETag, or an error)
    uint64_t writes = 0;    // rows written by Put and PutMany
    uint64_t errors = 0;    // SQLite or decoding failures swallowed
    uint64_t rebuilds = 0;  // times the file was found corrupt and started afresh (Open included)
  };

  // Opens the database at options.path, creating it (mode 0600) when missing. A file that is
  // corrupt, unreadable or of another schema or version is moved to options.path + ".corrupt"
  // (replacing an earlier one) and a new, empty one is created, with one warning in the log.
  // Fails only when no database can be created at all (the directory is unusable, the disk full).
  static Result<std::unique_ptr<AttrStore>> Open(AttrStoreOptions options);

  ~AttrStore();
  AttrStore(const AttrStore&) = delete;
  AttrStore& operator=(const AttrStore&) = delete;

  // Records `version` as what is known of `key` now, replacing whatever was known of any
  // version of it. A failure is logged and counted, never returned: the write is simply lost.
  void Put(std::string_view key, const KnownVersion& version);
  // Put of each (key, version), in one transaction; for a key given twice, the later wins.
  void PutMany(const std::vector<std::pair<std::string, KnownVersion>>& versions);

  // What is known of `key` at `etag`; nullopt when the key is unknown, known only at another
  // ETag, or the database failed.
  std::optional<KnownVersion> Get(std::string_view key, std::string_view etag);
  // What is known of `key` at whatever ETag (the source of a copy, a directory marker).
  std::optional<KnownVersion> Latest(std::string_view key);

  // The known rows directly under `dir_prefix` ("" for the bucket root, else ending in '/'),
  // by key: "a/" gives "a/x" and the directory marker "a/d/", never "a/d/y". The caller
  // compares each ETag with the listing's. Empty when the database failed.
  std::map<std::string, KnownVersion> Children(std::string_view dir_prefix);

  // Forgets `key`; nothing happens when it is unknown.
  void Erase(std::string_view key);

  // Rows held now.
  size_t size();
  Counters counters();

  // The directory part of `key`, up to and including its last '/', a trailing '/' (of a
  // directory marker) excluded: "a/d/x" -> "a/d/", "a/d/" -> "a/", "x" -> "".
  static std::string_view ParentOf(std::string_view key);

 private:
  explicit AttrStore(AttrStoreOptions options);
  // Get (`etag` compared) or Latest (`etag` null).
  std::optional<KnownVersion> Find(std::string_view key, const std::string_view* etag);

  // Opens options_.path into db_ and prepares the statements; db_ stays empty on failure.
  Status OpenFileLocked() REQUIRES(mu_);
  // Prepares the statements and loads the row count and the newest `written` of db_.
  Status PrepareLocked() REQUIRES(mu_);
  // Finalizes the statements and closes db_.
  void CloseLocked() REQUIRES(mu_);
  // Closes db_, moves the file aside (one warning) and opens a new, empty one. When that fails
  // db_ stays empty and every call is a miss until the process restarts.
  Status RebuildLocked(const Status& why) REQUIRES(mu_);
  // Writes `rows` in one transaction, then trims the oldest rows once past max_entries.
  Status WriteLocked(std::span<const std::pair<std::string_view, const KnownVersion*>> rows)
      REQUIRES(mu_);
  // Counts a failure of `what` and logs it (at most once per minute), or rebuilds the file when
  // it is corrupt.
  void Failed(const Status& status, std::string_view what) REQUIRES(mu_);

  const AttrStoreOptions options_;
  const std::unique_ptr<Clock> owned_clock_;  // when options_.clock is nullptr
  Clock* const clock_;

  Mutex mu_;
  // Declared before the statements, so that it is closed after they are finalized. Empty when a
  // rebuild failed.
  std::optional<sqlite::Database> db_ GUARDED_BY(mu_);
  sqlite::Statement select_ GUARDED_BY(mu_);
  sqlite::Statement children_ GUARDED_BY(mu_);
  sqlite::Statement insert_ GUARDED_BY(mu_);
  sqlite::Statement update_ GUARDED_BY(mu_);
  sqlite::Statement erase_ GUARDED_BY(mu_);
  sqlite::Statement trim_ GUARDED_BY(mu_);
  uint64_t rows_ GUARDED_BY(mu_) = 0;
  int64_t last_written_ GUARDED_BY(mu_) = 0;  // the `written` of the newest row
  Counters counters_ GUARDED_BY(mu_);
  std::optional<Clock::MonoTime> last_warning_ GUARDED_BY(mu_);
  uint64_t unlogged_errors_ GUARDED_BY(mu_) = 0;  // failures since the last warning
};

}  // namespace strata
