// ChunkBuffers: recycles the multi-MiB buffers that chunks are read into. Thread-safe.
//
// A chunk read from S3 or from a cache file needs a buffer of the chunk's size. A fresh one costs
// page faults on first touch (the allocator maps large blocks afresh and returns them at free);
// with std::string's zero fill (gone with AlignedBuffer) that was a quarter of the daemon's CPU
// on a cold sequential read (perf, 512 MiB cold read). A chunk whose last reference goes away
// (evicted from the memory tier, read and dropped) hands its buffer back here instead, and the next
// chunk reuses it without touching the allocator or zeroing it.
//
// Only buffers of at least `buffer_bytes` capacity are kept (the chunk size: smaller ones are last
// chunks of objects, rare), and at most `max_buffers` of them: the kept ones are memory the
// daemon holds beyond the memory tier's budget, so keep the bound small. Buffers handed out may
// hold stale bytes of an earlier chunk: the caller overwrites all of them (GetInto checks that the
// body filled the buffer; a cache file read fails unless it reads all of its bytes).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "cache/chunk_key.h"

namespace strata {

class ChunkBuffers {
 public:
  ChunkBuffers(size_t buffer_bytes, size_t max_buffers);
  ChunkBuffers(const ChunkBuffers&) = delete;
  ChunkBuffers& operator=(const ChunkBuffers&) = delete;

  // A buffer of exactly `size` bytes, recycled when one is kept and size is between half of
  // buffer_bytes and buffer_bytes, else newly allocated. The contents are unspecified.
  AlignedBuffer Take(size_t size);

  // Makes `buffer` a chunk; once its last reference is dropped, the buffer comes back here (if
  // it qualifies and there is room). The returned chunk may outlive *this.
  ChunkData Share(AlignedBuffer buffer);

  size_t kept() const;      // buffers waiting for reuse
  uint64_t reused() const;  // Take calls served by a kept buffer

 private:
  struct Pool {
    explicit Pool(size_t buffer_bytes, size_t max_buffers)
        : buffer_bytes(buffer_bytes), max_buffers(max_buffers) {}
    void Give(AlignedBuffer buffer);
    const size_t buffer_bytes;
    const size_t max_buffers;
    mutable Mutex mu;
    std::vector<AlignedBuffer> free GUARDED_BY(mu);
    uint64_t reused GUARDED_BY(mu) = 0;
  };
  // Shared with the deleters of the chunks handed out, which may outlive *this.
  const std::shared_ptr<Pool> pool_;
};

}  // namespace strata
