// The vocabulary of the upload queue, shared by UploadQueue, QueueSchedule, QueueDb, QueueDir
// and QueueRunner: what one queued operation is (QueueRecord), what the filesystem may read
// while it is pending (PendingState), and how an operator sees it (QueueEntryView).
// Plain values without synchronization; copy them freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/object_store.h"
#include "base/status.h"

namespace strata {

// What a queued operation does to the store. Values are stored in QueueDb: never renumber.
enum class QueueOp : int {
  kPut = 1,     // upload a staged file as `key` (one PutObject or one multipart upload)
  kDelete = 2,  // delete `key`
  kCopy = 3,    // server-side copy of `source` to `key` (the first half of a rename)
  // Replaces the user metadata of the object `key` by a server-side copy onto itself (chmod,
  // chown, utimens of a file whose content is not pending): no body is uploaded.
  kSetMetadata = 4,
};

inline std::string_view QueueOpName(QueueOp op) {
  switch (op) {
    case QueueOp::kPut:
      return "put";
    case QueueOp::kDelete:
      return "delete";
    case QueueOp::kCopy:
      return "copy";
    case QueueOp::kSetMetadata:
      return "set-metadata";
  }
  return "unknown";
}

// Whether an operation still waits for a worker or failed for good. Stored in QueueDb. Whether
// a worker is running it right now is never stored: after a crash every entry that is not
// dead is pending again.
enum class QueueState : int {
  kPending = 0,
  kDead = 1,  // failed with a non-retryable error or ran out of attempts; data kept
};

// One queued operation, as QueueDb stores it.
struct QueueRecord {
  uint64_t seq = 0;  // order of enqueue; unique, never reused
  QueueOp op = QueueOp::kPut;
  std::string key{};        // the key written (put, copy) or deleted
  std::string source{};     // kCopy: the key copied from; empty otherwise
  std::string data_file{};  // kPut: the staged file's name under <queue dir>/data
  // kPut: bytes of the staged file. kSetMetadata: the object's size when it was enqueued.
  uint64_t size = 0;
  // kPut: content type and metadata of the object. kSetMetadata: `metadata` is the new user
  // metadata (it replaces the names it holds and keeps the object's others) and `if_match` the
  // ETag the change was based on: an object with another ETag was replaced by another writer
  // and keeps its metadata. Empty if_match: based on whatever the SetMetadata of `key` that was
  // already running at enqueue leaves (see QueueSchedule).
  PutOptions options{};
  int64_t enqueued_unix_ms = 0;
  QueueState state = QueueState::kPending;
  uint32_t attempts = 0;  // failed attempts so far
  ErrorKind error_kind = ErrorKind::kOk;
  std::string last_error{};  // Status::ToString() of the last failure
  // Multipart progress of a kPut: the store's upload id (empty: none started), the part size
  // it was started with and the parts the store acknowledged, in ascending part number.
  std::string upload_id{};
  uint64_t part_size = 0;
  std::vector<PartInfo> parts{};
};

// The newest pending content of a key that a Put will upload: read it from `staged_path`.
struct PendingPut {
  uint64_t sequence = 0;
  std::string staged_path{};
  uint64_t size = 0;
  PutOptions options{};
};

// What the store will hold at a key once the queue has run, as far as the queue decides it.
struct PendingState {
  enum class Kind {
    kNone,      // nothing pending: the store's object (or its absence) is current
    kPut,       // `put` holds the content
    kDeleted,   // the key is being deleted
    kCopy,      // a pending rename copies the store's object `copy_source` to this key
    kMetadata,  // the store's object stays, with `metadata` laid over its user metadata
  };
  Kind kind = Kind::kNone;
  PendingPut put{};  // kPut; put.options.metadata includes a later pending metadata change
  std::string copy_source{};
  // kMetadata, and kCopy when `copy_source` has a pending metadata change: the s3fs attributes
  // (mode, uid, gid, mtime) the object will carry; lay them over the store's (ApplyPosixMetadata).
  std::optional<Metadata> metadata{};
};

enum class QueueEntryState {
  kPending,    // waiting for a worker (or behind another entry of its key)
  kUploading,  // a worker is at it
  kBackoff,    // failed; waits for its next attempt
  kStuck,      // not dead, but failing again and again: look at last_error
  kDead,       // failed for good; kept until retried or discarded
};

inline std::string_view QueueEntryStateName(QueueEntryState state) {
  switch (state) {
    case QueueEntryState::kPending:
      return "pending";
    case QueueEntryState::kUploading:
      return "uploading";
    case QueueEntryState::kBackoff:
      return "backoff";
    case QueueEntryState::kStuck:
      return "stuck";
    case QueueEntryState::kDead:
      return "dead";
  }
  return "unknown";
}

// One entry as `strata queue` shows it.
struct QueueEntryView {
  uint64_t sequence = 0;
  QueueOp op = QueueOp::kPut;
  std::string key{};
  std::string source{};  // kCopy only
  uint64_t size = 0;     // kPut; kSetMetadata: the object's size
  std::chrono::system_clock::time_point enqueued_at{};
  std::chrono::milliseconds age{0};
  uint32_t attempts = 0;
  std::string last_error{};
  QueueEntryState state = QueueEntryState::kPending;
  uint32_t parts_done = 0;  // multipart puts: parts the store holds so far
  std::optional<std::chrono::milliseconds> next_attempt_in{};  // when waiting after a failure
};

}  // namespace strata
