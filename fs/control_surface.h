// ControlSurface: what a running mount tells its operator and takes from them, as text: the
// counters for `strata stats`, pages of the upload queue for `strata queue`, and the retry of
// dead letters. The FUSE adapter serves it through the ioctls in control_ioctl.h.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "cache/staging_area.h"
#include "cache/upload_queue.h"
#include "fs/metadata_cache.h"

namespace strata {

class ControlSurface {
 public:
  // Counters of the filesystem core, read when the stats are asked for.
  struct CoreCounters {
    uint64_t inodes = 0;
    uint64_t open_files = 0;
    uint64_t files_being_written = 0;
  };
  using CoreSource = std::function<CoreCounters()>;
  // Extra "name value" lines (cache and S3 counters), provided by the composition root.
  using StatsSource = std::function<std::string()>;

  // `queue` and `staging` are null on a read-only mount. Every reference must outlive *this.
  ControlSurface(MetadataCache& metadata, UploadQueue* queue, StagingArea* staging, CoreSource core,
                 StatsSource extra)
      : metadata_(metadata),
        queue_(queue),
        staging_(staging),
        core_(std::move(core)),
        extra_(std::move(extra)) {}

  // Counters as "name value" lines, for `strata stats`.
  std::string StatsText();
  // One page of the upload queue: a header line, then one line per entry with a sequence
  // number above `after`, as many as fit in `max_bytes` (at least one; a line is at most
  // about 3 KiB: keys of up to 1 KiB, the last error cut to kMaxErrorBytes). An empty page
  // (the header alone) is the end.
  std::string QueueText(uint64_t after, size_t max_bytes);
  static constexpr size_t kMaxErrorBytes = 512;
  // Requeues dead letters; returns how many there were. EROFS on a read-only mount.
  Result<uint64_t> RetryQueue();

 private:
  MetadataCache& metadata_;
  UploadQueue* const queue_;
  StagingArea* const staging_;
  const CoreSource core_;
  const StatsSource extra_;
};

}  // namespace strata
