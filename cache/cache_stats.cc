#include "cache/cache_stats.h"

namespace strata {

std::string CacheStats::Format() const {
  std::string out;
  auto line = [&out](const char* name, const std::atomic<uint64_t>& value) {
    out += name;
    out += ' ';
    out += std::to_string(value.load(std::memory_order_relaxed));
    out += '\n';
  };
  line("memory_hits", memory_hits);
  line("memory_misses", memory_misses);
  line("memory_bytes_served", memory_bytes_served);
  line("memory_evictions", memory_evictions);
  line("disk_hits", disk_hits);
  line("disk_misses", disk_misses);
  line("disk_bytes_served", disk_bytes_served);
  line("disk_range_hits", disk_range_hits);
  line("disk_range_bytes_read", disk_range_bytes_read);
  line("disk_evictions", disk_evictions);
  line("disk_checksum_failures", disk_checksum_failures);
  line("disk_write_failures", disk_write_failures);
  line("disk_write_drops", disk_write_drops);
  line("s3_gets", s3_gets);
  line("s3_bytes", s3_bytes);
  line("s3_range_gets", s3_range_gets);
  line("coalesced_requests", coalesced_requests);
  line("readahead_chunks", readahead_chunks);
  line("readahead_hits", readahead_hits);
  return out;
}

}  // namespace strata
