// CacheStats: counters of the read path, shared by the tiers and the fetcher and printed by
// `strata stats`. Plain atomics, relaxed: readers see a recent value, never a torn one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace strata {

struct CacheStats {
  std::atomic<uint64_t> memory_hits{0};
  std::atomic<uint64_t> memory_misses{0};
  std::atomic<uint64_t> memory_bytes_served{0};
  std::atomic<uint64_t> memory_evictions{0};
  std::atomic<uint64_t> disk_hits{0};
  std::atomic<uint64_t> disk_misses{0};
  std::atomic<uint64_t> disk_bytes_served{0};
  // Disk hits that read only the blocks covering a read (DiskTier::GetRange), and the bytes of
  // those blocks read and verified: a random read that misses memory costs these, not a chunk.
  std::atomic<uint64_t> disk_range_hits{0};
  std::atomic<uint64_t> disk_range_bytes_read{0};
  std::atomic<uint64_t> disk_evictions{0};
  std::atomic<uint64_t> disk_checksum_failures{0};
  std::atomic<uint64_t> disk_write_failures{0};
  std::atomic<uint64_t> disk_write_drops{0};  // chunks not written: the cache disk fell behind
  std::atomic<uint64_t> s3_gets{0};
  std::atomic<uint64_t> s3_bytes{0};
  // GETs (also in s3_gets) of only the blocks a read needs rather than a whole chunk: the first
  // read of a cold object and random reads that miss everywhere.
  std::atomic<uint64_t> s3_range_gets{0};
  std::atomic<uint64_t> coalesced_requests{0};  // misses that joined a GET already in flight
  std::atomic<uint64_t> readahead_chunks{0};    // chunks fetched ahead of the reader
  std::atomic<uint64_t> readahead_hits{0};      // reads served by a chunk fetched ahead

  // "name value" lines, one counter per line, in declaration order.
  std::string Format() const;
};

}  // namespace strata
