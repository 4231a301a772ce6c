// ChunkTier: one level of the chunk cache (memory or disk). The fetcher looks tiers up in
// order and fills the faster ones on the way back. Implementations are thread-safe.
#pragma once

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

  // Stores a copy (or a reference) of `data`. May evict other chunks first to stay within
  // bounds; fails (e.g. kNoSpace) rather than exceed them.
  virtual Status Put(const ChunkKey& key, const ChunkData& data) = 0;
};

}  // namespace strata
