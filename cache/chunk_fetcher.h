// ChunkFetcher: the read path below the file handles. Turns (object version, chunk index) into
// the chunk's bytes, looking in the cache tiers first and fetching from the object store on a
// miss. Thread-safe: any number of threads may call GetChunk and Prefetch at once.
//
//   - Tiers are looked up in order (fastest first); a hit in a slower tier is copied into the
//     faster ones. A tier error on lookup counts as a miss; a failed Put (kNoSpace, kIo) is
//     logged and ignored: the read still succeeds.
//   - A miss everywhere is one ranged GET with If-Match on the version's ETag, written straight
//     into a buffer of the chunk's exact size (GetInto), recycled from dropped chunks when one
//     is free (ChunkBuffers). A changed object fails with
//     kPreconditionFailed; a body of the wrong length is an error (kTransient) and is neither
//     cached nor served. Chunks are complete or absent, never short.
//   - Single flight: a miss on a chunk whose GET is already in flight waits for that GET and
//     shares its result (counted in coalesced_requests). Completed chunks go into the fastest
//     tier before the waiters are released, so a request that arrives just after a GET finished
//     finds the chunk in the tier instead of issuing a second GET.
//   - Read-ahead: Prefetch queues chunks for a pool of worker threads. Bytes of queued and
//     running read-ahead are bounded by one budget shared by all files; when it is used up,
//     Prefetch skips the remaining chunks: it never blocks, never waits for I/O and never
//     exceeds the budget. Fetched chunks land in the tiers (the memory tier's budget then bounds
//     them). A reader that needs a chunk still queued for read-ahead fetches it itself at once
//     instead of waiting behind the queue; one that needs a chunk read-ahead is fetching joins it.
//     The first read of a chunk read-ahead fetched counts readahead_hits and is served without a
//     tier lookup, so that read-ahead followed by one read does not look like reuse to the
//     memory tier's eviction.
//   - Reads sized to what was asked (GetRange): for a read that is not part of a sequential run,
//     the caller (ReadStream, which knows the access pattern) asks for a range of a chunk. The
//     fetcher (which knows the tiers) serves it from the memory tier's whole chunk, else from
//     the disk tier's blocks that cover it (without loading or promoting the chunk), else by
//     joining a flight of the chunk already running, else with one ranged GET of only those
//     blocks (aligned to block_size; If-Match and the exact-length check as for chunks), which
//     is not cached: tiers hold whole chunks. For the first read of a handle the caller can ask
//     for the whole chunk to be queued for read-ahead as well, so the first byte costs one
//     small GET and the chunk still lands in the tiers. Everything else stays chunk-based:
//     tiers, single flight and read-ahead.
//   - Destruction drops queued read-ahead and waits for running fetches.
//
// Locking: mu_ guards all mutable state; it is never held while calling a tier or the store,
// and no other lock is taken while it is held.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/object_store.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/cache_stats.h"
#include "cache/chunk_buffers.h"
#include "cache/chunk_key.h"
#include "cache/chunk_tier.h"
#include "cache/object_version.h"

namespace strata {

class ChunkFetcher {
 public:
  struct Options {
    // Bytes per chunk, also the unit of ranged GETs. 8 MiB, the default of the mount's
    // --chunk-size (tools/mount_options.h): keep the two equal. REQUIRES: > 0.
    uint32_t chunk_size = 8u << 20;
    // Unit of the ranged GETs of GetRange. 64 KiB, ChunkFile::kBlockSize, the disk tier's block:
    // the bytes a cold random read pays for match those a warm one reads from disk.
    // REQUIRES: > 0.
    uint32_t block_size = 64u << 10;
    // Threads fetching read-ahead. 0 disables read-ahead (Prefetch queues nothing).
    size_t readahead_workers = 8;
    // Bytes of read-ahead queued or being fetched, over all files at once.
    uint64_t readahead_budget_bytes = 128ull << 20;
    // Chunks fetched by read-ahead and not read yet that are remembered (weakly: the tiers own
    // them) for readahead_hits. The oldest are forgotten first.
    size_t max_unread_readahead = 1024;
    // Buffers of dropped chunks kept for reuse (ChunkBuffers): up to this many chunks of memory
    // on top of the tiers.
    size_t kept_buffers = 4;
  };

  // A shared flag a caller sets to withdraw read-ahead it requested (e.g. after a random seek).
  using CancelFlag = std::shared_ptr<const std::atomic<bool>>;

  // `store`, every tier in `tiers` and `stats` must outlive *this. `tiers` is fastest first;
  // null entries are skipped, and it may be empty. Starts options.readahead_workers threads.
  ChunkFetcher(ObjectStore& store, std::vector<ChunkTier*> tiers, Options options,
               CacheStats& stats);
  // Drops queued read-ahead, waits for running fetches. REQUIRES: no call is in progress.
  ~ChunkFetcher();
  ChunkFetcher(const ChunkFetcher&) = delete;
  ChunkFetcher& operator=(const ChunkFetcher&) = delete;

  uint32_t chunk_size() const { return chunk_size_; }
  // Chunks of an object of `size` bytes (0 for an empty object).
  uint64_t ChunkCount(uint64_t size) const;
  // Bytes of chunk `index` of `object`: chunk_size but for the last. REQUIRES: index < count.
  uint64_t ChunkLength(const ObjectVersion& object, uint64_t index) const;
  ChunkKey KeyOf(const ObjectVersion& object, uint64_t index) const;

  // The whole chunk `index` of `object` (exactly ChunkLength bytes). kInvalidArgument when the
  // index is past the end or the version has no ETag; kPreconditionFailed when the object no
  // longer has that ETag; otherwise the store's error. Blocks on I/O.
  Result<ChunkData> GetChunk(const ObjectVersion& object, uint64_t index);

  // What GetRange does when the range is nowhere in the cache and no flight of its chunk runs.
  enum class OnMiss {
    kBlocksOnly,       // GET the covering blocks only (a random read)
    kBlocksThenChunk,  // also queue the whole chunk for read-ahead first (a handle's first read)
  };

  // Bytes [offset, offset + length) of chunk `index` of `object` (offset within the chunk), for
  // a read that is not part of a sequential run; see the top for where they come from. When
  // the blocks covering the range are the whole chunk (small chunks), this is GetChunk. The
  // slice points into the whole chunk or into the blocks read. Errors as GetChunk, and
  // kInvalidArgument for an empty range or one not within the chunk. Blocks on I/O.
  Result<ChunkSlice> GetRange(const ObjectVersion& object, uint64_t index, uint64_t offset,
                              uint64_t length, OnMiss on_miss);

  // Queues read-ahead of chunks [first, first + count) of `object`, cut at the object's end.
  // Chunks already queued, in flight or fetched ahead and not yet read are skipped. Stops at
  // the first chunk the budget cannot cover. Queued chunks whose `cancel` flag is set when a
  // worker reaches them are dropped (a null flag never cancels). Never blocks on I/O.
  // Returns the index one past the last chunk that is now covered (queued, in flight or
  // fetched ahead): `first` when nothing could be queued.
  uint64_t Prefetch(const ObjectVersion& object, uint64_t first, uint64_t count,
                    CancelFlag cancel = nullptr);

  // Blocks until no read-ahead is queued or running, or destruction has begun (then queued
  // read-ahead has been dropped). Production code never waits for read-ahead: this is the
  // synchronization point of the read-ahead tests, which count fetches once it settles.
  void WaitIdle();

  // Bytes currently reserved by queued or running read-ahead (<= readahead_budget_bytes).
  uint64_t readahead_bytes_in_use() const;

 private:
  struct Flight;
  struct Task {
    // Weak: flights_ owns a queued flight. One a reader took over must not be kept alive (with
    // its chunk) by a task still waiting in the queue.
    std::weak_ptr<Flight> flight;
    ObjectVersion object;
    uint64_t index = 0;
    CancelFlag cancel;
  };
  // A chunk read-ahead fetched and nobody has read yet. The tiers own the bytes.
  struct UnreadChunk {
    std::weak_ptr<const AlignedBuffer> data;
    std::list<std::string>::iterator age;  // position in unread_order_
  };

  // Takes `id` out of the unread read-ahead chunks; returns its bytes when they are still alive.
  std::optional<ChunkData> TakeUnread(const std::string& id);
  void RememberUnread(const std::string& id, const ChunkData& data) REQUIRES(mu_);
  struct TierHit {
    ChunkData data;
    size_t tier = 0;  // index into tiers_
  };

  Status CheckChunk(const ObjectVersion& object, uint64_t index) const;
  // Looks the tiers up in order, filling faster tiers on a hit. Errors and chunks of the wrong
  // length count as misses.
  std::optional<TierHit> LookUpTiers(const ChunkKey& key, uint64_t length);
  // Waits for the running `flight` that this caller joins and returns its result. Holds its own
  // reference: completion takes the flight out of flights_.
  Result<ChunkData> Join(std::shared_ptr<Flight> flight, MutexLock& lock) REQUIRES(mu_);
  // The GET itself: ranged, conditional, into a buffer of the exact size, length checked.
  // Bytes [offset, offset + length) of chunk `index`; the whole chunk by default.
  Result<ChunkData> FetchFromStore(const ObjectVersion& object, uint64_t index, uint64_t offset = 0,
                                   std::optional<uint64_t> length = std::nullopt);
  void PutIntoTier(ChunkTier& tier, const ChunkKey& key, const ChunkData& data);
  // Where the outcome of a flight came from.
  enum class Source {
    kFastestTier,  // already where readers look first: nothing was done
    kSlowerTier,   // copied into the faster tiers by LookUpTiers
    kStore,        // fetched (or failed to be)
  };
  // Publishes the outcome of `flight` to its waiters. Bytes from the store go into the fastest
  // tier before the waiters are released and into the others after.
  void Complete(const std::shared_ptr<Flight>& flight, const ChunkKey& key,
                const Result<ChunkData>& result, Source source);
  void WorkerLoop();
  void RunReadAhead(const std::shared_ptr<Flight>& flight, const Task& task);
  std::atomic<uint64_t>& CompletionsFor(const std::string& id);

  ObjectStore& store_;
  const std::vector<ChunkTier*> tiers_;
  const uint32_t chunk_size_;
  const uint32_t block_size_;
  const uint64_t readahead_budget_;
  const size_t max_unread_;
  CacheStats& stats_;
  // Buffers of chunks dropped by everyone, reused for the next GETs.
  ChunkBuffers buffers_;

  // Completed flights per hash slot of the chunk id. A miss reads its slot before looking the
  // tiers up; if the count moved by the time it would start a GET, a flight for that chunk may
  // have just completed and put it into a tier, so it looks again.
  std::array<std::atomic<uint64_t>, 256> completions_{};

  mutable Mutex mu_;
  CondVar work_cv_;  // tasks queued or stopping_
  CondVar idle_cv_;  // read-ahead finished
  bool stopping_ GUARDED_BY(mu_) = false;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_ GUARDED_BY(mu_);  // by id
  std::deque<Task> queue_ GUARDED_BY(mu_);
  size_t running_readahead_ GUARDED_BY(mu_) = 0;
  uint64_t readahead_reserved_ GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, UnreadChunk> unread_ GUARDED_BY(mu_);
  std::list<std::string> unread_order_ GUARDED_BY(mu_);  // oldest first
  std::vector<std::thread> workers_;                     // fixed after construction
};

}  // namespace strata
