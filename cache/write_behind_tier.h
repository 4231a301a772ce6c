// WriteBehindTier: wraps a slow ChunkTier (the disk tier) so that Put returns at once and a writer
// thread stores the chunk afterwards: a reader never waits for the cache disk. Queued chunks are
// served by Get, so a chunk is never missing between queue and disk. The queue holds at most
// `max_queued_bytes`; when it is full, Put drops the chunk instead of waiting (counted in
// stats.disk_write_drops): the cache accelerates, it is not a store of record, and a chunk not
// written costs one GET later, while a reader slowed to the cache disk's speed pays on every
// read. Thread-safe. The destructor writes out what is queued.
#pragma once

#include <deque>
#include <thread>
#include <unordered_map>

#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "cache/cache_stats.h"
#include "cache/chunk_tier.h"

namespace strata {

class WriteBehindTier final : public ChunkTier {
 public:
  // `inner` and `stats` must outlive *this.
  WriteBehindTier(ChunkTier& inner, uint64_t max_queued_bytes, CacheStats& stats);
  ~WriteBehindTier() override;

  WriteBehindTier(const WriteBehindTier&) = delete;
  WriteBehindTier& operator=(const WriteBehindTier&) = delete;

  Result<std::optional<ChunkData>> Get(const ChunkKey& key) override;
  // A queued chunk is served from memory (a slice of it); otherwise the inner tier's GetRange.
  Result<std::optional<ChunkSlice>> GetRange(const ChunkKey& key, uint64_t offset,
                                             uint64_t length) override;
  // Queues the chunk; drops it (and returns OK) when the queue is full.
  Status Put(const ChunkKey& key, const ChunkData& data) override;

  // Waits until everything queued so far is written (tests, shutdown).
  void Drain();

 private:
  struct Pending {
    ChunkKey key;
    ChunkData data;
  };
  void WriterLoop();

  ChunkTier& inner_;
  const uint64_t max_queued_bytes_;
  CacheStats& stats_;

  Mutex mu_;  // a leaf lock; never held across inner_ calls
  CondVar wake_;
  CondVar drained_;
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  std::unordered_map<std::string, ChunkData> queued_by_id_ GUARDED_BY(mu_);
  uint64_t queued_bytes_ GUARDED_BY(mu_) = 0;
  bool writing_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread writer_;  // last: starts after the fields above exist
};

}  // namespace strata
