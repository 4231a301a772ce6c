// ReadStream: the reads of one open file handle, i.e. of one version of one object, served in
// chunks by a ChunkFetcher, with sequential detection driving read-ahead.
//
// A read that starts where the previous one ended (within sequential_slack_bytes, so concurrent
// reads that arrive slightly out of order still count) is sequential. The second read of a
// sequential run opens a read-ahead window of initial_readahead_chunks chunks past the chunk
// being read; every time the run enters a new chunk the window doubles, up to
// max_readahead_bytes. Any other read is a random jump: the window closes (a random reader
// never triggers read-ahead) and read-ahead this stream queued but no worker has started is
// withdrawn.
//
// The stream decides how much of a chunk a read needs; the fetcher decides where it comes from.
// A sequential read works on whole chunks (ChunkFetcher::GetChunk: memory tier, single flight,
// read-ahead). Any other read asks only for its bytes (ChunkFetcher::GetRange): on a memory
// miss a disk-tier chunk is read block by block without being loaded or promoted, and a chunk
// that is nowhere is fetched as the blocks covering the read. The handle's first read, when it
// starts at offset 0, also queues its whole chunk for read-ahead (when read-ahead is on), so
// a cold object's first byte costs one small GET and a reader that goes on finds the chunk
// fetched or in flight.
//
// The stream remembers the last chunks it read only through weak references, so it holds no
// memory of its own: consecutive small reads of one chunk are served without asking the tiers
// again while the memory tier (or another reader) still holds that chunk. That also keeps one
// pass over a chunk from looking like reuse to the memory tier's eviction.
//
// Thread-safe: FUSE may issue concurrent reads on one handle. A small mutex guards the window
// state and the weak references; it is never held while fetching or copying, and it is the only
// lock of this class (the fetcher's locks are never taken while it is held).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/chunk_fetcher.h"
#include "cache/chunk_key.h"
#include "cache/object_version.h"

namespace strata {

class ReadStream {
 public:
  struct Options {
    // Largest read-ahead window; 0 disables read-ahead. At least one chunk when not 0.
    uint64_t max_readahead_bytes = 64ull << 20;
    // Window opened by the second read of a sequential run.
    uint32_t initial_readahead_chunks = 1;
    // How far from the end of the previous read a read may start and still be sequential.
    uint64_t sequential_slack_bytes = 512ull << 10;
  };

  // `fetcher` must outlive *this.
  ReadStream(ChunkFetcher& fetcher, ObjectVersion object, Options options);
  // Withdraws this stream's queued read-ahead.
  ~ReadStream();
  ReadStream(const ReadStream&) = delete;
  ReadStream& operator=(const ReadStream&) = delete;

  // Copies bytes [offset, offset + out.size()) of the object into `out` and returns how many:
  // fewer than out.size() only at the end of the object (0 at or past it). Errors are the
  // fetcher's (kPreconditionFailed: the object changed since this version was opened); no
  // partial count is returned with an error. Blocks on I/O.
  Result<size_t> Read(uint64_t offset, std::span<char> out);

  // The same bytes as Read(offset, size) without copying them: pieces of the chunks that hold
  // them, in order, each keeping its chunk alive. Empty at or past the end of the object.
  struct Slice {
    ChunkData chunk;
    size_t offset = 0;  // within the chunk
    size_t length = 0;
  };
  Result<std::vector<Slice>> ReadSlices(uint64_t offset, uint64_t size);

  const ObjectVersion& object() const { return object_; }
  // Current read-ahead window, in chunks (0: none).
  uint64_t readahead_window_chunks() const;

 private:
  enum class ReadKind {
    kSequential,    // part of a sequential run: whole chunks
    kFirstAtStart,  // the handle's first read, at offset 0
    kRandom,        // any other jump
  };
  struct ReadAheadPlan {
    ReadKind kind = ReadKind::kRandom;
    uint64_t first = 0;
    uint64_t count = 0;
    ChunkFetcher::CancelFlag cancel{};
  };
  struct RecentChunk {
    uint64_t index = UINT64_MAX;
    std::weak_ptr<const AlignedBuffer> data;
  };

  // Classifies the read [offset, end), updates the window and says what to read ahead.
  ReadAheadPlan Advance(uint64_t offset, uint64_t end);
  // Gives back the part of `plan` the fetcher could not cover (budget), to be asked again.
  void Settle(const ReadAheadPlan& plan, uint64_t covered);
  // The whole chunk `index`, for sequential reads.
  Result<ChunkData> Chunk(uint64_t index);
  // Bytes [offset, offset + length) of chunk `index`, for other reads.
  Result<Slice> Part(uint64_t index, uint64_t offset, uint64_t length,
                     ChunkFetcher::OnMiss on_miss);
  // The chunk `index` when a recent read left it alive, else null.
  ChunkData Recent(uint64_t index);
  void Remember(uint64_t index, const ChunkData& data);

  ChunkFetcher& fetcher_;
  const ObjectVersion object_;
  const uint64_t chunk_count_;
  const uint64_t max_window_;  // chunks
  const uint64_t initial_window_;
  const uint64_t slack_;

  mutable Mutex mu_;
  bool has_read_ GUARDED_BY(mu_) = false;
  uint64_t next_offset_ GUARDED_BY(mu_) = 0;      // furthest end of the sequential run
  uint64_t current_chunk_ GUARDED_BY(mu_) = 0;    // furthest chunk the run reached
  uint64_t window_ GUARDED_BY(mu_) = 0;           // chunks past current_chunk_ to read ahead
  uint64_t requested_until_ GUARDED_BY(mu_) = 0;  // chunks below it were handed to read-ahead
  std::shared_ptr<std::atomic<bool>> cancel_ GUARDED_BY(mu_);
  std::array<RecentChunk, 2> recent_ GUARDED_BY(mu_);
  size_t next_recent_ GUARDED_BY(mu_) = 0;
};

}  // namespace strata
