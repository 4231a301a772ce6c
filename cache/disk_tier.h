// DiskTier stores immutable chunks as files under a root directory, indexed in SQLite, within a
// byte limit and a free-space floor. Thread-safe: any method from any thread, many readers and
// writers at once. One DiskTier per root at a time (Open takes a flock on <root>/LOCK).
//
// Layout under root (directories 0700, files 0600):
//   LOCK                   held while the tier is open
//   index.db (-wal, -shm)  ChunkIndex: identity, size, checksum, last access of every chunk
//   index.db.corrupt       the last index found unusable at Open, kept for inspection
//   chunks/<ab>/<id>       ChunkFile; <id> = ChunkKey::Id(), <ab> its first two hex digits
//   chunks/<ab>/<id>.tmp   a chunk being written; garbage after a crash, removed at Open
//
// The chunk files are the truth; the index is bookkeeping that can be rebuilt from them. At
// Open: temp files are deleted; rows whose file is missing or has the wrong size are dropped
// (with the file); files without a row are fully verified and re-indexed, or deleted. A missing
// or unusable index.db (cannot open, quick_check fails, other schema) is moved aside and every
// chunk file is re-indexed that way (files of an older ChunkFile format fail the size check or
// verification and are deleted). Get verifies every file completely (header against the
// requested key, every block checksum); GetRange reads and verifies the header and only the
// blocks covering the range (ChunkFile::ReadRange), so a random read costs a block, not a chunk.
// Either way a bad file is deleted, counted (disk_checksum_failures) and reported as a miss,
// never served.
//
// Durability: none asked for. Put returns OK once the chunk is readable by Get; nothing is
// fsynced. After a crash or power loss a chunk may be missing, or torn and then caught by its
// checksums: a miss either way, one GET later, never bad data.
//
// Limits: Put evicts least recently used chunks before writing until used + new <= max_bytes
// and free space - new >= min_free_bytes (sizes count chunk data, not file headers); when it
// cannot, it returns kNoSpace and changes nothing. Chunks of pinned objects are never evicted.
//
// Access times: an in-memory LRU list drives eviction. Its order is persisted as last_access
// ticks, nanoseconds of the injected clock that keep counting from the largest stored tick, so
// the order survives restarts whatever the clock. Get records accesses in memory only; the
// first Get or Put that finds access_flush_interval elapsed since the last flush writes them
// all in one transaction on its own thread (there is no background thread), as do
// FlushAccessTimes() and the destructor. A crash loses at most one interval of LRU updates.
//
// Lock order: gate_, then mu_; ChunkIndex's own mutex is taken with gate_ held and mu_ not.
// gate_ is held shared by every operation, across its chunk file and index I/O, and exclusively
// by Open and destruction, so no operation ever waits for it. mu_ guards the in-memory
// state and is never held across I/O. Ids whose files are being written or removed are marked
// busy under mu_, so no two threads ever write or remove the same chunk file at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/posix_file.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/cache_stats.h"
#include "cache/chunk_index.h"
#include "cache/chunk_key.h"
#include "cache/chunk_tier.h"

namespace strata {

struct DiskTierOptions {
  std::string root;             // created (with parents) if missing; tightened to 0700 if wider
  uint64_t max_bytes = 0;       // limit of chunk data bytes; must be > 0
  uint64_t min_free_bytes = 0;  // free space to keep on the filesystem holding root
  Clock* clock = nullptr;       // nullptr: real time. Outlives the tier.
  Clock::Duration access_flush_interval = std::chrono::seconds(1);
  // How long Open waits for another holder of root (e.g. a daemon still shutting down) to let go
  // before failing with "already in use".
  Clock::Duration lock_wait = Clock::Duration::zero();
  // Free bytes on the filesystem holding root (statvfs f_bavail * f_frsize when empty). Called
  // from Put threads without locks held; tests replace it to simulate a full disk.
  std::function<uint64_t()> free_space_probe{};
};

class DiskTier final : public ChunkTier {
 public:
  // Opens (creating if needed) the tier under options.root and recovers it as described above.
  // `stats` outlives the tier.
  static Result<std::unique_ptr<DiskTier>> Open(DiskTierOptions options, CacheStats& stats);

  // Flushes pending access times.
  ~DiskTier() override;
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // A miss (nullopt) when the chunk is absent or its file failed verification. An error only
  // for an I/O failure reading the file (the entry is dropped, so a later Put rewrites it).
  Result<std::optional<ChunkData>> Get(const ChunkKey& key) override;

  // Bytes [offset, offset + length) of the chunk, read from only the blocks that cover them:
  // the slice points into those blocks. Misses and errors as Get; a range outside the chunk's
  // data is kInvalidArgument (the file is kept). Counts disk_hits, disk_range_hits,
  // disk_range_bytes_read (whole blocks) and disk_bytes_served (`length`). An access to the
  // chunk for eviction, like Get.
  Result<std::optional<ChunkSlice>> GetRange(const ChunkKey& key, uint64_t offset,
                                             uint64_t length) override;

  // OK when the chunk is stored, or was already (then it only counts as an access), or is being
  // written or removed by another thread right now (nothing to do). kNoSpace when the limits
  // leave no room even after evicting every unpinned chunk; kNoSpace/kIo when the write fails.
  Status Put(const ChunkKey& key, const ChunkData& data) override;

  // Removes one chunk, pinned or not. OK when there is nothing to remove. A chunk Put
  // concurrently may survive.
  Status Erase(const ChunkKey& key);

  // While an object is pinned (counted: each Pin needs an Unpin), eviction skips its chunks.
  void Pin(const std::string& bucket, const std::string& object_key);
  void Unpin(const std::string& bucket, const std::string& object_key);

  // Writes pending access times now, in one transaction.
  Status FlushAccessTimes();

  uint64_t used_bytes();   // chunk data bytes stored
  uint64_t chunk_count();  // chunks stored
  // Write transactions the index committed since Open (for tests and stats).
  uint64_t index_transactions();

 private:
  struct Entry {
    uint64_t size = 0;
    uint64_t object_hash = 0;  // ObjectHash(bucket, object_key), for pins
    uint64_t generation = 0;   // tells a re-put chunk from the one a reader looked up
    int64_t last_access = 0;
    std::list<const std::string*>::iterator lru;  // points at the entries_ key
  };
  DiskTier(DiskTierOptions options, CacheStats& stats, DirLock lock);

  std::string ChunkPath(const std::string& id) const;
  static uint64_t ObjectHash(const std::string& bucket, const std::string& object_key);
  uint64_t FreeSpace();

  // Records an access to `id` and returns its generation; nullopt (a miss, counted and access
  // times flushed when due) when the tier does not hold it.
  std::optional<uint64_t> Touch(const std::string& id) REQUIRES_SHARED(gate_) EXCLUDES(mu_);
  // After reading the file of `id` (of `generation`) failed with `problem`: drops the entry,
  // counts and logs. OK when that makes it a miss (file gone or corrupt), else `problem`.
  Status DropUnreadable(const std::string& id, uint64_t generation, const Status& problem)
      REQUIRES_SHARED(gate_) EXCLUDES(mu_);

  // Opens index.db, moving an unusable one aside and starting empty.
  Status OpenIndex() REQUIRES(gate_);
  // Reconciles the index with the chunk files and rebuilds the in-memory state. Files without a
  // row are verified and re-indexed as the oldest; rows' files only have their size checked.
  Status Recover() REQUIRES(gate_);
  // Evicts unpinned LRU chunks until used_bytes() <= max_bytes. REQUIRES: gate_ held.
  void EvictOverLimit() REQUIRES_SHARED(gate_) EXCLUDES(mu_);

  int64_t NextTickLocked() REQUIRES(mu_);
  void TouchLocked(const std::string& id, Entry& entry) REQUIRES(mu_);
  // Appends least recently used unpinned chunks to *victims until they total at least `bytes`.
  // False when all of them are not enough.
  bool PickVictimsLocked(uint64_t bytes, std::vector<std::string>* victims) REQUIRES(mu_);
  // Takes `ids` out of the in-memory state and marks them busy. Skips ids that are absent,
  // busy, or (when `generation` is set) of another generation. Returns the ids taken.
  std::vector<std::string> DetachLocked(const std::vector<std::string>& ids,
                                        std::optional<uint64_t> generation) REQUIRES(mu_);
  // The methods below do I/O. REQUIRES: gate_ held (shared or exclusive), mu_ not held.
  //
  // Deletes the rows and files of detached ids, then clears their busy marks.
  void RemoveDetached(const std::vector<std::string>& ids) REQUIRES_SHARED(gate_) EXCLUDES(mu_);
  // Detaches and removes in one go. Returns the ids removed.
  std::vector<std::string> Remove(const std::vector<std::string>& ids,
                                  std::optional<uint64_t> generation) REQUIRES_SHARED(gate_)
      EXCLUDES(mu_);
  // Flushes access times when the interval has elapsed.
  void MaybeFlush() REQUIRES_SHARED(gate_) EXCLUDES(mu_);
  Status FlushPending() REQUIRES_SHARED(gate_) EXCLUDES(mu_);

  const DiskTierOptions options_;
  CacheStats& stats_;
  const std::unique_ptr<Clock> owned_clock_;  // when options_.clock is nullptr
  Clock* const clock_;
  const DirLock dir_lock_;  // held for the lifetime of this object
  const std::string index_path_;
  const std::string chunks_dir_;

  // Lock order: gate_, then mu_.
  SharedMutex gate_;
  std::unique_ptr<ChunkIndex> index_ GUARDED_BY(gate_);  // null only while Open fails

  Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ GUARDED_BY(mu_);
  std::list<const std::string*> lru_ GUARDED_BY(mu_);  // front: least recently used
  std::unordered_set<std::string> busy_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, int> pins_ GUARDED_BY(mu_);  // object hash -> pin count
  std::unordered_map<std::string, int64_t> pending_access_ GUARDED_BY(mu_);
  uint64_t used_ GUARDED_BY(mu_) = 0;
  uint64_t reserved_ GUARDED_BY(mu_) = 0;  // bytes of Puts in flight
  uint64_t next_generation_ GUARDED_BY(mu_) = 1;
  int64_t tick_base_ GUARDED_BY(mu_) = 0;  // tick at opened_at_
  Clock::MonoTime opened_at_ GUARDED_BY(mu_);
  int64_t last_tick_ GUARDED_BY(mu_) = 0;
  Clock::MonoTime next_flush_ GUARDED_BY(mu_);
};

}  // namespace strata
