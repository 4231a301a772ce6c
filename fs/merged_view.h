// MergedView: what the tree looks like to this mount: S3's listing (through the metadata cache)
// with the upload queue's pending operations and the open writes laid over it, so that every
// change shows at once (read-your-writes), also after a restart, since the queue is persistent.
// Without a queue it is S3's view alone. Thread-safe; holds no lock of its own.
//
// Order of sources: the queue's state is read before S3's. An operation that finishes in
// between is then still seen as pending, and S3's answer, older or newer, is corrected by it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cache/object_version.h"
#include "cache/read_stream.h"
#include "cache/staged_file.h"
#include "cache/upload_queue.h"
#include "fs/metadata_cache.h"
#include "fs/open_write.h"

namespace strata {

// Makes a reader of one object version (the chunk cache, then S3).
using StreamFactory = std::function<std::unique_ptr<ReadStream>(const ObjectVersion&)>;

class MergedView {
 public:
  // `queue` may be null (a read-only mount). Every reference must outlive *this.
  MergedView(MetadataCache& metadata, UploadQueue* queue, OpenWriteTable& writes,
             StreamFactory streams)
      : metadata_(metadata), queue_(queue), writes_(writes), streams_(std::move(streams)) {}

  // What `path` is now: an open write, else the queue's pending state, else S3. nullopt when
  // nothing is there.
  Result<std::optional<EntryInfo>> Resolve(const std::string& path);
  // The listing of `dir`. `check_self`: when S3 does not know `dir`, check that the queue makes
  // it exist (else an empty listing).
  Result<std::shared_ptr<const DirListing>> List(const std::string& dir, bool check_self = true);
  // The committed content of `path` (pending upload, pending rename's source, or S3), for
  // staging a write; *size its length. An empty reader when the path holds nothing.
  Result<SourceReader> SourceOf(const std::string& path, uint64_t* size);

  MetadataCache& metadata() { return metadata_; }

 private:
  // The entry a pending put or copy will leave; nullopt for a copy whose source is gone.
  Result<std::optional<EntryInfo>> InfoFromPending(const PendingState& pending);

  MetadataCache& metadata_;
  UploadQueue* const queue_;
  OpenWriteTable& writes_;
  const StreamFactory streams_;
};

}  // namespace strata
