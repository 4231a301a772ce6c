// ChunkTier: one level of the chunk cache (memory or disk). The fetcher looks tiers up in
// order and fills the faster ones on the way back. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>

#include "base/status.h"
#include "cache/chunk_key.h"

namespace strata {

class ChunkTier {
 public:
  virtual ~ChunkTier() = default;

  // A miss is a value (nullopt), not an error. Never returns bytes that failed verification:
  // a corrupt entry is dropped and reported as a miss.
  virtual Result<std::optional<ChunkData>> Get(const ChunkKey& key) = 0;

  // Bytes [offset, offset + length) of the chunk, with the same miss and verification rules as
  // Get. The slice may point into a larger buffer (the whole chunk, or the blocks that were
  // read). A tier that can read part of a chunk (the disk tier) reads only that part and does
  // not count it as a read of the whole chunk; the default serves it from Get. Callers check
  // the slice's bounds. REQUIRES: length > 0, and the range lies within the chunk.
  virtual Result<std::optional<ChunkSlice>> GetRange(const ChunkKey& key, uint64_t offset,
                                                     uint64_t length) {
    STRATA_ASSIGN_OR_RETURN(std::optional<ChunkData> chunk, Get(key));
    if (!chunk.has_value()) return std::optional<ChunkSlice>();
    return std::optional<ChunkSlice>(
        ChunkSlice{*std::move(chunk), static_cast<size_t>(offset), static_cast<size_t>(length)});
  }

  // Stores a copy (or a reference) of `data`. May evict other chunks first to stay within
  // bounds; fails (e.g. kNoSpace) rather than exceed them.
  virtual Status Put(const ChunkKey& key, const ChunkData& data) = 0;
};

}  // namespace strata
