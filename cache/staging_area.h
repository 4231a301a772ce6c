// StagingArea: the local directory where files open for writing are staged (see StagedFile)
// until the upload queue takes them over, and the byte budget those files share. Thread-safe:
// any method from any thread.
//
// Layout of dir (directories 0700, files 0600):
//   LOCK                flock held while the area is open: one StagingArea per dir at a time
//   <n>-<hint>.staged   one StagedFile each; <hint> is the creator's name hint, made file-safe
// Open deletes every *.staged file it finds: it is a leftover of an earlier run that nobody took
// over. A taker (the upload queue) must Detach a file and move it out of dir before it relies on
// the file surviving a restart.
//
// Budget. Bytes in use are the sizes of all attached staged files, holes included: a staged file
// is uploaded as that many bytes and is completed (every absent byte fetched) before upload, so
// its whole size will be needed on disk. A file's bytes are reserved before it grows to cover
// them (Create, a Write past the end, Truncate up) and allocated on disk right away with
// fallocate(2), so that fetching absent bytes later never needs new space: Complete, Sync and
// Detach never fail for lack of space (on a filesystem without fallocate they still can, with
// kNoSpace from the write itself). A growth that would take bytes in use above max_bytes, or
// leave less than min_free_bytes free on the filesystem holding dir, fails with kNoSpace and
// changes nothing: no byte written, size and bytes in use as before.
//
// Why fail instead of blocking: the design says writers block or get ENOSPC, and data is never
// dropped. Blocking a FUSE write until the upload queue frees space can hang the application for
// as long as S3 is unreachable, and the queue may itself wait on the very file being written.
// Failing fast hands the decision to the caller (the fs layer may wait and retry); a kNoSpace is
// always reported on the write that could not be stored, never later on close, so an
// application that checks its writes loses nothing.
//
// Lifetime: every StagedFile keeps its StagingArea alive (shared_ptr), so they may be released
// in any order. Destroying an attached StagedFile deletes its file and gives its bytes back;
// after StagedFile::Detach the area neither counts nor deletes the file.
//
// Locking: mu_ guards the counters. It is a leaf lock (nothing else is taken while it is held)
// and is never held during I/O or while calling free_space_probe. StagedFile calls into the
// area with its own gate_ or grow_mu_ held, never with its mu_ held.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/mutex.h"
#include "base/posix_file.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/staged_file.h"

namespace strata {

struct StagingOptions {
  // Created (with parents) if missing; tightened to 0700 if wider.
  std::string dir{};
  // How long Open waits for another user of dir (a daemon still shutting down) to let go.
  std::chrono::milliseconds lock_wait{0};
  // Limit of bytes in use over all attached staged files; must be > 0.
  uint64_t max_bytes{};
  // Free space to keep on the filesystem holding dir; 0 disables the check.
  uint64_t min_free_bytes{};
  // Free bytes on the filesystem holding dir (statvfs f_bavail * f_frsize when empty). Called
  // without the area's lock held, from any thread; tests replace it to simulate a full disk.
  std::function<uint64_t()> free_space_probe{};
  // Presence granularity of staged files: a partial write of an absent block fetches the rest of
  // that block first. 1 MiB: one GET of it costs mostly latency, and it divides the fetcher's
  // 4 MiB chunks so reads through the chunk cache stay aligned. Must be > 0.
  uint64_t block_size{1ull << 20};
  // Largest single source read when filling runs of absent blocks (Read, Complete); rounded up
  // to whole blocks. Bounds the buffer each filling thread holds.
  uint64_t max_fetch_bytes{8ull << 20};
};

class StagingArea : public std::enable_shared_from_this<StagingArea> {
 public:
  // Prepares dir (0700), locks it and deletes leftover staged files.
  static Result<std::shared_ptr<StagingArea>> Open(StagingOptions options);

  // Releases the lock on dir. Runs only after every StagedFile of the area is gone.
  ~StagingArea();
  StagingArea(const StagingArea&) = delete;
  StagingArea& operator=(const StagingArea&) = delete;

  // Stages a file whose current content is `initial_size` bytes readable through `source`
  // (bytes [0, initial_size) of the object being overwritten). All of them start absent. For a
  // new file or an O_TRUNC open pass 0 and an empty source. `name_hint` (e.g. the object key)
  // only makes the file name readable. kNoSpace when initial_size does not fit the budget;
  // kInvalidArgument when initial_size > 0 without a source. `source` is called from the
  // threads that call the StagedFile, possibly several at once.
  Result<std::shared_ptr<StagedFile>> Create(const std::string& name_hint, uint64_t initial_size,
                                             SourceReader source);

  const StagingOptions& options() const { return options_; }
  // Bytes in use by attached staged files (see Budget above).
  uint64_t used_bytes() const;
  // Attached staged files.
  uint64_t file_count() const;

 private:
  friend class StagedFile;

  StagingArea(StagingOptions options, DirLock lock);

  uint64_t FreeSpace() const;
  std::string NewFilePath(const std::string& name_hint);

  // Reserves `bytes` for a file about to grow, or fails with kNoSpace changing nothing.
  // REQUIRES: a matching EndGrowth once the file has grown or failed to.
  Status BeginGrowth(uint64_t bytes) EXCLUDES(mu_);
  // Ends a BeginGrowth: the bytes are now allocated in the file (`kept`) or given back.
  void EndGrowth(uint64_t bytes, bool kept) EXCLUDES(mu_);
  // Gives back bytes of a file that shrank; with `file_gone` the file no longer counts either
  // (destroyed or detached).
  void Release(uint64_t bytes, bool file_gone) EXCLUDES(mu_);

  const StagingOptions options_;
  const DirLock dir_lock_;  // held for the lifetime of this object

  mutable Mutex mu_;
  uint64_t used_ GUARDED_BY(mu_) = 0;     // bytes in use, including growths in progress
  uint64_t pending_ GUARDED_BY(mu_) = 0;  // of which reserved and not allocated on disk yet
  uint64_t files_ GUARDED_BY(mu_) = 0;
  uint64_t next_file_number_ GUARDED_BY(mu_) = 1;
};

}  // namespace strata
