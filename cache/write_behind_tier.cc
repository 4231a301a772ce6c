#include "cache/write_behind_tier.h"

#include <spdlog/spdlog.h>

namespace strata {

WriteBehindTier::WriteBehindTier(ChunkTier& inner, uint64_t max_queued_bytes, CacheStats& stats)
    : inner_(inner),
      max_queued_bytes_(max_queued_bytes),
      stats_(stats),
      writer_([this] { WriterLoop(); }) {}

WriteBehindTier::~WriteBehindTier() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.NotifyAll();
  writer_.join();
}

Result<std::optional<ChunkData>> WriteBehindTier::Get(const ChunkKey& key) {
  const std::string id = key.Id();
  {
    MutexLock lock(mu_);
    if (auto it = queued_by_id_.find(id); it != queued_by_id_.end()) {
      return std::optional<ChunkData>(it->second);
    }
  }
  return inner_.Get(key);
}

Result<std::optional<ChunkSlice>> WriteBehindTier::GetRange(const ChunkKey& key, uint64_t offset,
                                                            uint64_t length) {
  const std::string id = key.Id();
  {
    MutexLock lock(mu_);
    if (auto it = queued_by_id_.find(id); it != queued_by_id_.end()) {
      return std::optional<ChunkSlice>(
          ChunkSlice{it->second, static_cast<size_t>(offset), static_cast<size_t>(length)});
    }
  }
  return inner_.GetRange(key, offset, length);
}

Status WriteBehindTier::Put(const ChunkKey& key, const ChunkData& data) {
  std::string id = key.Id();
  {
    MutexLock lock(mu_);
    if (queued_by_id_.count(id) != 0) return Status::Ok();
    if (queued_bytes_ != 0 && queued_bytes_ + data->size() > max_queued_bytes_) {
      stats_.disk_write_drops.fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    }
    queued_bytes_ += data->size();
    queued_by_id_.emplace(std::move(id), data);
    queue_.push_back(Pending{key, data});
  }
  wake_.NotifyOne();
  return Status::Ok();
}

void WriteBehindTier::Drain() {
  MutexLock lock(mu_);
  drained_.Wait(lock, [this]() REQUIRES(mu_) { return queue_.empty() && !writing_; });
}

void WriteBehindTier::WriterLoop() {
  MutexLock lock(mu_);
  for (;;) {
    wake_.Wait(lock, [this]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.Unlock();
    Status st = inner_.Put(next.key, next.data);
    if (!st.ok())
      spdlog::debug("disk cache write of '{}' skipped: {}", next.key.object_key, st.ToString());
    lock.Lock();
    // Unqueue only now, so Get finds the chunk either queued or on disk.
    queued_by_id_.erase(next.key.Id());
    queued_bytes_ -= next.data->size();
    writing_ = false;
    if (queue_.empty()) drained_.NotifyAll();
  }
}

}  // namespace strata
