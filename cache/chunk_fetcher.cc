#include "cache/chunk_fetcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <functional>
#include <iterator>
#include <span>
#include <utility>

namespace strata {

// One chunk being fetched (or queued for read-ahead), shared by everyone who wants it.
// Every field but `id` is guarded by ChunkFetcher::mu_.
struct ChunkFetcher::Flight {
  enum class State {
    kQueued,   // read-ahead waiting for a worker; a reader takes it over rather than wait
    kRunning,  // a worker or a reader is looking it up or fetching it; others join
    kDone,     // result is set; no longer in flights_
  };

  explicit Flight(std::string chunk_id) : id(std::move(chunk_id)) {}

  const std::string id;
  State state = State::kRunning;
  bool readahead = false;  // led by a read-ahead worker
  uint64_t reserved = 0;   // read-ahead budget bytes held until completion
  size_t waiters = 0;      // readers that joined
  std::optional<Result<ChunkData>> result;
  CondVar done;  // waits on ChunkFetcher::mu_
};

namespace {

// Tier lookups a miss makes at most while flights of chunks sharing its completion counter end.
constexpr int kMaxLookups = 4;

std::vector<ChunkTier*> NonNull(std::vector<ChunkTier*> tiers) {
  std::erase(tiers, nullptr);
  return tiers;
}

}  // namespace

ChunkFetcher::ChunkFetcher(ObjectStore& store, std::vector<ChunkTier*> tiers, Options options,
                           CacheStats& stats)
    : store_(store),
      tiers_(NonNull(std::move(tiers))),
      chunk_size_(options.chunk_size),
      block_size_(options.block_size),
      readahead_budget_(options.readahead_budget_bytes),
      max_unread_(options.max_unread_readahead),
      stats_(stats),
      buffers_(chunk_size_, options.kept_buffers) {
  assert(chunk_size_ > 0);
  assert(block_size_ > 0);
  workers_.reserve(options.readahead_workers);
  for (size_t i = 0; i < options.readahead_workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ChunkFetcher::~ChunkFetcher() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    for (Task& task : queue_) {
      std::shared_ptr<Flight> flight = task.flight.lock();
      if (!flight || flight->state != Flight::State::kQueued) continue;  // a reader took it over
      flight->state = Flight::State::kDone;
      flight->result = Status::Internal("read-ahead cancelled: fetcher shutting down");
      readahead_reserved_ -= std::exchange(flight->reserved, 0);
      flights_.erase(flight->id);
    }
    queue_.clear();
  }
  work_cv_.NotifyAll();
  idle_cv_.NotifyAll();
  for (std::thread& worker : workers_) worker.join();
}

uint64_t ChunkFetcher::ChunkCount(uint64_t size) const {
  return size / chunk_size_ + (size % chunk_size_ != 0 ? 1 : 0);
}

uint64_t ChunkFetcher::ChunkLength(const ObjectVersion& object, uint64_t index) const {
  return std::min<uint64_t>(chunk_size_, object.size - index * chunk_size_);
}

ChunkKey ChunkFetcher::KeyOf(const ObjectVersion& object, uint64_t index) const {
  return ChunkKey{object.bucket, object.key, object.etag, chunk_size_, index};
}

Status ChunkFetcher::CheckChunk(const ObjectVersion& object, uint64_t index) const {
  if (object.etag.empty()) {
    return Status::InvalidArgument("chunk fetch of '" + object.key + "' without an ETag");
  }
  if (index >= ChunkCount(object.size)) {
    return Status::InvalidArgument("chunk " + std::to_string(index) + " is past the end of '" +
                                   object.key + "' (" + std::to_string(object.size) + " bytes)");
  }
  return Status::Ok();
}

std::atomic<uint64_t>& ChunkFetcher::CompletionsFor(const std::string& id) {
  return completions_[std::hash<std::string>{}(id) % completions_.size()];
}

Result<ChunkData> ChunkFetcher::GetChunk(const ObjectVersion& object, uint64_t index) {
  STRATA_RETURN_IF_ERROR(CheckChunk(object, index));
  const ChunkKey key = KeyOf(object, index);
  const std::string id = key.Id();
  if (std::optional<ChunkData> unread = TakeUnread(id)) {
    stats_.readahead_hits.fetch_add(1, std::memory_order_relaxed);
    return *std::move(unread);
  }
  const uint64_t length = ChunkLength(object, index);
  std::atomic<uint64_t>& completions = CompletionsFor(id);
  std::shared_ptr<Flight> flight;
  for (int attempt = 1; !flight; ++attempt) {
    const uint64_t completions_seen = completions.load(std::memory_order_acquire);
    if (std::optional<TierHit> hit = LookUpTiers(key, length)) return std::move(hit->data);
    MutexLock lock(mu_);
    auto found = flights_.find(id);
    if (found != flights_.end() && found->second->state == Flight::State::kRunning) {
      return Join(found->second, lock);
    }
    // A flight for this chunk may have completed (and filled the tiers) since the lookup began,
    // even if read-ahead queued it again since: then look again before fetching.
    // Other chunks share the counter: give up looking again after a few rounds (at worst a
    // second GET of the same bytes) rather than spin under heavy load.
    if (attempt < kMaxLookups && completions.load(std::memory_order_acquire) != completions_seen) {
      continue;
    }
    if (found == flights_.end()) {
      flight = std::make_shared<Flight>(id);
      flights_.emplace(id, flight);
    } else {
      // Queued read-ahead nobody has started: fetch it now rather than wait behind the queue.
      flight = found->second;
      flight->state = Flight::State::kRunning;
      flight->readahead = false;
      readahead_reserved_ -= std::exchange(flight->reserved, 0);
    }
  }
  Result<ChunkData> result = FetchFromStore(object, index);
  Complete(flight, key, result, Source::kStore);
  return result;
}

Result<ChunkSlice> ChunkFetcher::GetRange(const ObjectVersion& object, uint64_t index,
                                          uint64_t offset, uint64_t length, OnMiss on_miss) {
  STRATA_RETURN_IF_ERROR(CheckChunk(object, index));
  const uint64_t chunk_length = ChunkLength(object, index);
  if (length == 0 || offset > chunk_length || length > chunk_length - offset) {
    return Status::InvalidArgument("range of " + std::to_string(length) + " bytes at " +
                                   std::to_string(offset) + " is not within chunk " +
                                   std::to_string(index) + " of '" + object.key + "'");
  }
  const uint64_t blocks_from = offset / block_size_ * block_size_;
  const uint64_t blocks_to =
      std::min(((offset + length - 1) / block_size_ + 1) * block_size_, chunk_length);
  auto slice_of = [&](ChunkData chunk) {
    return ChunkSlice{std::move(chunk), static_cast<size_t>(offset), static_cast<size_t>(length)};
  };
  if (blocks_from == 0 && blocks_to == chunk_length) {
    STRATA_ASSIGN_OR_RETURN(ChunkData chunk, GetChunk(object, index));
    return slice_of(std::move(chunk));
  }
  const ChunkKey key = KeyOf(object, index);
  const std::string id = key.Id();
  if (std::optional<ChunkData> unread = TakeUnread(id)) {
    stats_.readahead_hits.fetch_add(1, std::memory_order_relaxed);
    return slice_of(*std::move(unread));
  }
  for (size_t tier = 0; tier < tiers_.size(); ++tier) {
    Result<std::optional<ChunkSlice>> got = tiers_[tier]->GetRange(key, offset, length);
    if (!got.ok()) {
      spdlog::warn("chunk cache tier {} range lookup failed, treated as a miss: {}", tier,
                   got.status().ToString());
      continue;
    }
    if (!got->has_value()) continue;
    ChunkSlice slice = **std::move(got);
    if (!slice.data || slice.length != length || slice.offset > slice.data->size() ||
        slice.length > slice.data->size() - slice.offset) {
      spdlog::warn("chunk cache tier {} returned a bad range of a chunk, treated as a miss", tier);
      continue;
    }
    return slice;
  }
  {
    MutexLock lock(mu_);
    auto found = flights_.find(id);
    if (found != flights_.end() && found->second->state == Flight::State::kRunning) {
      STRATA_ASSIGN_OR_RETURN(ChunkData chunk, Join(found->second, lock));
      return slice_of(std::move(chunk));
    }
  }
  // Queued first, so that the chunk's GET runs while this read's small one does.
  if (on_miss == OnMiss::kBlocksThenChunk) Prefetch(object, index, 1);
  stats_.s3_range_gets.fetch_add(1, std::memory_order_relaxed);
  STRATA_ASSIGN_OR_RETURN(ChunkData blocks,
                          FetchFromStore(object, index, blocks_from, blocks_to - blocks_from));
  return ChunkSlice{std::move(blocks), static_cast<size_t>(offset - blocks_from),
                    static_cast<size_t>(length)};
}

Result<ChunkData> ChunkFetcher::Join(std::shared_ptr<Flight> flight, MutexLock& lock) {
  ++flight->waiters;
  stats_.coalesced_requests.fetch_add(1, std::memory_order_relaxed);
  flight->done.Wait(lock, [&]() REQUIRES(mu_) { return flight->state == Flight::State::kDone; });
  return *flight->result;
}

uint64_t ChunkFetcher::Prefetch(const ObjectVersion& object, uint64_t first, uint64_t count,
                                CancelFlag cancel) {
  const uint64_t chunks = ChunkCount(object.size);
  if (object.etag.empty() || first >= chunks || count == 0) return first;
  const uint64_t end = first + std::min(count, chunks - first);
  // Hashing the keys is not free: do it before taking the lock.
  std::vector<std::string> ids;
  ids.reserve(end - first);
  for (uint64_t index = first; index < end; ++index) ids.push_back(KeyOf(object, index).Id());

  uint64_t covered = first;
  bool queued = false;
  {
    MutexLock lock(mu_);
    if (stopping_ || workers_.empty()) return first;
    for (uint64_t index = first; index < end; ++index) {
      const std::string& id = ids[index - first];
      if (!flights_.contains(id) && !unread_.contains(id)) {
        const uint64_t length = ChunkLength(object, index);
        if (readahead_reserved_ + length > readahead_budget_) break;
        readahead_reserved_ += length;
        auto flight = std::make_shared<Flight>(id);
        flight->state = Flight::State::kQueued;
        flight->readahead = true;
        flight->reserved = length;
        flights_.emplace(id, flight);
        queue_.push_back(Task{std::move(flight), object, index, cancel});
        queued = true;
      }
      covered = index + 1;
    }
  }
  if (queued) work_cv_.NotifyAll();
  return covered;
}

void ChunkFetcher::WaitIdle() {
  MutexLock lock(mu_);
  idle_cv_.Wait(lock, [&]() REQUIRES(mu_) {
    return stopping_ || (queue_.empty() && running_readahead_ == 0);
  });
}

uint64_t ChunkFetcher::readahead_bytes_in_use() const {
  MutexLock lock(mu_);
  return readahead_reserved_;
}

void ChunkFetcher::WorkerLoop() {
  for (;;) {
    Task task;
    std::shared_ptr<Flight> flight;
    {
      MutexLock lock(mu_);
      work_cv_.Wait(lock, [&]() REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      flight = task.flight.lock();
      const bool cancelled = task.cancel && task.cancel->load(std::memory_order_relaxed);
      if (flight && flight->state == Flight::State::kQueued && cancelled) {
        // Nobody waits on a queued flight: readers take those over instead of joining.
        flight->state = Flight::State::kDone;
        flight->result = Status::Internal("read-ahead cancelled by its reader");
        readahead_reserved_ -= std::exchange(flight->reserved, 0);
        flights_.erase(flight->id);
      }
      if (!flight || flight->state != Flight::State::kQueued) {
        if (queue_.empty() && running_readahead_ == 0) idle_cv_.NotifyAll();
        continue;
      }
      flight->state = Flight::State::kRunning;
      ++running_readahead_;
    }
    RunReadAhead(flight, task);
    MutexLock lock(mu_);
    --running_readahead_;
    if (queue_.empty() && running_readahead_ == 0) idle_cv_.NotifyAll();
  }
}

void ChunkFetcher::RunReadAhead(const std::shared_ptr<Flight>& flight, const Task& task) {
  const ChunkKey key = KeyOf(task.object, task.index);
  if (std::optional<TierHit> hit = LookUpTiers(key, ChunkLength(task.object, task.index))) {
    Complete(flight, key, hit->data, hit->tier == 0 ? Source::kFastestTier : Source::kSlowerTier);
    return;
  }
  Result<ChunkData> result = FetchFromStore(task.object, task.index);
  if (!result.ok()) {
    spdlog::debug("read-ahead of chunk {} of '{}' failed: {}", task.index, task.object.key,
                  result.status().ToString());
  }
  Complete(flight, key, result, Source::kStore);
}

std::optional<ChunkFetcher::TierHit> ChunkFetcher::LookUpTiers(const ChunkKey& key,
                                                               uint64_t length) {
  for (size_t tier = 0; tier < tiers_.size(); ++tier) {
    Result<std::optional<ChunkData>> got = tiers_[tier]->Get(key);
    if (!got.ok()) {
      spdlog::warn("chunk cache tier {} lookup failed, treated as a miss: {}", tier,
                   got.status().ToString());
      continue;
    }
    if (!got->has_value()) continue;
    ChunkData data = std::move(**got);
    if (!data || data->size() != length) {
      spdlog::warn("chunk cache tier {} returned {} bytes for a chunk of {}, treated as a miss",
                   tier, data ? data->size() : 0, length);
      continue;
    }
    for (size_t faster = 0; faster < tier; ++faster) PutIntoTier(*tiers_[faster], key, data);
    return TierHit{std::move(data), tier};
  }
  return std::nullopt;
}

Result<ChunkData> ChunkFetcher::FetchFromStore(const ObjectVersion& object, uint64_t index,
                                               uint64_t offset_in_chunk,
                                               std::optional<uint64_t> range_length) {
  const uint64_t offset = index * chunk_size_ + offset_in_chunk;
  const uint64_t length = range_length.value_or(ChunkLength(object, index));
  // A recycled buffer when there is one (whole chunks); GetInto writes into it directly.
  AlignedBuffer buffer = buffers_.Take(length);
  GetOptions options{.range = ByteRange{offset, length}, .if_match = object.etag};
  stats_.s3_gets.fetch_add(1, std::memory_order_relaxed);
  STRATA_ASSIGN_OR_RETURN(
      GetIntoResult got,
      store_.GetInto(object.key, options, std::span<char>(buffer.data(), buffer.size())));
  stats_.s3_bytes.fetch_add(got.bytes, std::memory_order_relaxed);
  if (got.bytes != length) {
    return Status::Transient("short body for chunk " + std::to_string(index) + " of '" +
                             object.key + "' at " + std::to_string(offset_in_chunk) + ": " +
                             std::to_string(got.bytes) + " of " + std::to_string(length) +
                             " bytes");
  }
  if (got.info.size != object.size) {
    return Status::PreconditionFailed("'" + object.key + "' is " + std::to_string(got.info.size) +
                                      " bytes, the version read expects " +
                                      std::to_string(object.size));
  }
  return buffers_.Share(std::move(buffer));
}

void ChunkFetcher::PutIntoTier(ChunkTier& tier, const ChunkKey& key, const ChunkData& data) {
  Status status = tier.Put(key, data);
  if (status.ok()) return;
  if (status.kind() == ErrorKind::kNoSpace) {
    spdlog::debug("chunk not cached in a tier: {}", status.ToString());
  } else {
    spdlog::warn("chunk not cached in a tier: {}", status.ToString());
  }
  IgnoreError(status, "a chunk a tier cannot hold is still served to the reader");
}

void ChunkFetcher::Complete(const std::shared_ptr<Flight>& flight, const ChunkKey& key,
                            const Result<ChunkData>& result, Source source) {
  const bool store_bytes = result.ok() && source == Source::kStore;
  if (store_bytes && !tiers_.empty()) PutIntoTier(*tiers_.front(), key, *result);
  {
    MutexLock lock(mu_);
    flight->result = result;
    flight->state = Flight::State::kDone;
    auto found = flights_.find(flight->id);
    if (found != flights_.end() && found->second == flight) flights_.erase(found);
    CompletionsFor(flight->id).fetch_add(1, std::memory_order_release);
    if (flight->readahead) {
      readahead_reserved_ -= std::exchange(flight->reserved, 0);
      if (result.ok() && source != Source::kFastestTier) {
        stats_.readahead_chunks.fetch_add(1, std::memory_order_relaxed);
        if (flight->waiters > 0) {
          stats_.readahead_hits.fetch_add(1, std::memory_order_relaxed);
        } else {
          RememberUnread(flight->id, *result);
        }
      }
    }
    flight->done.NotifyAll();
  }
  if (!store_bytes) return;
  for (size_t tier = 1; tier < tiers_.size(); ++tier) PutIntoTier(*tiers_[tier], key, *result);
}

std::optional<ChunkData> ChunkFetcher::TakeUnread(const std::string& id) {
  MutexLock lock(mu_);
  auto found = unread_.find(id);
  if (found == unread_.end()) return std::nullopt;
  ChunkData data = found->second.data.lock();
  unread_order_.erase(found->second.age);
  unread_.erase(found);
  if (!data) return std::nullopt;
  return data;
}

void ChunkFetcher::RememberUnread(const std::string& id, const ChunkData& data) {
  if (max_unread_ == 0) return;
  auto [entry, inserted] = unread_.try_emplace(id);
  if (!inserted) {
    unread_order_.splice(unread_order_.end(), unread_order_, entry->second.age);
  } else {
    entry->second.age = unread_order_.insert(unread_order_.end(), id);
  }
  entry->second.data = data;
  while (unread_.size() > max_unread_) {
    unread_.erase(unread_order_.front());
    unread_order_.pop_front();
  }
}

}  // namespace strata
