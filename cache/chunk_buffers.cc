#include "cache/chunk_buffers.h"

#include <utility>

namespace strata {

ChunkBuffers::ChunkBuffers(size_t buffer_bytes, size_t max_buffers)
    : pool_(std::make_shared<Pool>(buffer_bytes, max_buffers)) {}

AlignedBuffer ChunkBuffers::Take(size_t size) {
  // A small chunk (the end of an object, a small file) in a big buffer would hold memory the
  // memory tier does not count: those are allocated to size.
  if (size <= pool_->buffer_bytes && size >= pool_->buffer_bytes / 2) {
    MutexLock lock(pool_->mu);
    if (!pool_->free.empty()) {
      AlignedBuffer buffer = std::move(pool_->free.back());
      pool_->free.pop_back();
      ++pool_->reused;
      buffer.resize(size);
      return buffer;
    }
  }
  return AlignedBuffer(size);
}

ChunkData ChunkBuffers::Share(AlignedBuffer buffer) {
  auto* owned = new AlignedBuffer(std::move(buffer));
  std::weak_ptr<Pool> pool = pool_;
  return ChunkData(owned, [pool = std::move(pool)](const AlignedBuffer* data) {
    std::unique_ptr<AlignedBuffer> chunk(const_cast<AlignedBuffer*>(data));
    if (std::shared_ptr<Pool> alive = pool.lock()) alive->Give(std::move(*chunk));
  });
}

void ChunkBuffers::Pool::Give(AlignedBuffer buffer) {
  if (buffer.capacity() < buffer_bytes) return;
  MutexLock lock(mu);
  if (free.size() < max_buffers) free.push_back(std::move(buffer));
}

size_t ChunkBuffers::kept() const {
  MutexLock lock(pool_->mu);
  return pool_->free.size();
}

uint64_t ChunkBuffers::reused() const {
  MutexLock lock(pool_->mu);
  return pool_->reused;
}

}  // namespace strata
