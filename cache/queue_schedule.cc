#include "cache/queue_schedule.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <utility>

namespace strata {

QueueSchedule::QueueSchedule(std::string data_dir) : data_dir_(std::move(data_dir)) {}

std::vector<std::string> QueueSchedule::KeysOf(const QueueRecord& record) {
  if (record.op == QueueOp::kCopy) return {record.source, record.key};
  return {record.key};
}

void QueueSchedule::Load(std::vector<QueueRecord> records, uint64_t next_seq) {
  uint64_t next = std::max<uint64_t>(next_seq, 1);
  for (QueueRecord& record : records) {
    next = std::max(next, record.seq + 1);
    if (record.state == QueueState::kDead) ++dead_;
    Append(record);
    const uint64_t seq = record.seq;
    entries_.emplace(seq, Entry{std::move(record)});
  }
  next_seq_ = next;
  for (const auto& [key, order] : by_key_) Reconsider(key);
}

void QueueSchedule::Append(const QueueRecord& record) {
  if (record.op == QueueOp::kPut) staged_bytes_ += record.size;
  for (const std::string& key : KeysOf(record)) by_key_[key].push_back(record.seq);
}

const QueueSchedule::Entry* QueueSchedule::LastRemaining(const std::string& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  for (auto seq = it->second.rbegin(); seq != it->second.rend(); ++seq) {
    const Entry& entry = entries_.at(*seq);
    if (entry.phase != Phase::kDropping) return &entry;
  }
  return nullptr;
}

void QueueSchedule::DropTail(const std::string& key, std::initializer_list<QueueOp> ops,
                             Plan* plan) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  for (auto seq = it->second.rbegin(); seq != it->second.rend(); ++seq) {
    Entry& entry = entries_.at(*seq);
    if (entry.phase == Phase::kDropping) continue;  // already planned by this plan
    const bool droppable_op = std::find(ops.begin(), ops.end(), entry.record.op) != ops.end();
    const bool idle = entry.phase == Phase::kQueued || entry.phase == Phase::kBackoff;
    if (!droppable_op || !idle) return;
    entry.phase = Phase::kDropping;
    ready_.erase(*seq);
    ready_retry_.erase(*seq);
    plan->drops.push_back(*seq);
  }
}

QueueSchedule::Plan QueueSchedule::PlanPut(QueueRecord put) {
  Plan plan;
  put.seq = next_seq_;
  plan.ticket = put.seq;
  plan.next_seq = put.seq + 1;
  plan.forward_to = {put.seq};
  DropTail(put.key, {QueueOp::kPut, QueueOp::kDelete, QueueOp::kSetMetadata}, &plan);
  plan.inserts.push_back(std::move(put));
  return plan;
}

QueueSchedule::Plan QueueSchedule::PlanDelete(const std::string& key, int64_t now_ms) {
  Plan plan;
  DropTail(key, {QueueOp::kPut, QueueOp::kSetMetadata}, &plan);
  const Entry* last = LastRemaining(key);
  if (last != nullptr && last->record.op == QueueOp::kDelete &&
      last->record.state == QueueState::kPending) {
    // A delete that has not failed for good is already on its way: it does this one's work.
    plan.ticket = last->record.seq;
    plan.next_seq = next_seq_;
    plan.forward_to = {last->record.seq};
    return plan;
  }
  QueueRecord del;
  del.seq = next_seq_;
  del.op = QueueOp::kDelete;
  del.key = key;
  del.enqueued_unix_ms = now_ms;
  plan.ticket = del.seq;
  plan.next_seq = del.seq + 1;
  plan.forward_to = {del.seq};
  plan.inserts.push_back(std::move(del));
  return plan;
}

QueueSchedule::Plan QueueSchedule::PlanSetMetadata(QueueRecord change) {
  Plan plan;
  change.op = QueueOp::kSetMetadata;
  change.seq = next_seq_;
  plan.ticket = change.seq;
  plan.next_seq = change.seq + 1;
  plan.forward_to = {change.seq};
  DropTail(change.key, {QueueOp::kSetMetadata}, &plan);
  if (!plan.drops.empty()) {
    // Merged: the new change carries all attributes, but it is still based on the version the
    // oldest dropped one was (drops run newest first).
    change.options.if_match = entries_.at(plan.drops.back()).record.options.if_match;
  } else if (const Entry* last = LastRemaining(change.key);
             last != nullptr && last->record.op == QueueOp::kSetMetadata) {
    // Behind a change that is running (or dead): the ETag it leaves is not known yet.
    change.options.if_match.clear();
  }
  plan.inserts.push_back(std::move(change));
  return plan;
}

Result<QueueSchedule::Plan> QueueSchedule::PlanRename(const std::string& from,
                                                      const std::string& to, int64_t now_ms) {
  Plan plan;
  uint64_t seq = next_seq_;
  if (from == to) {
    plan.ticket = seq;
    plan.synthetic_ticket = true;
    plan.next_seq = seq + 1;
    return plan;
  }
  // A trailing metadata change of `from` is kept and stops the drop: it runs before the copy
  // (which touches `from` too), so the copy carries the new metadata.
  DropTail(from, {QueueOp::kPut}, &plan);
  const Entry* last_from = LastRemaining(from);
  const bool from_deleted = last_from != nullptr && last_from->record.op == QueueOp::kDelete;
  if (!plan.drops.empty()) {
    // Retarget: the newest pending put of `from` (drops[0]) is uploaded as `to` instead.
    const QueueRecord& newest = entries_.at(plan.drops.front()).record;
    QueueRecord put;
    put.seq = seq++;
    put.op = QueueOp::kPut;
    put.key = to;
    put.data_file = newest.data_file;
    put.size = newest.size;
    put.options = newest.options;
    put.enqueued_unix_ms = now_ms;
    plan.reused_files.insert(newest.data_file);
    plan.inserts.push_back(std::move(put));
  } else {
    if (from_deleted) {
      return Status::NotFound("rename of '" + from + "': it is being deleted");
    }
    QueueRecord copy;
    copy.seq = seq++;
    copy.op = QueueOp::kCopy;
    copy.key = to;
    copy.source = from;
    copy.enqueued_unix_ms = now_ms;
    plan.inserts.push_back(std::move(copy));
  }
  // The object at `from` may exist (from before the queue, or from an entry still running):
  // delete it, unless what remains of `from`'s order ends with a delete anyway.
  if (!from_deleted) {
    QueueRecord del;
    del.seq = seq++;
    del.op = QueueOp::kDelete;
    del.key = from;
    del.enqueued_unix_ms = now_ms;
    plan.inserts.push_back(std::move(del));
  }
  DropTail(to, {QueueOp::kPut, QueueOp::kDelete, QueueOp::kSetMetadata}, &plan);
  for (const QueueRecord& record : plan.inserts) plan.forward_to.push_back(record.seq);
  plan.ticket = seq;
  plan.synthetic_ticket = true;
  plan.next_seq = seq + 1;
  return plan;
}

Result<QueueSchedule::Plan> QueueSchedule::PlanDiscard(uint64_t seq) {
  auto it = entries_.find(seq);
  if (it == entries_.end() || it->second.record.state != QueueState::kDead ||
      it->second.phase != Phase::kQueued) {
    return Status::InvalidArgument("queue entry " + std::to_string(seq) + " is not dead");
  }
  Plan plan;
  it->second.phase = Phase::kDropping;
  plan.drops.push_back(seq);
  plan.discard = true;
  plan.next_seq = next_seq_;
  return plan;
}

QueueRecord QueueSchedule::Erase(uint64_t seq) {
  auto it = entries_.find(seq);
  QueueRecord record = std::move(it->second.record);
  parked_.erase({it->second.not_before_ms, seq});
  entries_.erase(it);
  ready_.erase(seq);
  ready_retry_.erase(seq);
  if (record.state == QueueState::kDead) --dead_;
  if (record.op == QueueOp::kPut) staged_bytes_ -= record.size;
  for (const std::string& key : KeysOf(record)) {
    auto order = by_key_.find(key);
    if (order == by_key_.end()) continue;
    auto pos = std::find(order->second.begin(), order->second.end(), seq);
    if (pos != order->second.end()) order->second.erase(pos);
    if (order->second.empty()) by_key_.erase(order);
  }
  return record;
}

void QueueSchedule::Retire(uint64_t seq, const std::vector<uint64_t>& targets, bool discard) {
  std::set<uint64_t> waiting_on_seq;
  if (auto it = forwarded_from_.find(seq); it != forwarded_from_.end()) {
    waiting_on_seq = std::move(it->second);
    forwarded_from_.erase(it);
  }
  waiting_on_seq.insert(seq);
  for (uint64_t retired : waiting_on_seq) {
    std::set<uint64_t>& leads_to = forward_[retired];
    leads_to.erase(seq);
    if (discard) discarded_.insert(retired);
    for (uint64_t target : targets) {
      leads_to.insert(target);
      forwarded_from_[target].insert(retired);
    }
    if (leads_to.empty()) forward_.erase(retired);
  }
}

QueueSchedule::Released QueueSchedule::Commit(const Plan& plan) {
  Released released;
  std::set<std::string> touched;
  for (uint64_t seq : plan.drops) {
    QueueRecord record = Erase(seq);
    for (const std::string& key : KeysOf(record)) touched.insert(key);
    if (record.op == QueueOp::kPut && plan.reused_files.count(record.data_file) == 0) {
      released.data_files.push_back(record.data_file);
    }
    if (!record.upload_id.empty()) {
      released.uploads.push_back(MultipartUpload{record.key, record.upload_id, {}});
    }
    Retire(seq, plan.forward_to, plan.discard);
  }
  for (const QueueRecord& record : plan.inserts) {
    Append(record);
    for (const std::string& key : KeysOf(record)) touched.insert(key);
    entries_.emplace(record.seq, Entry{record});
  }
  if (plan.synthetic_ticket && !plan.forward_to.empty()) {
    for (uint64_t target : plan.forward_to) {
      forward_[plan.ticket].insert(target);
      forwarded_from_[target].insert(plan.ticket);
    }
  }
  next_seq_ = std::max(next_seq_, plan.next_seq);
  for (const std::string& key : touched) Reconsider(key);
  return released;
}

void QueueSchedule::Abandon(const Plan& plan) {
  for (uint64_t seq : plan.drops) {
    Entry& entry = entries_.at(seq);
    if (parked_.count({entry.not_before_ms, seq}) != 0) {
      entry.phase = Phase::kBackoff;  // still waiting for its next attempt
      continue;
    }
    entry.phase = Phase::kQueued;
    for (const std::string& key : KeysOf(entry.record)) Reconsider(key);
  }
}

void QueueSchedule::Reconsider(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  const uint64_t head = it->second.front();
  const Entry& entry = entries_.at(head);
  if (entry.phase != Phase::kQueued || entry.record.state != QueueState::kPending) return;
  for (const std::string& other : KeysOf(entry.record)) {
    if (by_key_.at(other).front() != head) return;
  }
  (entry.record.attempts > 0 ? ready_retry_ : ready_).insert(head);
}

QueueRecord QueueSchedule::TakeReady([[maybe_unused]] bool retries, uint64_t* run_id, bool* retry) {
  assert(HasReady(retries));
  *retry = ready_.empty();
  std::set<uint64_t>& from = *retry ? ready_retry_ : ready_;
  const uint64_t seq = *from.begin();
  from.erase(from.begin());
  Entry& entry = entries_.at(seq);
  entry.phase = Phase::kRunning;
  entry.run_id = ++run_ids_;
  *run_id = entry.run_id;
  return entry.record;
}

void QueueSchedule::UpdateProgress(const QueueRecord& progress) {
  auto it = entries_.find(progress.seq);
  if (it == entries_.end()) return;
  it->second.record.upload_id = progress.upload_id;
  it->second.record.part_size = progress.part_size;
  it->second.record.parts = progress.parts;
}

QueueSchedule::Released QueueSchedule::Complete(uint64_t seq) {
  Released released;
  QueueRecord record = Erase(seq);
  if (record.op == QueueOp::kPut) released.data_files.push_back(record.data_file);
  if (auto it = forwarded_from_.find(seq); it != forwarded_from_.end()) {
    for (uint64_t retired : it->second) {
      auto leads = forward_.find(retired);
      if (leads == forward_.end()) continue;
      leads->second.erase(seq);
      if (leads->second.empty()) forward_.erase(leads);
    }
    forwarded_from_.erase(it);
  }
  for (const std::string& key : KeysOf(record)) Reconsider(key);
  return released;
}

void QueueSchedule::RecordFailure(uint64_t seq, const Status& status, uint32_t attempts, bool dead,
                                  int64_t now_ms, int64_t retry_at_ms) {
  Entry& entry = entries_.at(seq);
  entry.record.attempts = attempts;
  entry.record.error_kind = status.kind();
  entry.record.last_error = status.ToString();
  if (entry.first_failure_ms < 0) entry.first_failure_ms = now_ms;
  if (dead) {
    entry.record.state = QueueState::kDead;
    entry.phase = Phase::kQueued;
    ++dead_;
  } else {
    entry.phase = Phase::kBackoff;
    entry.not_before_ms = retry_at_ms;
    parked_.insert({retry_at_ms, seq});
  }
}

size_t QueueSchedule::Wake(int64_t now_ms) {
  size_t woken = 0;
  while (!parked_.empty() && parked_.begin()->first <= now_ms) {
    const uint64_t seq = parked_.begin()->second;
    parked_.erase(parked_.begin());
    auto it = entries_.find(seq);
    if (it == entries_.end()) continue;
    it->second.not_before_ms = 0;
    // An entry being dropped stays so; if the drop is abandoned it runs at once.
    if (it->second.phase != Phase::kBackoff) continue;
    it->second.phase = Phase::kQueued;
    ++woken;
    for (const std::string& key : KeysOf(it->second.record)) Reconsider(key);
  }
  return woken;
}

std::optional<int64_t> QueueSchedule::NextWake() const {
  if (parked_.empty()) return std::nullopt;
  return parked_.begin()->first;
}

bool QueueSchedule::IsStuck(const Entry& entry, uint32_t attempts, int64_t since_ms) const {
  if (entry.record.state == QueueState::kDead || entry.record.attempts == 0) return false;
  return entry.record.attempts >= attempts ||
         (entry.first_failure_ms >= 0 && entry.first_failure_ms <= since_ms);
}

uint64_t QueueSchedule::Stuck(uint32_t attempts, int64_t since_ms) const {
  uint64_t stuck = 0;
  for (const auto& [seq, entry] : entries_) {
    if (IsStuck(entry, attempts, since_ms)) ++stuck;
  }
  return stuck;
}

void QueueSchedule::Release(uint64_t seq, uint64_t run_id) {
  auto it = entries_.find(seq);
  if (it == entries_.end() || it->second.run_id != run_id) return;
  if (it->second.phase != Phase::kRunning) return;
  it->second.phase = Phase::kQueued;
  for (const std::string& key : KeysOf(it->second.record)) Reconsider(key);
}

uint64_t QueueSchedule::Blocked() const {
  if (dead_ == 0) return 0;
  uint64_t blocked = 0;
  std::set<std::string> blocked_keys;
  for (const auto& [seq, entry] : entries_) {
    const std::vector<std::string> keys = KeysOf(entry.record);
    bool stuck = entry.record.state == QueueState::kDead;
    if (!stuck) {
      stuck = std::any_of(keys.begin(), keys.end(),
                          [&](const std::string& key) { return blocked_keys.count(key) != 0; });
      if (stuck) ++blocked;
    }
    if (stuck) blocked_keys.insert(keys.begin(), keys.end());
  }
  return blocked;
}

std::vector<uint64_t> QueueSchedule::DeadEntries() const {
  std::vector<uint64_t> seqs;
  for (const auto& [seq, entry] : entries_) {
    if (entry.record.state == QueueState::kDead && entry.phase == Phase::kQueued) {
      seqs.push_back(seq);
    }
  }
  return seqs;
}

void QueueSchedule::Requeue(const std::vector<uint64_t>& seqs) {
  for (uint64_t seq : seqs) {
    auto it = entries_.find(seq);
    if (it == entries_.end() || it->second.record.state != QueueState::kDead) continue;
    it->second.record.state = QueueState::kPending;
    it->second.record.attempts = 0;
    it->second.first_failure_ms = -1;
    --dead_;
    for (const std::string& key : KeysOf(it->second.record)) Reconsider(key);
  }
}

std::optional<Status> QueueSchedule::Outcome(uint64_t seq) const {
  if (discarded_.count(seq) != 0) {
    return Status::Io("queue entry " + std::to_string(seq) + " was discarded by an operator");
  }
  std::vector<uint64_t> targets;
  if (auto it = forward_.find(seq); it != forward_.end()) {
    targets.assign(it->second.begin(), it->second.end());
  } else if (entries_.count(seq) != 0) {
    targets.push_back(seq);
  }
  bool pending = false;
  for (uint64_t target : targets) {
    auto it = entries_.find(target);
    if (it == entries_.end()) continue;
    const QueueRecord& record = it->second.record;
    if (record.state == QueueState::kDead) {
      return Status::Error(
          record.error_kind == ErrorKind::kOk ? ErrorKind::kInternal : record.error_kind,
          "queue entry " + std::to_string(target) + " (" + std::string(QueueOpName(record.op)) +
              " '" + record.key + "') is dead: " + record.last_error);
    }
    pending = true;
  }
  if (pending) return std::nullopt;
  return Status::Ok();
}

PendingState QueueSchedule::Resolve(const std::string& key, uint64_t before) const {
  PendingState state;
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return state;
  for (auto seq = it->second.rbegin(); seq != it->second.rend(); ++seq) {
    if (*seq >= before) continue;
    const QueueRecord& record = entries_.at(*seq).record;
    if (record.key != key) continue;  // a copy that reads this key does not change it
    switch (record.op) {
      case QueueOp::kPut:
        state.kind = PendingState::Kind::kPut;
        state.put =
            PendingPut{record.seq, data_dir_ + "/" + record.data_file, record.size, record.options};
        return state;
      case QueueOp::kDelete:
        state.kind = PendingState::Kind::kDeleted;
        return state;
      case QueueOp::kCopy: {
        PendingState source = Resolve(record.source, record.seq);
        if (source.kind != PendingState::Kind::kNone &&
            source.kind != PendingState::Kind::kMetadata) {
          return source;
        }
        state.kind = PendingState::Kind::kCopy;
        state.copy_source = record.source;
        state.metadata = std::move(source.metadata);
        return state;
      }
      case QueueOp::kSetMetadata: {
        // Laid over whatever the older entries leave.
        state = Resolve(key, record.seq);
        auto over = [&record](Metadata& metadata) {
          for (const auto& [name, value] : record.options.metadata) {
            metadata.insert_or_assign(name, value);
          }
        };
        switch (state.kind) {
          case PendingState::Kind::kDeleted:
            break;  // nothing to change: the entry will find no object
          case PendingState::Kind::kPut:
            over(state.put.options.metadata);
            break;
          case PendingState::Kind::kNone:
            state.kind = PendingState::Kind::kMetadata;
            [[fallthrough]];
          case PendingState::Kind::kCopy:
          case PendingState::Kind::kMetadata:
            if (!state.metadata) state.metadata.emplace();
            over(*state.metadata);
            break;
        }
        return state;
      }
    }
  }
  return state;
}

PendingState QueueSchedule::Pending(const std::string& key) const {
  return Resolve(key, std::numeric_limits<uint64_t>::max());
}

std::vector<std::pair<std::string, PendingState>> QueueSchedule::PendingUnder(
    const std::string& prefix) const {
  std::vector<std::pair<std::string, PendingState>> out;
  for (auto it = by_key_.lower_bound(prefix); it != by_key_.end() && it->first.starts_with(prefix);
       ++it) {
    out.emplace_back(it->first, Pending(it->first));
  }
  return out;
}

std::vector<QueueEntryView> QueueSchedule::List(int64_t now_ms, uint32_t stuck_attempts,
                                                int64_t stuck_since_ms, int64_t wake_now_ms,
                                                uint64_t after, size_t limit) const {
  std::vector<QueueEntryView> views;
  for (auto it = entries_.upper_bound(after); it != entries_.end() && views.size() < limit; ++it) {
    const uint64_t seq = it->first;
    const Entry& entry = it->second;
    const QueueRecord& r = entry.record;
    QueueEntryView view;
    view.sequence = seq;
    view.op = r.op;
    view.key = r.key;
    view.source = r.source;
    view.size = r.size;
    view.enqueued_at =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(r.enqueued_unix_ms));
    view.age = std::chrono::milliseconds(std::max<int64_t>(0, now_ms - r.enqueued_unix_ms));
    view.attempts = r.attempts;
    view.last_error = r.last_error;
    if (r.state == QueueState::kDead) {
      view.state = QueueEntryState::kDead;
    } else if (entry.phase == Phase::kRunning) {
      view.state = QueueEntryState::kUploading;
    } else if (IsStuck(entry, stuck_attempts, stuck_since_ms)) {
      view.state = QueueEntryState::kStuck;
    } else if (entry.phase == Phase::kBackoff) {
      view.state = QueueEntryState::kBackoff;
    }
    if (entry.phase == Phase::kBackoff) {
      view.next_attempt_in =
          std::chrono::milliseconds(std::max<int64_t>(0, entry.not_before_ms - wake_now_ms));
    }
    view.parts_done = static_cast<uint32_t>(r.parts.size());
    views.push_back(std::move(view));
  }
  return views;
}

}  // namespace strata
