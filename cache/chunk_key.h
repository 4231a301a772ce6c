// ChunkKey: the identity of one chunk, a fixed-size aligned range of one version of one object.
// Bucket, key, ETag, chunk size and index all belong to it, so a changed object (new ETag) or a
// different chunk size is simply a miss: stale bytes can never be served. Value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/aligned_buffer.h"

namespace strata {

struct ChunkKey {
  std::string bucket;
  std::string object_key;
  std::string etag;
  uint32_t chunk_size = 0;  // bytes per chunk (the last chunk of an object may be shorter)
  uint64_t index = 0;       // chunk number: covers [index * chunk_size, (index + 1) * chunk_size)

  // 32 lower-case hex digits: a 128-bit hash (XXH3) of an unambiguous encoding of every field.
  // Used as file name and index key; equal keys give equal ids.
  std::string Id() const;

  bool operator==(const ChunkKey&) const = default;
};

// The bytes of one chunk. Immutable once built and shared between tiers and readers. Aligned for
// direct I/O: the disk tier writes and reads whole chunks with O_DIRECT (ChunkFile).
using ChunkData = std::shared_ptr<const AlignedBuffer>;

// A chunk holding a copy of `bytes`.
inline ChunkData MakeChunk(std::string_view bytes) {
  return std::make_shared<const AlignedBuffer>(AlignedBuffer::CopyOf(bytes));
}

// Bytes [offset, offset + length) of `data`: a piece of a chunk (the data may be the whole chunk
// or only some of its blocks), kept alive by the reference.
struct ChunkSlice {
  ChunkData data;
  size_t offset = 0;
  size_t length = 0;
};

}  // namespace strata
