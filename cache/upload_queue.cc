#include "cache/upload_queue.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "backends/s3_keys.h"

namespace strata {
namespace {

// The worker that keeps time for parked entries sleeps in slices this long, so that the
// destructor need not wait for a long one; the others look again as often.
constexpr int64_t kSleepSliceMs = 50;

bool PowerOfTwo(uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

Status TimedOut(std::string what) { return Status::Transient("upload queue: " + what); }

}  // namespace

Result<std::unique_ptr<UploadQueue>> UploadQueue::Open(ObjectStore& store,
                                                       UploadQueueOptions options) {
  if (options.workers < 1) return Status::InvalidArgument("upload queue: workers must be >= 1");
  if (options.part_size == 0 || options.multipart_threshold == 0) {
    return Status::InvalidArgument("upload queue: part_size and multipart_threshold must be > 0");
  }
  if (options.retry.max_attempts < 0) {
    return Status::InvalidArgument("upload queue: negative retry.max_attempts");
  }
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<QueueDir> dir,
                          QueueDir::Open(options.dir, options.lock_wait));
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<QueueDb> db, QueueDb::Open(dir->DbPath()));
  std::unique_ptr<UploadQueue> queue(
      new UploadQueue(store, std::move(options), std::move(dir), std::move(db)));
  std::set<std::string> upload_ids;
  STRATA_RETURN_IF_ERROR(queue->Replay(&upload_ids));
  queue->AbortOrphanUploads(upload_ids);
  return queue;
}

UploadQueue::UploadQueue(ObjectStore& store, UploadQueueOptions options,
                         std::unique_ptr<QueueDir> dir, std::unique_ptr<QueueDb> db)
    : store_(store),
      options_(std::move(options)),
      owned_clock_(options_.clock == nullptr ? std::make_unique<SystemClock>() : nullptr),
      clock_(options_.clock != nullptr ? options_.clock : owned_clock_.get()),
      dir_(std::move(dir)),
      db_(std::move(db)),
      runner_(store_, *db_,
              QueueRunner::Options{.multipart_threshold = options_.multipart_threshold,
                                   .part_size = options_.part_size,
                                   .part_parallelism = options_.part_parallelism}),
      schedule_(dir_->data_dir()),
      rng_(options_.seed != 0 ? options_.seed : std::random_device()()) {}

UploadQueue::~UploadQueue() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.NotifyAll();
  changed_cv_.NotifyAll();
  for (std::thread& worker : workers_) worker.join();
}

Status UploadQueue::Replay(std::set<std::string>* upload_ids) {
  STRATA_ASSIGN_OR_RETURN(QueueDb::Contents contents, db_->Load());
  std::vector<QueueRecord>& records = contents.records;
  std::set<std::string> referenced;
  uint64_t missing = 0;
  for (QueueRecord& record : records) {
    if (!record.upload_id.empty()) upload_ids->insert(record.upload_id);
    if (record.op != QueueOp::kPut) continue;
    referenced.insert(record.data_file);
    if (record.state == QueueState::kDead) continue;
    Result<uint64_t> size = dir_->SizeOf(record.data_file);
    Status problem;
    if (!size.ok()) {
      problem = Status::Io("staged file " + dir_->DataPath(record.data_file) + " of '" +
                           record.key + "' is missing at open: " + size.status().message());
    } else if (*size != record.size) {
      problem =
          Status::Corrupt("staged file " + dir_->DataPath(record.data_file) + " of '" + record.key +
                          "' has " + std::to_string(*size) + " bytes at open; the queue recorded " +
                          std::to_string(record.size));
    }
    if (problem.ok()) continue;
    ++missing;
    spdlog::error("upload queue {}: entry {} is now a dead letter: {}", dir_->root(), record.seq,
                  problem.ToString());
    Status saved = db_->SetOutcome(record.seq, QueueState::kDead, record.attempts, problem);
    if (!saved.ok()) {
      spdlog::warn("upload queue {}: cannot save that: {}", dir_->root(), saved.ToString());
    }
    record.state = QueueState::kDead;
    record.error_kind = problem.kind();
    record.last_error = problem.ToString();
  }
  const uint64_t removed = dir_->RemoveUnreferenced(referenced);
  const size_t count = records.size();
  MutexLock lock(mu_);
  schedule_.Load(std::move(records), contents.next_seq);
  // Every name of an earlier run is either referenced or was just removed, and any run that
  // kept a file committed a larger next_seq than this one starts from: names cannot collide.
  file_prefix_ = std::to_string(schedule_.next_seq()) + "-";
  if (count > 0 || removed > 0) {
    spdlog::info(
        "upload queue {}: replayed {} entries ({} dead, {} with a missing staged file); removed "
        "{} unreferenced files",
        dir_->root(), count, schedule_.dead(), missing, removed);
  }
  return Status::Ok();
}

void UploadQueue::AbortOrphanUploads(const std::set<std::string>& ours) {
  std::set<std::string> handled;
  uint64_t aborted = 0;
  for (const std::string& prefix : options_.owned_prefixes) {
    Result<std::vector<MultipartUpload>> uploads = store_.ListMultipartUploads(prefix);
    if (!uploads.ok()) {
      spdlog::warn("upload queue {}: cannot list multipart uploads under '{}': {}", dir_->root(),
                   prefix, uploads.status().ToString());
      continue;
    }
    for (const MultipartUpload& upload : *uploads) {
      if (ours.count(upload.upload_id) != 0 || !handled.insert(upload.upload_id).second) continue;
      Status st = store_.AbortMultipartUpload(upload.key, upload.upload_id);
      if (st.ok()) {
        ++aborted;
        spdlog::info("upload queue {}: aborted abandoned multipart upload {} of '{}'", dir_->root(),
                     upload.upload_id, upload.key);
      } else if (!st.IsNotFound()) {
        spdlog::warn("upload queue {}: cannot abort multipart upload {} of '{}': {}", dir_->root(),
                     upload.upload_id, upload.key, st.ToString());
      }
    }
  }
  MutexLock lock(mu_);
  orphans_aborted_ += aborted;
}

void UploadQueue::Start() {
  MutexLock lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Result<uint64_t> UploadQueue::EnqueuePut(std::string key, std::string staged_path, uint64_t size,
                                         PutOptions options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  STRATA_RETURN_IF_ERROR(QueueDir::CheckStaged(staged_path, size));
  std::string name;
  {
    MutexLock lock(mu_);
    name = file_prefix_ + std::to_string(file_counter_++);
  }
  Status adopted = dir_->Adopt(staged_path, name);
  if (!adopted.ok()) {
    IgnoreError(dir_->GiveBack(name, staged_path), "fails when the move itself failed");
    return adopted;
  }
  QueueRecord put;
  put.op = QueueOp::kPut;
  put.key = std::move(key);
  put.data_file = name;
  put.size = size;
  put.options = std::move(options);
  put.enqueued_unix_ms = UnixMs();

  MutexLock enqueue(enqueue_mu_);
  QueueSchedule::Plan plan;
  {
    MutexLock lock(mu_);
    plan = schedule_.PlanPut(std::move(put));
  }
  Result<uint64_t> ticket = CommitPlan(plan);
  if (!ticket.ok()) {
    Status back = dir_->GiveBack(name, staged_path);
    if (!back.ok()) {
      spdlog::warn("upload queue {}: enqueue failed and the staged file stays at {}: {}",
                   dir_->root(), dir_->DataPath(name), back.ToString());
    }
  }
  return ticket;
}

Result<uint64_t> UploadQueue::EnqueueDelete(std::string key) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock enqueue(enqueue_mu_);
  QueueSchedule::Plan plan;
  {
    MutexLock lock(mu_);
    plan = schedule_.PlanDelete(key, UnixMs());
  }
  return CommitPlan(plan);
}

Result<uint64_t> UploadQueue::EnqueueRename(std::string from, std::string to) {
  STRATA_RETURN_IF_ERROR(ValidateKey(from));
  STRATA_RETURN_IF_ERROR(ValidateKey(to));
  MutexLock enqueue(enqueue_mu_);
  Result<QueueSchedule::Plan> plan = Status::Internal("unset");
  {
    MutexLock lock(mu_);
    plan = schedule_.PlanRename(from, to, UnixMs());
  }
  if (!plan.ok()) return plan.status();
  return CommitPlan(*plan);
}

Result<uint64_t> UploadQueue::EnqueueSetMetadata(std::string key, Metadata metadata,
                                                 std::string base_etag, uint64_t size) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  QueueRecord change;
  change.op = QueueOp::kSetMetadata;
  change.key = std::move(key);
  change.size = size;
  change.options.metadata = std::move(metadata);
  change.options.if_match = std::move(base_etag);
  change.enqueued_unix_ms = UnixMs();
  MutexLock enqueue(enqueue_mu_);
  QueueSchedule::Plan plan;
  {
    MutexLock lock(mu_);
    plan = schedule_.PlanSetMetadata(std::move(change));
  }
  return CommitPlan(plan);
}

Result<uint64_t> UploadQueue::CommitPlan(const QueueSchedule::Plan& plan) {
  QueueDb::Batch batch;
  batch.inserts = plan.inserts;
  batch.removes = plan.drops;
  batch.next_seq = plan.next_seq;
  Status st = db_->Apply(batch);
  QueueSchedule::Released released;
  {
    MutexLock lock(mu_);
    if (!st.ok()) {
      schedule_.Abandon(plan);
    } else {
      released = schedule_.Commit(plan);
      dropped_ += plan.drops.size();
      to_abort_.insert(to_abort_.end(), released.uploads.begin(), released.uploads.end());
    }
  }
  work_cv_.NotifyAll();
  changed_cv_.NotifyAll();
  if (!st.ok()) return st;
  CleanUp(released);
  return plan.ticket;
}

void UploadQueue::CleanUp(const QueueSchedule::Released& released) {
  for (const std::string& file : released.data_files) dir_->Remove(file);
}

int64_t UploadQueue::MonoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now().time_since_epoch())
      .count();
}

int64_t UploadQueue::UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->WallNow().time_since_epoch())
      .count();
}

void UploadQueue::WorkerLoop() {
  // At most workers - 1 (and at least one) workers run entries that failed before.
  const int retry_slots = std::max(1, options_.workers - 1);
  MutexLock lock(mu_);
  while (true) {
    if (stopping_) return;
    if (schedule_.Wake(MonoMs()) > 1) work_cv_.NotifyAll();
    if (!to_abort_.empty()) {
      const MultipartUpload upload = std::move(to_abort_.back());
      to_abort_.pop_back();
      lock.Unlock();
      Status st = store_.AbortMultipartUpload(upload.key, upload.upload_id);
      if (!st.ok() && !st.IsNotFound()) {
        spdlog::warn("upload queue {}: cannot abort dropped multipart upload {} of '{}': {}",
                     dir_->root(), upload.upload_id, upload.key, st.ToString());
      }
      lock.Lock();
      continue;
    }
    const bool retries = retries_running_ < retry_slots;
    if (schedule_.HasReady(retries)) {
      uint64_t run_id = 0;
      bool retry = false;
      QueueRecord record = schedule_.TakeReady(retries, &run_id, &retry);
      if (retry) ++retries_running_;
      lock.Unlock();
      RunClaimed(std::move(record), run_id);
      lock.Lock();
      if (retry) --retries_running_;
      continue;
    }
    const std::optional<int64_t> wake = schedule_.NextWake();
    if (wake && !timer_running_) {
      // This worker keeps time for the parked entries, on the injected clock.
      timer_running_ = true;
      const int64_t wait = std::clamp<int64_t>(*wake - MonoMs(), 0, kSleepSliceMs);
      lock.Unlock();
      if (wait > 0) clock_->SleepFor(std::chrono::milliseconds(wait));
      lock.Lock();
      timer_running_ = false;
      continue;
    }
    if (wake) {
      // Another worker keeps time; look again soon in case it got busy with an upload.
      work_cv_.WaitFor(lock, std::chrono::milliseconds(kSleepSliceMs));
    } else {
      work_cv_.Wait(lock);
    }
  }
}

void UploadQueue::RunClaimed(QueueRecord record, uint64_t run_id) {
  const uint64_t seq = record.seq;
  QueueRunner::Hooks hooks;
  hooks.should_stop = [this] { return stopping_.load(); };
  hooks.on_progress = [this](const QueueRecord& progress) {
    MutexLock lock(mu_);
    schedule_.UpdateProgress(progress);
  };
  hooks.on_bytes_sent = [this](uint64_t bytes) { bytes_uploaded_ += bytes; };
  QueueRunner::RunResult result = runner_.Run(record, dir_->DataPath(record.data_file), hooks);
  if (result.outcome == QueueRunner::Outcome::kStopped) {
    MutexLock lock(mu_);
    schedule_.Release(seq, run_id);
    return;
  }
  if (result.outcome == QueueRunner::Outcome::kDone) {
    QueueDb::Batch batch;
    batch.removes = {seq};
    Status removed = db_->Apply(batch);
    if (removed.ok()) {
      if (record.attempts >= options_.stuck_attempts) {
        spdlog::warn("upload queue {}: {} of '{}' went through after {} failed attempts",
                     dir_->root(), QueueOpName(record.op), record.key, record.attempts);
      }
      // Before the entry counts as done, so that whoever waits for it finds caches updated.
      if (options_.on_done) options_.on_done(record, result.etag);
      QueueSchedule::Released released;
      {
        MutexLock lock(mu_);
        released = schedule_.Complete(seq);
        ++uploads_done_;
        ++cleanups_running_;
      }
      work_cv_.NotifyAll();
      CleanUp(released);
      {
        MutexLock lock(mu_);
        --cleanups_running_;
      }
      changed_cv_.NotifyAll();
      return;
    }
    // Redoing a completed operation is harmless, and the key stays blocked meanwhile.
    result.status = Status::Transient("done in the store, but the queue cannot record it: " +
                                      removed.ToString());
  }
  const uint32_t attempts = record.attempts + 1;
  const bool retry =
      result.status.retryable() && options_.retry.ShouldRetry(static_cast<int>(attempts));
  Status saved = db_->SetOutcome(seq, retry ? QueueState::kPending : QueueState::kDead, attempts,
                                 result.status);
  if (!saved.ok()) {
    spdlog::warn("upload queue {}: cannot save the outcome of entry {}: {}", dir_->root(), seq,
                 saved.ToString());
  }
  std::chrono::milliseconds delay{0};
  {
    MutexLock lock(mu_);
    if (retry) {
      ++retries_;
      delay = options_.retry.Backoff(static_cast<int>(std::min<uint32_t>(attempts, 1000)), rng_);
    }
    const int64_t now = MonoMs();
    schedule_.RecordFailure(seq, result.status, attempts, !retry, now, now + delay.count());
  }
  if (!retry) {
    spdlog::warn("upload queue {}: {} of '{}' failed for good after {} attempts: {}", dir_->root(),
                 QueueOpName(record.op), record.key, attempts, result.status.ToString());
    changed_cv_.NotifyAll();
    return;
  }
  // Never silent, never a flood: attempts 1, 2, 4, 8, ... at warn, the others at debug.
  const auto level = PowerOfTwo(attempts) ? spdlog::level::warn : spdlog::level::debug;
  spdlog::log(level, "upload queue {}: {} of '{}' failed (attempt {}), next attempt in {} ms: {}",
              dir_->root(), QueueOpName(record.op), record.key, attempts, delay.count(),
              result.status.ToString());
  work_cv_.NotifyOne();  // a parked entry needs a worker that keeps time
}

Status UploadQueue::WaitUploaded(uint64_t sequence, Clock::Duration timeout) {
  MutexLock lock(mu_);
  if (sequence == 0 || sequence >= schedule_.next_seq()) {
    return Status::InvalidArgument("upload queue: no sequence number " + std::to_string(sequence));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::optional<Status> outcome = schedule_.Outcome(sequence);
    if (outcome.has_value()) return *outcome;
    if (stopping_)
      return TimedOut("stopped before entry " + std::to_string(sequence) + " was done");
    if (changed_cv_.WaitUntil(lock, deadline) == std::cv_status::timeout) {
      outcome = schedule_.Outcome(sequence);
      if (outcome.has_value()) return *outcome;
      return TimedOut("entry " + std::to_string(sequence) + " not uploaded within the timeout");
    }
  }
}

Status UploadQueue::Drain(Clock::Duration timeout) {
  MutexLock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (schedule_.depth() > schedule_.Blocked() || cleanups_running_ > 0) {
    if (!started_) {
      return Status::InvalidArgument("upload queue: Drain before Start with " +
                                     std::to_string(schedule_.depth()) + " entries queued");
    }
    if (stopping_) return TimedOut("stopped while draining");
    if (changed_cv_.WaitUntil(lock, deadline) == std::cv_status::timeout &&
        (schedule_.depth() > schedule_.Blocked() || cleanups_running_ > 0)) {
      return TimedOut(std::to_string(schedule_.depth()) +
                      " entries still queued after the drain timeout");
    }
  }
  if (schedule_.dead() > 0) {
    return Status::Io("upload queue: " + std::to_string(schedule_.dead()) + " dead letters (and " +
                      std::to_string(schedule_.Blocked()) +
                      " entries waiting behind them); see the queue listing");
  }
  return Status::Ok();
}

PendingState UploadQueue::Pending(const std::string& key) {
  MutexLock lock(mu_);
  return schedule_.Pending(key);
}

Result<std::optional<UploadQueue::PendingContent>> UploadQueue::OpenPending(
    const std::string& key) {
  MutexLock lock(mu_);
  const PendingState state = schedule_.Pending(key);
  if (state.kind != PendingState::Kind::kPut) return std::optional<PendingContent>();
  // While the entry is in the schedule its file exists: files are deleted only after their
  // entries left it. One open(2) under the lock.
  const int fd = ::open(state.put.staged_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open pending data " + state.put.staged_path);
  return std::optional<PendingContent>(
      PendingContent{std::make_shared<Fd>(fd), state.put.size, state.put.options});
}

std::vector<std::pair<std::string, PendingState>> UploadQueue::PendingUnder(
    const std::string& prefix) {
  MutexLock lock(mu_);
  return schedule_.PendingUnder(prefix);
}

std::vector<QueueEntryView> UploadQueue::List(uint64_t after, size_t limit) {
  const int64_t now = UnixMs();
  const int64_t mono = MonoMs();
  const int64_t stuck_since =
      mono - std::chrono::duration_cast<std::chrono::milliseconds>(options_.stuck_after).count();
  MutexLock lock(mu_);
  return schedule_.List(now, options_.stuck_attempts, stuck_since, mono, after, limit);
}

Status UploadQueue::RetryDeadLetters() {
  MutexLock enqueue(enqueue_mu_);
  std::vector<uint64_t> dead;
  {
    MutexLock lock(mu_);
    dead = schedule_.DeadEntries();
  }
  if (dead.empty()) return Status::Ok();
  STRATA_RETURN_IF_ERROR(db_->Requeue(dead));
  {
    MutexLock lock(mu_);
    schedule_.Requeue(dead);
  }
  spdlog::info("upload queue {}: {} dead letters queued again", dir_->root(), dead.size());
  work_cv_.NotifyAll();
  changed_cv_.NotifyAll();
  return Status::Ok();
}

Status UploadQueue::DiscardDeadLetter(uint64_t sequence) {
  MutexLock enqueue(enqueue_mu_);
  Result<QueueSchedule::Plan> plan = Status::Internal("unset");
  {
    MutexLock lock(mu_);
    plan = schedule_.PlanDiscard(sequence);
  }
  if (!plan.ok()) return plan.status();
  STRATA_RETURN_IF_ERROR(CommitPlan(*plan).status());
  spdlog::warn("upload queue {}: dead entry {} discarded", dir_->root(), sequence);
  return Status::Ok();
}

UploadQueueStats UploadQueue::stats() {
  MutexLock lock(mu_);
  UploadQueueStats stats;
  stats.depth = schedule_.depth();
  stats.dead_letters = schedule_.dead();
  stats.staged_bytes = schedule_.staged_bytes();
  stats.bytes_uploaded = bytes_uploaded_.load();
  stats.uploads_done = uploads_done_;
  stats.retries = retries_;
  stats.stuck = schedule_.Stuck(
      options_.stuck_attempts,
      MonoMs() -
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.stuck_after).count());
  stats.backoff = schedule_.parked();
  stats.dropped = dropped_;
  stats.orphans_aborted = orphans_aborted_;
  return stats;
}

}  // namespace strata
