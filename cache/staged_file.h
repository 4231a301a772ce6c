// StagedFile: one file open for writing, staged in a local file of a StagingArea until it is
// uploaded as one object. Created by StagingArea::Create. Thread-safe: FUSE may call any method
// on one file from several threads at once.
//
// Presence. The file is cut into blocks of StagingOptions::block_size. A block is present (the
// local file holds its content) or absent (its content is still the object's, read through the
// SourceReader given at creation). Only blocks that hold bytes of the object can be absent; bytes
// beyond the object's end (a write past the end, Truncate up) are present from the start, as
// zeros until written. Presence is tracked in memory only.
//   - Write fetches, for each absent block it covers only partially, the parts it does not cover
//     (one source call per such block, so a write inside one block fetches all of the block's
//     other bytes), then writes. Blocks it covers whole are never fetched.
//   - Read serves present bytes from the local file. Absent blocks in its range are fetched (in
//     runs of up to max_fetch_bytes per source call), written to the local file and kept.
//   - Complete fetches every block still absent, after which the local file holds the whole
//     content and can be uploaded as it is.
// A failed fetch leaves the blocks absent and is retried by the next call that needs them.
//
// Space. The file's size is reserved in the area and allocated on disk whenever it grows, so
// only growth can fail with kNoSpace (see StagingArea); fetching never needs new space.
//
// Errors. Local I/O failures are kNoSpace (ENOSPC, EDQUOT) or kIo; source errors pass through
// unchanged. A failed call leaves size(), the content and the area's accounting as they were
// (a failed Read or Complete may keep blocks it fetched before the failure, which changes only
// where the bytes come from). The bytes of a Write that fails on the local write itself (kIo)
// may be partly written, as after a failed write(2); one refused by the budget (kNoSpace) or
// failing on a fetch writes nothing.
//
// Concurrency. Writes to disjoint ranges all land, also when they share an absent block. Writes
// to overlapping ranges land in some order. A Read concurrent with a Write to the same range sees
// old bytes, new ones or a mix. Truncate and Detach wait for calls in progress (including their
// source reads) and hold off new ones.
//
// Locking, in lock order:
//   gate_     shared by Read, Write, Complete and Sync across their I/O; exclusive by Truncate
//             and Detach, which change the size or close the file under everyone else.
//   grow_mu_  held by a Write that extends the file, across its whole I/O: extending writes are
//             serialized, and a failed one is rolled back before anyone can see the new size.
//   mu_       guards the in-memory state; never held across I/O or a source call.
// StagingArea's lock is taken with gate_ or grow_mu_ held, never with mu_ held. Blocks in
// claimed_ belong to the thread that claimed them (to fill and/or write them) until it marks
// them present or gives them back; any other call touching them waits on cv_.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/interval_set.h"

namespace strata {

class StagingArea;

// Reads bytes [offset, offset + out.size()) of the object a staged file started from and
// returns how many: fewer only at the object's end. Must be thread-safe.
using SourceReader = std::function<Result<size_t>(uint64_t offset, std::span<char> out)>;

class StagedFile {
 public:
  // Unless detached: deletes the local file and gives its bytes back to the area.
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Copies bytes [offset, offset + out.size()) into `out` and returns how many: fewer only at
  // the end of the file (0 at or past it). Fetches absent blocks in range (see above). No
  // partial count comes with an error. kInvalidArgument after Detach.
  Result<size_t> Read(uint64_t offset, std::span<char> out);

  // Writes all of `data` at `offset`, growing the file when it ends past size() (the gap reads
  // as zeros). OK means every byte was written to the local file (not that it is durable; see
  // Sync). kNoSpace when the growth does not fit the budget. kInvalidArgument after Detach.
  Status Write(uint64_t offset, std::span<const char> data);

  // Sets the size. Growing adds zeros; shrinking drops bytes for good (absent bytes past the new
  // size are never fetched, even if the file grows again). kNoSpace when growth does not fit.
  Status Truncate(uint64_t new_size);

  // Fetches every absent block, so that the local file holds the whole content. Not durable.
  Status Complete();

  // Complete, then fsync(2) of the local file, then (the first time) fsync of the staging
  // directory (whose own entry StagingArea::Open made durable when it created it). When it
  // returns OK, every Write and Truncate that returned before Sync was called is in the local
  // file at path(), the file holds the whole content (no absent byte), and its data, size and
  // directory entry have reached stable storage: they survive a crash or power loss of this
  // machine on a disk that honours flushes. Calls concurrent with Sync may or may
  // not be included. It does not make the file outlive a restart of strata: StagingArea::Open
  // deletes staged files nobody took over (see Detach).
  Status Sync();

  // Hands the file over (to the upload queue): Syncs it, then closes it. On OK the area neither
  // counts nor deletes the file; it stays at path(), complete and durable as after Sync, and the
  // taker owns it (and must move it out of the staging directory to keep it across restarts).
  // Read, Write, Truncate, Complete, Sync and Detach then fail with kInvalidArgument. On error
  // the file stays attached and usable. With `durable` false it only Completes the file (no
  // fsync): for a taker that fsyncs the file and the directory it moves it into anyway, as
  // UploadQueue::EnqueuePut does; until then a crash may lose it.
  Status Detach(bool durable = true);

  const std::string& path() const { return path_; }
  uint64_t size() const;
  // Written or truncated since the last successful Sync (or since creation when never synced).
  bool dirty() const;
  // No absent block left: the local file holds the whole content.
  bool complete() const;
  bool detached() const;

 private:
  friend class StagingArea;
  using Range = IntervalSet::Range;

  StagedFile(std::shared_ptr<StagingArea> area, std::string path, int fd, uint64_t size,
             SourceReader source);
  // Creates the local file at `path` with `size` bytes, allocated. Returns its descriptor.
  static Result<int> CreateLocalFile(const std::string& path, uint64_t size);

  uint64_t SourceBlocksLocked() const REQUIRES(mu_);  // blocks that may be absent
  Status CheckAttachedLocked() const REQUIRES(mu_);
  // Waits until no block in [first, end) is claimed by another call.
  void WaitUnclaimedLocked(MutexLock& lock, uint64_t first, uint64_t end) REQUIRES(mu_);
  // Claims the absent blocks of [first, end). REQUIRES: none of them is claimed.
  std::vector<Range> ClaimAbsentLocked(uint64_t first, uint64_t end) REQUIRES(mu_);
  // Releases claims: marks them present (`filled`) or gives them back as absent. With
  // `written`, a Write or Truncate has changed the content. Wakes waiters.
  void Settle(const std::vector<Range>& claims, bool filled, bool written) EXCLUDES(mu_);

  // The methods below do I/O. REQUIRES: gate_ held (either way), mu_ not held.
  //
  // Reads source bytes [offset, offset + out.size()), all of them.
  Status ReadSource(uint64_t offset, std::span<char> out) REQUIRES_SHARED(gate_);
  // Copies the source bytes of claimed block runs (cut at source_end) into the local file.
  Status Fill(const std::vector<Range>& runs, uint64_t source_end) REQUIRES_SHARED(gate_);
  // Copies the source bytes of claimed `block` that a write of [offset, end) does not cover.
  Status FillAround(uint64_t block, uint64_t offset, uint64_t end, uint64_t source_end)
      REQUIRES_SHARED(gate_);
  // Claims, fills and writes one Write's range. REQUIRES: [offset, end) within the local file.
  Status WriteRange(uint64_t offset, std::span<const char> data) REQUIRES_SHARED(gate_);
  Status CompleteHeld() REQUIRES_SHARED(gate_);
  Status SyncHeld() REQUIRES_SHARED(gate_);
  // Reserves and allocates the local file up to new_size (size_ unchanged).
  // REQUIRES: grow_mu_ or gate_ exclusively held.
  Status Grow(uint64_t old_size, uint64_t new_size) REQUIRES_SHARED(gate_);
  // Cuts the local file to new_size and gives back the bytes past it (size_ unchanged).
  // REQUIRES: grow_mu_ or gate_ exclusively held.
  Status Shrink(uint64_t new_size) REQUIRES_SHARED(gate_);

  const std::shared_ptr<StagingArea> area_;
  const std::string path_;
  const std::string dir_;
  const SourceReader source_;
  const uint64_t block_size_;
  const uint64_t fetch_blocks_;  // blocks per source call when filling runs

  // Lock order: gate_, grow_mu_, mu_.
  SharedMutex gate_;
  int fd_ GUARDED_BY(gate_) = -1;  // closed (-1) by Detach
  Mutex grow_mu_;

  mutable Mutex mu_;
  CondVar cv_;  // claims settled
  uint64_t size_ GUARDED_BY(mu_) = 0;
  // Bytes this file has reserved in the area: size_, except after a failed rollback of growth
  // left the local file longer.
  uint64_t reserved_ GUARDED_BY(mu_) = 0;
  // Bytes [0, source_end_) are the object's unless written; it only shrinks (Truncate).
  uint64_t source_end_ GUARDED_BY(mu_) = 0;
  IntervalSet present_ GUARDED_BY(mu_);  // blocks below SourceBlocksLocked() that are present
  IntervalSet claimed_ GUARDED_BY(mu_);  // absent blocks being filled or written
  uint64_t write_generation_ GUARDED_BY(mu_) = 0;   // Writes and Truncates done
  uint64_t synced_generation_ GUARDED_BY(mu_) = 0;  // write_generation_ the last Sync covered
  bool dir_synced_ GUARDED_BY(mu_) = false;
  bool detached_ GUARDED_BY(mu_) = false;
};

}  // namespace strata
