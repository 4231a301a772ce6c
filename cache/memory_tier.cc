#include "cache/memory_tier.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/mutex.h"
#include "base/thread_annotations.h"

namespace strata {

// One independently locked segmented LRU (see the header). Lists run from most recently used
// (front) to least (back); the index points into whichever list holds the entry, and splice
// keeps those iterators valid when an entry changes segment.
class MemoryTier::Shard {
 public:
  Shard(uint64_t budget, uint64_t protected_budget)
      : budget_(budget), protected_budget_(protected_budget) {}

  std::optional<ChunkData> Get(const std::string& id) {
    MutexLock lock(mu_);
    auto found = index_.find(id);
    if (found == index_.end()) return std::nullopt;
    EntryList::iterator entry = found->second;
    if (entry->is_protected) {
      protected_.splice(protected_.begin(), protected_, entry);
      return entry->data;
    }
    protected_.splice(protected_.begin(), probation_, entry);
    entry->is_protected = true;
    probation_bytes_ -= entry->size;
    protected_bytes_ += entry->size;
    // Demote from the protected tail until the segment is within its share again; the entry
    // just promoted stays even if it alone is larger than the share.
    while (protected_bytes_ > protected_budget_ && protected_.size() > 1) {
      EntryList::iterator demoted = std::prev(protected_.end());
      demoted->is_protected = false;
      protected_bytes_ -= demoted->size;
      probation_bytes_ += demoted->size;
      probation_.splice(probation_.begin(), protected_, demoted);
    }
    return entry->data;
  }

  // REQUIRES: data->size() <= budget_. Chunks dropped (evicted or replaced) are moved to
  // `dropped` so that their memory is released after the lock is released. Returns the number
  // of chunks evicted.
  uint64_t Put(const std::string& id, const ChunkData& data, std::vector<ChunkData>& dropped) {
    const uint64_t size = data->size();
    MutexLock lock(mu_);
    auto found = index_.find(id);
    if (found != index_.end()) {
      EntryList::iterator entry = found->second;
      if (entry->size == size) {
        dropped.push_back(std::exchange(entry->data, data));
        return 0;
      }
      dropped.push_back(std::move(entry->data));
      Unlink(entry);
    }
    uint64_t evictions = 0;
    while (probation_bytes_ + protected_bytes_ + size > budget_) {
      EntryList& victims = probation_.empty() ? protected_ : probation_;
      EntryList::iterator victim = std::prev(victims.end());
      dropped.push_back(std::move(victim->data));
      Unlink(victim);
      ++evictions;
    }
    probation_.push_front(Entry{id, data, size, false});
    probation_bytes_ += size;
    index_.emplace(id, probation_.begin());
    return evictions;
  }

  uint64_t used_bytes() const {
    MutexLock lock(mu_);
    return probation_bytes_ + protected_bytes_;
  }

  size_t chunk_count() const {
    MutexLock lock(mu_);
    return index_.size();
  }

 private:
  struct Entry {
    std::string id;
    ChunkData data;
    uint64_t size = 0;  // data->size(), kept so an entry whose data was moved out can be unlinked
    bool is_protected = false;
  };
  using EntryList = std::list<Entry>;

  void Unlink(EntryList::iterator entry) REQUIRES(mu_) {
    if (entry->is_protected) {
      protected_bytes_ -= entry->size;
      index_.erase(entry->id);
      protected_.erase(entry);
    } else {
      probation_bytes_ -= entry->size;
      index_.erase(entry->id);
      probation_.erase(entry);
    }
  }

  const uint64_t budget_;
  const uint64_t protected_budget_;
  mutable Mutex mu_;  // a leaf: nothing else is locked while it is held
  EntryList probation_ GUARDED_BY(mu_);
  EntryList protected_ GUARDED_BY(mu_);
  std::unordered_map<std::string, EntryList::iterator> index_ GUARDED_BY(mu_);
  uint64_t probation_bytes_ GUARDED_BY(mu_) = 0;
  uint64_t protected_bytes_ GUARDED_BY(mu_) = 0;
};

MemoryTier::MemoryTier(Options options, CacheStats& stats) : stats_(stats) {
  size_t shards = std::max<size_t>(options.shards, 1);
  if (options.min_shard_bytes > 0) {
    shards = static_cast<size_t>(std::clamp<uint64_t>(
        options.budget_bytes / options.min_shard_bytes, 1, static_cast<uint64_t>(shards)));
  }
  shard_budget_ = options.budget_bytes / shards;
  const double fraction = std::clamp(options.protected_fraction, 0.0, 1.0);
  const auto protected_budget =
      static_cast<uint64_t>(static_cast<double>(shard_budget_) * fraction);
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(shard_budget_, protected_budget));
  }
}

MemoryTier::~MemoryTier() = default;

MemoryTier::Shard& MemoryTier::ShardFor(const std::string& id) {
  return *shards_[std::hash<std::string>{}(id) % shards_.size()];
}

Result<std::optional<ChunkData>> MemoryTier::Get(const ChunkKey& key) {
  const std::string id = key.Id();
  std::optional<ChunkData> data = ShardFor(id).Get(id);
  if (!data) {
    stats_.memory_misses.fetch_add(1, std::memory_order_relaxed);
    return std::optional<ChunkData>();
  }
  stats_.memory_hits.fetch_add(1, std::memory_order_relaxed);
  stats_.memory_bytes_served.fetch_add((*data)->size(), std::memory_order_relaxed);
  return data;
}

Status MemoryTier::Put(const ChunkKey& key, const ChunkData& data) {
  if (!data) return Status::InvalidArgument("memory tier: null chunk data");
  if (data->size() > shard_budget_) {
    return Status::NoSpace("memory tier: chunk of " + std::to_string(data->size()) +
                           " bytes exceeds the shard budget of " + std::to_string(shard_budget_));
  }
  const std::string id = key.Id();
  std::vector<ChunkData> dropped;  // released after the shard lock, at the end of this scope
  const uint64_t evictions = ShardFor(id).Put(id, data, dropped);
  if (evictions > 0) stats_.memory_evictions.fetch_add(evictions, std::memory_order_relaxed);
  return Status::Ok();
}

uint64_t MemoryTier::used_bytes() const {
  uint64_t total = 0;
  for (const std::unique_ptr<Shard>& shard : shards_) total += shard->used_bytes();
  return total;
}

size_t MemoryTier::chunk_count() const {
  size_t total = 0;
  for (const std::unique_ptr<Shard>& shard : shards_) total += shard->chunk_count();
  return total;
}

size_t MemoryTier::shard_count() const { return shards_.size(); }

uint64_t MemoryTier::shard_budget() const { return shard_budget_; }

}  // namespace strata
