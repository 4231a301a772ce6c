// QueueSchedule: the upload queue's state in memory. It holds every entry by sequence number,
// the order of entries per key, the entries a worker may run now, and where the sequence numbers
// of dropped entries lead (for WaitUploaded). It also plans enqueues: which records a call adds
// and which not-yet-running entries it drops.
//
// The rules that keep the store in order (guarantee 7: nothing resurrects, no older version
// lands after a newer one):
//   - An entry runs only while it is the oldest entry of every key it touches (a copy touches
//     its source and its target). Operations on one key therefore reach the store one at a time,
//     in sequence order; different keys proceed in parallel.
//   - A dead entry keeps its place at the head of its keys and holds back later entries on them
//     until it is retried or discarded.
//   - Only entries that no worker is calling the store for are dropped, and only from the tail
//     of a key's order, by a newer operation that makes them pointless:
//       put K:          drops trailing puts and deletes of K (the new object replaces them);
//       delete K:       drops trailing puts of K, then reuses a trailing pending delete of K;
//       rename F -> T:  the newest trailing put of F becomes a put of T (its staged file is
//                       reused) followed by a delete of F unless F's remaining tail is a delete;
//                       without such a put, a copy F -> T then a delete of F are queued. Either
//                       way trailing puts and deletes of T are dropped as for a put.
//     Dropping never reorders what stays, and what a dropped entry would have done is done, or
//     undone, by the entry that dropped it.
//
// Not thread-safe: UploadQueue calls it under its mutex. No I/O.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/object_store.h"
#include "backends/status.h"
#include "cache/queue_record.h"

namespace strata {

class QueueSchedule {
 public:
  enum class Phase {
    kQueued,    // waiting for a worker, or dead
    kRunning,   // a worker is calling the store for it: it is never dropped
    kBackoff,   // claimed by a worker that waits before the next attempt; may be dropped
    kDropping,  // an enqueue is committing a plan that drops it
  };

  struct Entry {
    QueueRecord record{};
    Phase phase = Phase::kQueued;
    uint64_t run_id = 0;  // which claim a worker holds (kRunning, kBackoff)
  };

  // The effect of one enqueue, applied in memory by Commit once the caller made it durable.
  // Between planning and Commit or Abandon the dropped entries are in kDropping.
  struct Plan {
    std::vector<QueueRecord> inserts{};
    std::vector<uint64_t> drops{};
    std::vector<uint64_t> forward_to{};    // live sequences the dropped ones (and a ticket) lead to
    std::set<std::string> reused_files{};  // data files of dropped entries that inserts keep
    uint64_t ticket = 0;                   // what the enqueue returns
    bool synthetic_ticket = false;         // the ticket names no entry, only forward_to
    bool discard = false;                  // an operator discards drops: waits on them fail
    uint64_t next_seq = 0;                 // the next sequence number once committed
  };

  // What committed drops (or a completed entry) leave for the caller to clean up after it
  // released its lock.
  struct Released {
    std::vector<std::string> data_files{};
    std::vector<MultipartUpload> uploads{};  // key and upload id to abort
  };

  // `data_dir`: where data files live, to name them in PendingState.
  explicit QueueSchedule(std::string data_dir);

  // Loads replayed records. REQUIRES: nothing loaded or planned yet; `records` ascending.
  void Load(std::vector<QueueRecord> records, uint64_t next_seq);

  uint64_t next_seq() const { return next_seq_; }
  uint64_t depth() const { return entries_.size() - dead_; }  // entries not dead
  uint64_t dead() const { return dead_; }
  uint64_t staged_bytes() const { return staged_bytes_; }  // sizes of the puts' data files
  // Pending entries that cannot run before a dead entry is retried or discarded: they follow a
  // dead entry (or such a blocked entry) on one of their keys. O(entries) when dead() > 0.
  uint64_t Blocked() const;

  // `put` has key, data_file, size, options and enqueued time set; the plan numbers it.
  Plan PlanPut(QueueRecord put);
  Plan PlanDelete(const std::string& key, int64_t now_ms);
  // kNotFound when `from`'s pending tail is a delete (nothing to rename).
  Result<Plan> PlanRename(const std::string& from, const std::string& to, int64_t now_ms);
  // kInvalidArgument unless `seq` is a dead entry.
  Result<Plan> PlanDiscard(uint64_t seq);
  Released Commit(const Plan& plan);
  void Abandon(const Plan& plan);

  // --- workers ---
  bool HasReady() const { return !ready_.empty(); }
  // Claims the oldest runnable entry (kRunning, new run id). REQUIRES: HasReady().
  QueueRecord TakeReady(uint64_t* run_id);
  // Copies multipart progress into a running entry.
  void UpdateProgress(const QueueRecord& progress);
  // The entry succeeded: it leaves the schedule and the keys behind it may run.
  Released Complete(uint64_t seq);
  // The attempt failed: to kBackoff (retry) or dead, with the error and attempt count.
  void RecordFailure(uint64_t seq, const Status& status, uint32_t attempts, bool dead);
  // After a backoff: true (and the entry in kRunning, copied to *record) if the claim still
  // holds; false if the entry was dropped or claimed anew meanwhile.
  bool Resume(uint64_t seq, uint64_t run_id, QueueRecord* record);
  // Gives a claim up without an outcome (shutdown): the entry is queued again.
  void Release(uint64_t seq, uint64_t run_id);

  // --- operators ---
  std::vector<uint64_t> DeadEntries() const;
  // Dead entries of `seqs` become pending with zero attempts.
  void Requeue(const std::vector<uint64_t>& seqs);

  // --- queries ---
  // nullopt while `seq` (or what it leads to) is pending; OK once done; the error of a dead or
  // discarded entry it leads to. Sequence numbers not in memory count as done.
  std::optional<Status> Outcome(uint64_t seq) const;
  PendingState Pending(const std::string& key) const;
  // Pending() of every key under `prefix` that has entries, in key order.
  std::vector<std::pair<std::string, PendingState>> PendingUnder(const std::string& prefix) const;
  std::vector<QueueEntryView> List(int64_t now_ms) const;

 private:
  static std::vector<std::string> KeysOf(const QueueRecord& record);
  // Marks the droppable tail of `key` (puts, and deletes when `deletes`) as kDropping.
  void DropTail(const std::string& key, bool deletes, Plan* plan);
  // The newest entry of `key` that is not being dropped, or nullptr.
  const Entry* LastRemaining(const std::string& key) const;
  // Makes the head of `key` runnable if it may run.
  void Reconsider(const std::string& key);
  void Append(const QueueRecord& record);
  // Removes `seq` from memory; returns its record.
  QueueRecord Erase(uint64_t seq);
  // Points waits on `seq` (and on what already led to it) at `targets`.
  void Retire(uint64_t seq, const std::vector<uint64_t>& targets, bool discard);
  PendingState Resolve(const std::string& key, uint64_t before) const;

  const std::string data_dir_;
  uint64_t next_seq_ = 1;
  uint64_t run_ids_ = 0;
  uint64_t dead_ = 0;
  uint64_t staged_bytes_ = 0;
  std::map<uint64_t, Entry> entries_;
  // Ordered, so that PendingUnder finds a prefix's keys without visiting the others.
  std::map<std::string, std::deque<uint64_t>> by_key_;
  std::set<uint64_t> ready_;  // heads that may run now, oldest first
  // Retired sequence numbers (dropped entries, rename tickets) -> live entries they wait for,
  // and the reverse. Entries leave both once resolved.
  std::map<uint64_t, std::set<uint64_t>> forward_;
  std::unordered_map<uint64_t, std::set<uint64_t>> forwarded_from_;
  std::set<uint64_t> discarded_;
};

}  // namespace strata
