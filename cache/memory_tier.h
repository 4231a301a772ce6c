// MemoryTier: the in-process level of the chunk cache. Thread-safe: any thread may call Get and
// Put at once.
//
// Holds chunks by reference (the ChunkData shared_ptr itself, never a copy) within a byte budget.
// The budget is split evenly over shards chosen by key hash, each with its own mutex, so readers
// of different chunks rarely contend. Each shard evicts with a segmented LRU that resists scans:
//   - Put inserts a chunk at the head of the probation segment. A chunk fetched once and never
//     looked up again (a sequential scan, read-ahead) stays there and is evicted first.
//   - A Get hit on a probation chunk promotes it to the head of the protected segment; a hit on
//     a protected chunk moves it to that segment's head.
//   - The protected segment holds at most protected_fraction of the shard budget; when a
//     promotion overflows it, its least recently used chunks go back to the probation head.
//   - Room for a Put is made by evicting the probation tail first, the protected tail only when
//     probation is empty. So a scan of any length cycles through probation and leaves the
//     protected set alone.
// Callers that read one chunk in many small pieces should not Get it once per piece (that would
// look like repeated use and promote it): ReadStream keeps a weak reference for that.
//
// Counts memory_hits, memory_misses, memory_bytes_served and memory_evictions in CacheStats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/status.h"
#include "cache/cache_stats.h"
#include "cache/chunk_key.h"
#include "cache/chunk_tier.h"

namespace strata {

class MemoryTier final : public ChunkTier {
 public:
  struct Options {
    uint64_t budget_bytes = 256ull << 20;
    // Shards wanted. Fewer are used when budget_bytes / shards would fall below min_shard_bytes,
    // so that a shard always holds several chunks (a chunk larger than its shard's budget cannot
    // be cached at all). 0 is treated as 1.
    size_t shards = 8;
    uint64_t min_shard_bytes = 32ull << 20;
    // Share of each shard's budget the protected segment may hold; the rest is probation only.
    double protected_fraction = 0.8;
  };

  // `stats` must outlive *this.
  MemoryTier(Options options, CacheStats& stats);
  ~MemoryTier() override;
  MemoryTier(const MemoryTier&) = delete;
  MemoryTier& operator=(const MemoryTier&) = delete;

  // A hit returns the very shared_ptr that was Put.
  Result<std::optional<ChunkData>> Get(const ChunkKey& key) override;

  // Evicts least valuable chunks of the key's shard until `data` fits. Fails with kNoSpace when
  // `data` is larger than a shard's budget, kInvalidArgument when it is null. Putting a key that
  // is already cached replaces its data and keeps its place.
  Status Put(const ChunkKey& key, const ChunkData& data) override;

  uint64_t used_bytes() const;    // sum over shards, each read under its own lock
  size_t chunk_count() const;     // same
  size_t shard_count() const;     // shards actually used (see Options::shards)
  uint64_t shard_budget() const;  // bytes per shard

 private:
  class Shard;

  Shard& ShardFor(const std::string& id);

  CacheStats& stats_;
  uint64_t shard_budget_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;  // fixed after construction
};

}  // namespace strata
