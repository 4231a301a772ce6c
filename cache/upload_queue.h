// UploadQueue: the persistent, ordered queue that carries acknowledged writes to the object
// store and survives crashes (kill -9) and restarts. The write path hands it staged files on
// fsync and close; workers upload them in the background.
//
// Durability. When EnqueuePut, EnqueueDelete, EnqueueRename or EnqueueSetMetadata returns a
// sequence number, the operation is durable: for a put, the staged file was fsynced (again),
// renamed into <dir>/data and that directory fsynced; for every call, the queue entries (and the
// removal of the entries it dropped) were committed to SQLite in one transaction with
// synchronous=FULL, so the WAL is fsynced. It survives kill -9 and power loss, and the next Open
// replays it. The staging directory the file left is not fsynced: after a power loss the file may
// show up there again, as a leftover its owner deletes. Files of dropped entries are deleted after
// the commit; a crash in between leaves files that the next Open deletes. When a call returns an
// error, nothing was queued and a put's staged file is back at its path if at all possible.
//
// Ordering (guarantee 7). Operations on one key reach the store in enqueue order, one at a
// time; different keys proceed in parallel on `workers` threads. A put or delete that has not
// started is dropped by a newer put or delete of its key; a rename moves a pending put to its
// new key; a metadata change merges with a pending one of its key and is dropped by a newer put
// or delete; see queue_schedule.h for the exact rules. Nothing deleted resurrects and no older
// version lands after a newer one. A dead entry holds back later entries of its keys.
//
// Objects are never torn (guarantee 3): a put is one PutObject, or from multipart_threshold on
// one multipart upload whose id and acknowledged parts are saved after each part, so a restart
// resumes it (see queue_runner.h). Uploads under owned_prefixes that the queue does not know
// (left by a crash) are aborted at Open.
//
// Failures. Retryable (transient) failures are retried with capped exponential backoff and full
// jitter (options.retry, timed on options.clock). A failed entry is parked until its next
// attempt, not slept on: no worker waits for it, and other keys upload meanwhile. Entries that
// never failed go before retries, and at most workers - 1 workers (at least one) run retries at
// once, so keys that fail again and again (a key the server rejects with 500 forever) never
// stop the others. Failures are logged at warn on attempts 1, 2, 4, 8, ...; entries failing
// for stuck_attempts attempts or stuck_after are counted and listed as stuck. Other failures,
// and running out of attempts, make the entry dead: its data is kept until RetryDeadLetters or
// DiscardDeadLetter. Attempts and the last error are saved with the entry.
//
// Life cycle. Open replays the database: entries that were being uploaded at a crash are pending
// again; an entry whose staged file is missing or has the wrong size becomes dead with an
// error that says so (never dropped silently). Start starts the workers (a caller may replay,
// i.e. answer Pending, before serving). The destructor stops the workers after their
// current store call; nothing is lost: unfinished work is redone or resumed at the next Open.
//
// Thread-safe: every method may be called from any thread, except that the destructor must not
// run while other calls are in progress. Enqueue calls do file and SQLite I/O and serialize on
// one another; queries only take the in-memory lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/object_store.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "base/posix_file.h"
#include "base/retry.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "cache/queue_db.h"
#include "cache/queue_dir.h"
#include "cache/queue_record.h"
#include "cache/queue_runner.h"
#include "cache/queue_schedule.h"

namespace strata {

struct UploadQueueOptions {
  std::string dir{};  // created (with parents) mode 0700; holds queue.db and data/
  int workers = 4;    // uploads in parallel (different keys)
  // How long Open waits for another queue on dir (a daemon still draining) to let go.
  Clock::Duration lock_wait{0};
  uint64_t multipart_threshold = 64ull << 20;  // puts of at least this many bytes: multipart
  uint64_t part_size = 16ull << 20;            // raised when a file would need > 10000 parts
  int part_parallelism = 4;                    // parts of one multipart upload in flight at once
  // max_attempts == 0: retry transient failures forever.
  RetryPolicy retry{.max_attempts = 0,
                    .base_delay = std::chrono::milliseconds(100),
                    .max_delay = std::chrono::milliseconds(30000)};
  // An entry that failed this many times in a row, or has kept failing this long, is stuck.
  uint32_t stuck_attempts = 5;
  Clock::Duration stuck_after = std::chrono::seconds(60);
  Clock* clock = nullptr;  // backoff timing; nullptr: a SystemClock. Must outlive the queue.
  uint64_t seed = 0;       // backoff jitter; 0: random
  // Key prefixes whose multipart uploads belong to this queue alone: at Open, uploads under them
  // that the database does not reference are aborted. "" is the whole bucket. Empty: no sweep.
  std::vector<std::string> owned_prefixes{};
  // Called by a worker, without the queue's locks held, after `record` took effect in the
  // store and before the entry counts as done (for Pending, WaitUploaded and Drain). Lets a
  // cache learn the new state of record.key. `etag`: the ETag the store gave the object written
  // (put, copy, metadata change); empty for a delete and for a metadata change that another
  // writer's version superseded (not applied).
  std::function<void(const QueueRecord& record, const std::string& etag)> on_done{};
};

struct UploadQueueStats {
  uint64_t depth = 0;            // entries not dead (pending or uploading)
  uint64_t dead_letters = 0;     // dead entries
  uint64_t staged_bytes = 0;     // bytes of the staged files the queue holds (dead ones too)
  uint64_t bytes_uploaded = 0;   // body bytes the store accepted (puts and parts)
  uint64_t uploads_done = 0;     // entries that took effect in the store
  uint64_t retries = 0;          // failed attempts that were retried
  uint64_t stuck = 0;            // entries not dead that keep failing (see stuck_attempts)
  uint64_t backoff = 0;          // entries waiting for their next attempt after a failure
  uint64_t dropped = 0;          // entries superseded, cancelled, retargeted or discarded
  uint64_t orphans_aborted = 0;  // multipart uploads aborted at Open
};

class UploadQueue {
 public:
  // Opens (or creates) the queue in options.dir and replays it; workers are not started.
  // `store` must outlive the queue. kCorrupt for a database that is not a usable queue (it is
  // left in place: it may hold acknowledged writes); kIo when another queue uses the directory.
  static Result<std::unique_ptr<UploadQueue>> Open(ObjectStore& store, UploadQueueOptions options);

  ~UploadQueue();
  UploadQueue(const UploadQueue&) = delete;
  UploadQueue& operator=(const UploadQueue&) = delete;

  // Starts the workers. Calling it again does nothing.
  void Start();

  // Queues an upload of the staged file at `staged_path` (exactly `size` bytes, fsynced by the
  // caller, on the queue's filesystem) as `key`. The queue takes the file over: it moves it into
  // its data directory and deletes it once it is uploaded or superseded. Returns the entry's
  // sequence number once durable (see the top). kInvalidArgument for a bad key (empty, over 1024
  // bytes), a size mismatch or a file on another filesystem.
  Result<uint64_t> EnqueuePut(std::string key, std::string staged_path, uint64_t size,
                              PutOptions options = {});

  // Queues the deletion of `key`, dropping its pending puts. Returns a sequence number once
  // durable; it may name a pending delete of the key that already does the work.
  Result<uint64_t> EnqueueDelete(std::string key);

  // Queues the rename of `from` to `to` (see queue_schedule.h). Returns, once durable, a
  // sequence number that names the whole rename for WaitUploaded. kNotFound when `from` is being
  // deleted. from == to does nothing.
  Result<uint64_t> EnqueueRename(std::string from, std::string to);

  // Queues a change of the user metadata of the object `key` (of `size` bytes) without
  // uploading its body: a CopyObject onto itself that lays `metadata` over the object's, unless
  // the object no longer has the ETag `base_etag` (another writer replaced it and wins; see
  // queue_runner.h). A newer metadata change of the key merges with a pending one; a newer put
  // or delete drops it. Returns a sequence number once durable.
  Result<uint64_t> EnqueueSetMetadata(std::string key, Metadata metadata, std::string base_etag,
                                      uint64_t size);

  // Waits until the operation `sequence` took effect in the store (OK), until it or an entry
  // that replaced it is dead (that error), or `timeout` passes (kTransient). An operation that
  // was superseded or retargeted is done once what replaced it is done. Numbers from before the
  // last Open count as done unless they are still queued. The timeout is real time.
  Status WaitUploaded(uint64_t sequence, Clock::Duration timeout);

  // Waits until nothing is left to upload. OK when the queue is empty (and the staged files of
  // finished entries are deleted); kTransient when `timeout` passed first (the rest stays queued
  // and persisted); kIo naming the dead letters when only dead entries and the entries behind
  // them are left; kInvalidArgument before Start.
  Status Drain(Clock::Duration timeout);

  // What the store will hold at `key` once the queue has run (read-your-writes, also after a
  // restart). A PendingPut's staged file is deleted when the entry is uploaded or superseded:
  // open it, and on ENOENT ask again (or read the store).
  PendingState Pending(const std::string& key);
  // The content the newest pending put of `key` will upload, opened while the queue holds it (it
  // cannot be uploaded and deleted in between), so that a reader never sees its file vanish.
  // nullopt when the key's pending state is not a put.
  struct PendingContent {
    std::shared_ptr<Fd> fd;
    uint64_t size = 0;
    PutOptions options{};
  };
  Result<std::optional<PendingContent>> OpenPending(const std::string& key);
  // Pending() of every key under `prefix` with queued operations, in key order (for listings).
  std::vector<std::pair<std::string, PendingState>> PendingUnder(const std::string& prefix);

  // Entries in sequence order, for `strata queue`: those after sequence number `after`, at
  // most `limit` of them (a page; the next one starts after the last sequence returned).
  std::vector<QueueEntryView> List(uint64_t after = 0, size_t limit = SIZE_MAX);

  // Puts every dead entry back to pending with zero attempts.
  Status RetryDeadLetters();
  // Drops the dead entry `sequence` and its data for good; entries behind it may then run.
  // kInvalidArgument when it is not dead.
  Status DiscardDeadLetter(uint64_t sequence);

  UploadQueueStats stats();

 private:
  UploadQueue(ObjectStore& store, UploadQueueOptions options, std::unique_ptr<QueueDir> dir,
              std::unique_ptr<QueueDb> db);

  // Loads the database into memory; collects the multipart upload ids it references.
  Status Replay(std::set<std::string>* upload_ids);
  // Aborts uploads under options_.owned_prefixes whose id is not in `ours`. Best effort.
  void AbortOrphanUploads(const std::set<std::string>& ours);
  // Makes `plan` durable and applies it. Returns its ticket.
  Result<uint64_t> CommitPlan(const QueueSchedule::Plan& plan) REQUIRES(enqueue_mu_);
  void CleanUp(const QueueSchedule::Released& released) EXCLUDES(mu_);
  void WorkerLoop();
  // Makes one attempt at a claimed entry: it is then done, dead, parked for a retry, or (the
  // queue stopping) queued again.
  void RunClaimed(QueueRecord record, uint64_t run_id) EXCLUDES(mu_);
  // The clock's reading in milliseconds: the time base of parked entries.
  int64_t MonoMs();
  // The clock's wall time in milliseconds since the Unix epoch: when an entry was enqueued.
  int64_t UnixMs();

  ObjectStore& store_;
  const UploadQueueOptions options_;
  const std::unique_ptr<Clock> owned_clock_;
  Clock* const clock_;
  const std::unique_ptr<QueueDir> dir_;
  const std::unique_ptr<QueueDb> db_;
  QueueRunner runner_;
  std::atomic<bool> stopping_{false};  // written under mu_; read without it by runs
  std::atomic<uint64_t> bytes_uploaded_{0};

  // Lock order: enqueue_mu_ before mu_. enqueue_mu_ serializes the calls that plan and commit a
  // change (Enqueue*, RetryDeadLetters, DiscardDeadLetter); it is held across their file and
  // SQLite I/O, which only such calls wait for. mu_ guards the memory state; it is never held
  // across I/O or a store call.
  Mutex enqueue_mu_;
  Mutex mu_;
  CondVar work_cv_;     // runnable entries, uploads to abort, or stopping
  CondVar changed_cv_;  // an entry finished, died or was dropped
  QueueSchedule schedule_ GUARDED_BY(mu_);
  std::vector<MultipartUpload> to_abort_ GUARDED_BY(mu_);
  std::mt19937_64 rng_ GUARDED_BY(mu_);
  std::string file_prefix_ GUARDED_BY(mu_);  // data file names of this run: "<n>-<counter>"
  uint64_t file_counter_ GUARDED_BY(mu_) = 0;
  bool started_ GUARDED_BY(mu_) = false;
  uint64_t cleanups_running_ GUARDED_BY(mu_) = 0;  // completed entries whose files go next
  int retries_running_ GUARDED_BY(mu_) = 0;        // workers running an entry that failed before
  bool timer_running_ GUARDED_BY(mu_) = false;     // a worker sleeps until the next wake
  uint64_t uploads_done_ GUARDED_BY(mu_) = 0;
  uint64_t retries_ GUARDED_BY(mu_) = 0;
  uint64_t dropped_ GUARDED_BY(mu_) = 0;
  uint64_t orphans_aborted_ GUARDED_BY(mu_) = 0;
  std::vector<std::thread> workers_;  // only Start and the destructor touch it
};

}  // namespace strata
