#include "fs/control_surface.h"

#include <cerrno>
#include <cstdio>
#include <vector>

namespace strata {

std::string ControlSurface::StatsText() {
  const MetadataCounters meta = metadata_.counters();
  std::string out;
  const CoreCounters core = core_ ? core_() : CoreCounters{};
  out += "inodes " + std::to_string(core.inodes) + "\n";
  out += "open_files " + std::to_string(core.open_files) + "\n";
  out += "metadata_list_requests " + std::to_string(meta.list_requests) + "\n";
  out += "metadata_head_requests " + std::to_string(meta.head_requests) + "\n";
  out += "metadata_attributes_known " + std::to_string(meta.attributes_known) + "\n";
  out += "metadata_attributes_unknown " + std::to_string(meta.attributes_unknown) + "\n";
  out += "metadata_stale_answers " + std::to_string(meta.stale_answers) + "\n";
  out += "degraded " + std::to_string(meta.degraded ? 1 : 0) + "\n";
  if (queue_ != nullptr) {
    const UploadQueueStats queue = queue_->stats();
    out += "queue_depth " + std::to_string(queue.depth) + "\n";
    out += "queue_dead_letters " + std::to_string(queue.dead_letters) + "\n";
    out += "queue_staged_bytes " + std::to_string(queue.staged_bytes) + "\n";
    out += "queue_bytes_uploaded " + std::to_string(queue.bytes_uploaded) + "\n";
    out += "queue_uploads_done " + std::to_string(queue.uploads_done) + "\n";
    out += "queue_retries " + std::to_string(queue.retries) + "\n";
    out += "queue_backoff " + std::to_string(queue.backoff) + "\n";
    out += "queue_stuck " + std::to_string(queue.stuck) + "\n";
    out += "queue_dropped " + std::to_string(queue.dropped) + "\n";
    out += "staging_bytes " + std::to_string(staging_->used_bytes()) + "\n";
    out += "files_being_written " + std::to_string(core.files_being_written) + "\n";
  }
  if (extra_) out += extra_();
  return out;
}

std::string ControlSurface::QueueText(uint64_t after, size_t max_bytes) {
  if (queue_ == nullptr) return "read-only mount: no upload queue\n";
  std::string out = "SEQ\tSTATE\tOP\tKEY\tSIZE\tAGE_S\tATTEMPTS\tPARTS\tNEXT_S\tLAST_ERROR\n";
  const size_t header = out.size();
  constexpr size_t kBatch = 256;
  while (true) {
    const std::vector<QueueEntryView> batch = queue_->List(after, kBatch);
    for (const QueueEntryView& entry : batch) {
      std::string key = entry.key;
      if (entry.op == QueueOp::kCopy) key = entry.source + " -> " + entry.key;
      char age[32];
      std::snprintf(age, sizeof age, "%.1f", entry.age.count() / 1000.0);
      char next[32] = "-";
      if (entry.next_attempt_in) {
        std::snprintf(next, sizeof next, "%.1f", entry.next_attempt_in->count() / 1000.0);
      }
      std::string error = entry.last_error;
      if (error.size() > kMaxErrorBytes) error = error.substr(0, kMaxErrorBytes - 3) + "...";
      std::string line =
          std::to_string(entry.sequence) + "\t" + std::string(QueueEntryStateName(entry.state)) +
          "\t" + std::string(QueueOpName(entry.op)) + "\t" + key + "\t" +
          std::to_string(entry.size) + "\t" + age + "\t" + std::to_string(entry.attempts) + "\t" +
          std::to_string(entry.parts_done) + "\t" + next + "\t" + error + "\n";
      if (out.size() > header && out.size() + line.size() > max_bytes) return out;
      out += line;
      after = entry.sequence;
    }
    if (batch.size() < kBatch) return out;
  }
}

Result<uint64_t> ControlSurface::RetryQueue() {
  if (queue_ == nullptr) return Status::ReadOnly("the filesystem is mounted read-only");
  const uint64_t dead = queue_->stats().dead_letters;
  STRATA_RETURN_IF_ERROR(queue_->RetryDeadLetters());
  return dead;
}

}  // namespace strata
