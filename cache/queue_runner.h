// QueueRunner: performs one queued operation against the ObjectStore, once; retrying, ordering
// and bookkeeping are UploadQueue's business.
//   - kPut below the multipart threshold: one PutObject of the whole staged file.
//   - kPut at or above it: one multipart upload. The upload id and every part the store
//     acknowledges are saved in QueueDb before the next call, so a later attempt, also in a
//     later process, resumes: it lists the upload's parts (ListParts), keeps the saved parts the
//     store still holds with the same ETag and size, and uploads only the others. An upload the
//     store no longer knows is started over, unless the object already carries the multipart
//     ETag of the saved parts (a CompleteMultipartUpload whose reply was lost).
//   - kDelete: one DeleteObject. kCopy: one server-side CopyObject, metadata copied.
//   - kSetMetadata: a HEAD, then one CopyObject of the key onto itself with the metadata
//     replaced: the record's metadata over the object's other user metadata, the object's
//     Content-Type kept (REPLACE would reset it), conditional on the ETag the HEAD saw. When the
//     object is gone or has another ETag than the record's base (options.if_match), or the copy
//     answers 412, another writer replaced it: its version wins, the change is not applied, a
//     warning names the key and the run counts as done (nothing to retry). An object that
//     already carries the metadata is left alone (an earlier attempt's reply was lost). Objects
//     above 5 GiB (one CopyObject's limit) fail for good: UploadPartCopy is not implemented.
// S3 never holds a torn object: a Put is one PutObject or one completed multipart upload, and
// the staged file must have exactly the recorded size before a byte is sent (kCorrupt if not).
//
// Thread-safe: no state besides its references and options, so many workers may run different
// records at once. Never runs two attempts of one record at once (UploadQueue ensures it).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "backends/object_store.h"
#include "base/status.h"
#include "cache/queue_db.h"
#include "cache/queue_record.h"

namespace strata {

class QueueRunner {
 public:
  struct Options {
    uint64_t multipart_threshold = 0;  // puts of at least this many bytes use multipart; > 0
    uint64_t part_size = 0;            // > 0; raised when a file would need over 10000 parts
    int part_parallelism = 4;          // parts of one upload in flight at once
  };

  // Callbacks into the caller; each may be empty.
  struct Hooks {
    std::function<bool()> should_stop{};  // polled between parts: true ends the run (kStopped)
    // Called after the record's multipart progress changed in QueueDb (and in the record).
    std::function<void(const QueueRecord&)> on_progress{};
    std::function<void(uint64_t bytes)> on_bytes_sent{};  // body bytes the store accepted
  };

  enum class Outcome {
    kDone,     // the operation took effect in the store
    kFailed,   // `status` says why; retryable() tells whether trying again may help
    kStopped,  // should_stop said so; progress so far is saved
  };
  struct RunResult {
    Outcome outcome = Outcome::kDone;
    Status status{};
    // kDone: the ETag the store gave the object written (put, multipart upload, copy, metadata
    // change). Empty for a delete and for a metadata change that was not applied.
    std::string etag{};
  };

  // `store` and `db` must outlive *this. REQUIRES: both options > 0.
  QueueRunner(ObjectStore& store, QueueDb& db, Options options);

  // Runs `record` (its multipart fields are updated as progress is saved). `data_path` is the
  // staged file of a kPut.
  RunResult Run(QueueRecord& record, const std::string& data_path, const Hooks& hooks);

  // The part size a new multipart upload of `size` bytes uses.
  uint64_t PartSizeFor(uint64_t size) const;

 private:
  RunResult RunPut(QueueRecord& record, const std::string& data_path, const Hooks& hooks);
  RunResult RunMultipart(QueueRecord& record, int fd, const Hooks& hooks);
  // Forgets the record's upload in QueueDb and in `record`, so the next attempt starts over.
  Status ForgetUpload(QueueRecord& record, const Hooks& hooks);
  RunResult RunSetMetadata(const QueueRecord& record);
  // The object at record.key's ETag when it is the completed upload of record.parts.
  std::optional<std::string> CompletedEarlier(const QueueRecord& record);

  ObjectStore& store_;
  QueueDb& db_;
  const Options options_;
};

}  // namespace strata
