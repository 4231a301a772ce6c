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
//       put K:          drops trailing puts, deletes and metadata changes of K (the new object
//                       replaces them; it carries its own metadata);
//       delete K:       drops trailing puts and metadata changes of K, then reuses a trailing
//                       pending delete of K;
//       set-metadata K: drops a trailing metadata change of K (merged: the new one carries all
//                       attributes, and takes the base ETag of the one it drops). Behind one
//                       that is running or dead its base ETag is cleared: that one's result is
//                       not known yet;
//       rename F -> T:  the newest trailing put of F becomes a put of T (its staged file is
//                       reused) followed by a delete of F unless F's remaining tail is a delete;
//                       without such a put, a copy F -> T then a delete of F are queued. A
//                       trailing metadata change of F is kept (it stops the search for a put):
//                       it runs before the copy, which touches F too. Either way trailing puts,
//                       deletes and metadata changes of T are dropped as for a put.
//     Dropping never reorders what stays, and what a dropped entry would have done is done, or
//     undone, by the entry that dropped it.
//   - A failed entry that will be retried is parked (kBackoff) until its next attempt time: no
//     worker holds it, it stays at the head of its keys (so its own later operations keep
//     waiting), and every other key runs meanwhile. Among runnable entries, those that never
//     failed go first, and the caller may keep workers free of retries (TakeReady).
//
// Not thread-safe: UploadQueue calls it under its mutex. No I/O.
#pragma once

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/object_store.h"
#include "base/status.h"
#include "cache/queue_record.h"

namespace strata {

class QueueSchedule {
 public:
  enum class Phase {
    kQueued,    // waiting for a worker, or dead
    kRunning,   // a worker is calling the store for it: it is never dropped
    kBackoff,   // parked after a failure until not_before_ms; no worker holds it; may be dropped
    kDropping,  // an enqueue is committing a plan that drops it
  };

  struct Entry {
    QueueRecord record{};
    Phase phase = Phase::kQueued;
    uint64_t run_id = 0;            // which claim a worker holds (kRunning)
    int64_t not_before_ms = 0;      // kBackoff: the next attempt's time (Wake's clock)
    int64_t first_failure_ms = -1;  // when it started failing in this run; -1: it has not
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
  // `change` has key, options (metadata and base ETag in if_match), size and enqueued time set;
  // the plan numbers it and makes it a kSetMetadata.
  Plan PlanSetMetadata(QueueRecord change);
  // kNotFound when `from`'s pending tail is a delete (nothing to rename).
  Result<Plan> PlanRename(const std::string& from, const std::string& to, int64_t now_ms);
  // kInvalidArgument unless `seq` is a dead entry.
  Result<Plan> PlanDiscard(uint64_t seq);
  Released Commit(const Plan& plan);
  void Abandon(const Plan& plan);

  // --- workers ---
  // Whether TakeReady has something: an entry that never failed, or with `retries` one that did.
  bool HasReady(bool retries) const {
    return !ready_.empty() || (retries && !ready_retry_.empty());
  }
  // Claims the oldest runnable entry that never failed, else (with `retries`) the oldest that
  // did; it goes to kRunning with a new run id. *retry says which. REQUIRES: HasReady(retries).
  QueueRecord TakeReady(bool retries, uint64_t* run_id, bool* retry);
  // Copies multipart progress into a running entry.
  void UpdateProgress(const QueueRecord& progress);
  // The entry succeeded: it leaves the schedule and the keys behind it may run.
  Released Complete(uint64_t seq);
  // The attempt failed at `now_ms`: parked until `retry_at_ms` (kBackoff), or dead; with the
  // error and attempt count.
  void RecordFailure(uint64_t seq, const Status& status, uint32_t attempts, bool dead,
                     int64_t now_ms, int64_t retry_at_ms);
  // Parked entries whose time came (not_before_ms <= now_ms) may run again. Returns how many.
  size_t Wake(int64_t now_ms);
  uint64_t parked() const { return parked_.size(); }
  // The earliest next-attempt time of a parked entry; nullopt when none is parked.
  std::optional<int64_t> NextWake() const;
  // Gives a claim up without an outcome (shutdown): the entry is queued again.
  void Release(uint64_t seq, uint64_t run_id);
  // Entries not dead that have failed at least `attempts` times in a row, or have kept failing
  // since `since_ms` or earlier: the ones an operator should look at.
  uint64_t Stuck(uint32_t attempts, int64_t since_ms) const;

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
  // `stuck_attempts`, `stuck_since_ms`: as for Stuck(), to mark entries kStuck. `wake_now_ms`:
  // the Wake clock's now, to show when a parked entry runs next. Only entries after sequence
  // `after`, at most `limit`.
  std::vector<QueueEntryView> List(int64_t now_ms, uint32_t stuck_attempts, int64_t stuck_since_ms,
                                   int64_t wake_now_ms, uint64_t after, size_t limit) const;

 private:
  static std::vector<std::string> KeysOf(const QueueRecord& record);
  // Marks the droppable tail of `key` (idle entries writing `key` with one of `ops`, newest
  // first, up to the first other one) as kDropping.
  void DropTail(const std::string& key, std::initializer_list<QueueOp> ops, Plan* plan);
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
  bool IsStuck(const Entry& entry, uint32_t attempts, int64_t since_ms) const;

  std::set<uint64_t> ready_;        // heads that may run now and never failed, oldest first
  std::set<uint64_t> ready_retry_;  // heads that may run now after failing, oldest first
  std::set<std::pair<int64_t, uint64_t>> parked_;  // (not_before_ms, seq) of kBackoff entries
  // Retired sequence numbers (dropped entries, rename tickets) -> live entries they wait for,
  // and the reverse. Entries leave both once resolved.
  std::map<uint64_t, std::set<uint64_t>> forward_;
  std::unordered_map<uint64_t, std::set<uint64_t>> forwarded_from_;
  std::set<uint64_t> discarded_;
};

}  // namespace strata
