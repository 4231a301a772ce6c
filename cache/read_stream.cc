#include "cache/read_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace strata {

ReadStream::ReadStream(ChunkFetcher& fetcher, ObjectVersion object, Options options)
    : fetcher_(fetcher),
      object_(std::move(object)),
      chunk_count_(fetcher.ChunkCount(object_.size)),
      max_window_(options.max_readahead_bytes == 0
                      ? 0
                      : std::max<uint64_t>(1, options.max_readahead_bytes / fetcher.chunk_size())),
      initial_window_(std::clamp<uint64_t>(options.initial_readahead_chunks, 1,
                                           std::max<uint64_t>(max_window_, 1))),
      slack_(options.sequential_slack_bytes),
      cancel_(std::make_shared<std::atomic<bool>>(false)) {}

ReadStream::~ReadStream() {
  MutexLock lock(mu_);
  cancel_->store(true, std::memory_order_relaxed);
}

uint64_t ReadStream::readahead_window_chunks() const {
  MutexLock lock(mu_);
  return window_;
}

Result<size_t> ReadStream::Read(uint64_t offset, std::span<char> out) {
  STRATA_ASSIGN_OR_RETURN(std::vector<Slice> slices, ReadSlices(offset, out.size()));
  size_t copied = 0;
  for (const Slice& slice : slices) {
    std::memcpy(out.data() + copied, slice.chunk->data() + slice.offset, slice.length);
    copied += slice.length;
  }
  return copied;
}

Result<std::vector<ReadStream::Slice>> ReadStream::ReadSlices(uint64_t offset, uint64_t size) {
  std::vector<Slice> slices;
  if (size == 0 || offset >= object_.size) return slices;
  const uint64_t end = offset + std::min<uint64_t>(size, object_.size - offset);
  const uint64_t chunk_size = fetcher_.chunk_size();

  const ReadAheadPlan plan = Advance(offset, end);
  if (plan.count > 0) {
    Settle(plan, fetcher_.Prefetch(object_, plan.first, plan.count, plan.cancel));
  }

  const ChunkFetcher::OnMiss on_miss = plan.kind == ReadKind::kFirstAtStart && max_window_ > 0
                                           ? ChunkFetcher::OnMiss::kBlocksThenChunk
                                           : ChunkFetcher::OnMiss::kBlocksOnly;
  for (uint64_t index = offset / chunk_size; index <= (end - 1) / chunk_size; ++index) {
    const uint64_t chunk_start = index * chunk_size;
    const uint64_t from = std::max(offset, chunk_start) - chunk_start;
    const uint64_t to = std::min(end, chunk_start + chunk_size) - chunk_start;
    if (plan.kind != ReadKind::kSequential) {
      STRATA_ASSIGN_OR_RETURN(Slice slice, Part(index, from, to - from, on_miss));
      slices.push_back(std::move(slice));
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(ChunkData chunk, Chunk(index));
    if (chunk->size() < to) {
      return Status::Internal("chunk " + std::to_string(index) + " of '" + object_.key +
                              "' is shorter than the object size implies");
    }
    slices.push_back(
        Slice{std::move(chunk), static_cast<size_t>(from), static_cast<size_t>(to - from)});
  }
  return slices;
}

ReadStream::ReadAheadPlan ReadStream::Advance(uint64_t offset, uint64_t end) {
  const uint64_t last_chunk = (end - 1) / fetcher_.chunk_size();
  MutexLock lock(mu_);
  const bool sequential =
      has_read_ && offset + slack_ >= next_offset_ && offset <= next_offset_ + slack_;
  const bool first_at_start = !has_read_ && offset == 0;
  has_read_ = true;
  if (!sequential) {
    if (requested_until_ > 0) {
      cancel_->store(true, std::memory_order_relaxed);
      cancel_ = std::make_shared<std::atomic<bool>>(false);
    }
    window_ = 0;
    requested_until_ = 0;
    current_chunk_ = last_chunk;
    next_offset_ = end;
    return {.kind = first_at_start ? ReadKind::kFirstAtStart : ReadKind::kRandom};
  }
  next_offset_ = std::max(next_offset_, end);
  if (max_window_ == 0) return {.kind = ReadKind::kSequential};
  if (window_ == 0) {
    window_ = initial_window_;
  } else if (last_chunk > current_chunk_) {
    window_ = std::min(window_ * 2, max_window_);
  }
  current_chunk_ = std::max(current_chunk_, last_chunk);
  const uint64_t first = std::max(requested_until_, current_chunk_ + 1);
  const uint64_t until = std::min(current_chunk_ + 1 + window_, chunk_count_);
  if (until <= first) return {.kind = ReadKind::kSequential};
  requested_until_ = until;
  return {ReadKind::kSequential, first, until - first, cancel_};
}

void ReadStream::Settle(const ReadAheadPlan& plan, uint64_t covered) {
  MutexLock lock(mu_);
  // Only when nothing moved the window meanwhile (another read or a jump).
  if (cancel_ == plan.cancel && requested_until_ == plan.first + plan.count &&
      covered < requested_until_) {
    requested_until_ = covered;
  }
}

Result<ChunkData> ReadStream::Chunk(uint64_t index) {
  if (ChunkData recent = Recent(index)) return recent;
  Result<ChunkData> chunk = fetcher_.GetChunk(object_, index);
  if (chunk.ok()) Remember(index, *chunk);
  return chunk;
}

Result<ReadStream::Slice> ReadStream::Part(uint64_t index, uint64_t offset, uint64_t length,
                                           ChunkFetcher::OnMiss on_miss) {
  const uint64_t chunk_length = fetcher_.ChunkLength(object_, index);
  if (ChunkData recent = Recent(index); recent && recent->size() == chunk_length) {
    return Slice{std::move(recent), static_cast<size_t>(offset), static_cast<size_t>(length)};
  }
  STRATA_ASSIGN_OR_RETURN(ChunkSlice got,
                          fetcher_.GetRange(object_, index, offset, length, on_miss));
  // A whole chunk (from the memory tier) is remembered; blocks are not.
  if (got.offset == offset && got.data->size() == chunk_length) Remember(index, got.data);
  return Slice{std::move(got.data), got.offset, got.length};
}

ChunkData ReadStream::Recent(uint64_t index) {
  MutexLock lock(mu_);
  for (const RecentChunk& recent : recent_) {
    if (recent.index != index) continue;
    if (ChunkData data = recent.data.lock()) return data;
  }
  return nullptr;
}

void ReadStream::Remember(uint64_t index, const ChunkData& data) {
  MutexLock lock(mu_);
  auto same = std::find_if(recent_.begin(), recent_.end(),
                           [&](const RecentChunk& recent) { return recent.index == index; });
  RecentChunk& slot = same != recent_.end() ? *same : recent_[next_recent_++ % recent_.size()];
  slot.index = index;
  slot.data = data;
}

}  // namespace strata
