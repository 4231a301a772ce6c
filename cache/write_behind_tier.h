// WriteBehindTier: wraps a slow ChunkTier (the disk tier, whose Put fsyncs) so that Put returns
// at once and a writer thread stores the chunk afterwards: a reader does not wait for the fsync
// of the chunk it just fetched. Queued chunks are served by Get, so a chunk is never missing
// between queue and disk. The queue holds at most `max_queued_bytes`; when it is full, Put waits
// for room (backpressure), so every chunk read reaches the disk tier and a later remount finds
// it: reading faster than the cache disk can write is slowed to the disk's speed. Waits are
// counted in stats.disk_write_waits. Thread-safe. The destructor writes out what is queued.
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
  // Queues the chunk, waiting for room when the queue is full.
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
  CondVar room_;
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  std::unordered_map<std::string, ChunkData> queued_by_id_ GUARDED_BY(mu_);
  uint64_t queued_bytes_ GUARDED_BY(mu_) = 0;
  bool writing_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread writer_;  // last: starts after the fields above exist
};

}  // namespace strata
