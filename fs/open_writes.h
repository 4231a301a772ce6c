// OpenWrites: the write machinery of the mount. A file opened for writing gets one OpenWrite
// per path, shared by all its handles, whose data is staged in a StagedFile (only the blocks a
// partial write needs are fetched). A commit (flush on every close, fsync) completes and hands
// the staged file to the upload queue, which makes it durable before the call returns; later
// writes restage lazily from what was committed. Small objects (directory markers, symlinks)
// are queued whole. With sync_upload a commit also waits until the object is in S3.
// Thread-safe; see the lock order in filesystem.h.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "cache/staging_area.h"
#include "cache/upload_queue.h"
#include "fs/merged_view.h"
#include "fs/metadata_cache.h"
#include "fs/open_write.h"

namespace strata {

// The defaults a file without stored attributes shows (mode bits, owner).
struct AttributeDefaults {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t umask = 0022;
};

class OpenWrites {
 public:
  // Every reference must outlive *this.
  OpenWrites(OpenWriteTable& table, MergedView& view, MetadataCache& metadata, StagingArea& staging,
             UploadQueue& queue, AttributeDefaults defaults, bool sync_upload,
             Clock::Duration sync_timeout)
      : table_(table),
        view_(view),
        metadata_(metadata),
        staging_(staging),
        queue_(queue),
        defaults_(defaults),
        sync_upload_(sync_upload),
        sync_timeout_(sync_timeout) {}

  // The open write of `path`, made from what the path holds now when there is none.
  Result<std::shared_ptr<OpenWrite>> GetOrMake(const std::string& path);
  // Its staged file, restaged from the committed content when it has none. REQUIRES: commit_mu
  // held (shared or exclusive).
  Result<std::shared_ptr<StagedFile>> Staged(OpenWrite& write);
  // Hands the file's changes to the queue. No-op when clean or unlinked. With `await` and
  // sync_upload, waits for the upload too.
  Status Commit(OpenWrite& write, bool await = true);
  // REQUIRES: write.commit_mu held exclusively.
  Status CommitLocked(OpenWrite& write, bool await = true);
  // A writer handle closed: commits what is left once no writer remains.
  void ReleaseWriter(const std::shared_ptr<OpenWrite>& write);
  // Queues a put of `content` (a directory marker, a symlink) with `info`'s attributes; returns
  // its sequence number (for Await, once the name locks are released).
  Result<uint64_t> PutSmall(const std::string& key, const std::string& content,
                            const EntryInfo& info);
  // Queues the change of a file's attributes (mode, owner, mtime) to `info`'s as a server-side
  // copy of its object onto itself, without uploading the body. For a file whose content is
  // S3's object `base_etag` (no open write, no pending content). Returns its sequence number
  // (for Await, once the name lock is released). REQUIRES: the caller holds the name's lock.
  Result<uint64_t> SetMetadata(const std::string& path, const EntryInfo& info,
                               const std::string& base_etag);
  // With sync_upload: waits until `sequence` is in S3. Else returns its status.
  Status Await(Result<uint64_t> sequence);
  // The write's attributes as s3fs headers.
  PutOptions PutOptionsFor(const EntryInfo& info) const;

 private:
  OpenWriteTable& table_;
  MergedView& view_;
  MetadataCache& metadata_;
  StagingArea& staging_;
  UploadQueue& queue_;
  const AttributeDefaults defaults_;
  const bool sync_upload_;
  const Clock::Duration sync_timeout_;
};

}  // namespace strata
