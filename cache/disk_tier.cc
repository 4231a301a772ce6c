#include "cache/disk_tier.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <tuple>
#include <utility>

#include "base/posix_file.h"
#include "cache/chunk_file.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsChunkId(std::string_view name) { return name.size() == 32 && IsHex(name); }
bool IsFanoutName(std::string_view name) { return name.size() == 2 && IsHex(name); }

// Removes a file that may already be gone; other failures are logged, since the file then
// keeps taking space until the next Open.
void RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("disk cache: cannot remove {}: {}", path, std::strerror(errno));
  }
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

bool DirectoryIsEmpty(const std::string& dir) {
  std::error_code ec;
  return fs::directory_iterator(dir, ec) == fs::directory_iterator();
}

// What Recover found, for its log line.
struct RecoveryReport {
  uint64_t temp_files = 0;
  uint64_t rows_dropped = 0;
  uint64_t reindexed = 0;
  uint64_t files_deleted = 0;
};

}  // namespace

Result<std::unique_ptr<DiskTier>> DiskTier::Open(DiskTierOptions options, CacheStats& stats) {
  while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
  if (options.root.empty()) return Status::InvalidArgument("disk cache: root is empty");
  if (options.max_bytes == 0) return Status::InvalidArgument("disk cache: max_bytes is 0");
  if (options.access_flush_interval < Clock::Duration::zero()) {
    return Status::InvalidArgument("disk cache: negative access_flush_interval");
  }
  STRATA_RETURN_IF_ERROR(MakePrivateDir(options.root));
  SystemClock system_clock;
  Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
  STRATA_ASSIGN_OR_RETURN(DirLock lock,
                          DirLock::Acquire(options.root, "disk cache", clock, options.lock_wait));
  std::unique_ptr<DiskTier> tier(new DiskTier(std::move(options), stats, std::move(lock)));
  if (::mkdir(tier->chunks_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir " + tier->chunks_dir_);
  }
  WriterMutexLock gate(tier->gate_);
  STRATA_RETURN_IF_ERROR(tier->OpenIndex());
  STRATA_RETURN_IF_ERROR(tier->Recover());
  tier->EvictOverLimit();  // the limit may have shrunk since the last run
  gate.Unlock();
  return tier;
}

DiskTier::DiskTier(DiskTierOptions options, CacheStats& stats, DirLock dir_lock)
    : options_(std::move(options)),
      stats_(stats),
      owned_clock_(options_.clock == nullptr ? std::make_unique<SystemClock>() : nullptr),
      clock_(options_.clock != nullptr ? options_.clock : owned_clock_.get()),
      dir_lock_(std::move(dir_lock)),
      index_path_(options_.root + "/index.db"),
      chunks_dir_(options_.root + "/chunks") {
  MutexLock lock(mu_);
  opened_at_ = clock_->Now();
  next_flush_ = opened_at_ + options_.access_flush_interval;
}

DiskTier::~DiskTier() {
  {
    WriterMutexLock gate(gate_);
    Status st = FlushPending();
    if (!st.ok()) spdlog::warn("disk cache {}: {}", options_.root, st.ToString());
    index_.reset();
  }
}

std::string DiskTier::ChunkPath(const std::string& id) const {
  return chunks_dir_ + "/" + id.substr(0, 2) + "/" + id;
}

uint64_t DiskTier::ObjectHash(const std::string& bucket, const std::string& object_key) {
  const std::string encoded = std::to_string(bucket.size()) + ':' + bucket + object_key;
  return XXH3_64bits(encoded.data(), encoded.size());
}

uint64_t DiskTier::FreeSpace() {
  if (options_.free_space_probe) return options_.free_space_probe();
  return FreeSpaceOrUnlimited(options_.root, "disk cache");
}

Status DiskTier::OpenIndex() {
  if (::access(index_path_.c_str(), F_OK) != 0) {
    // A WAL without its database must not be applied to a new one.
    RemoveFile(index_path_ + "-wal");
    RemoveFile(index_path_ + "-shm");
    if (!DirectoryIsEmpty(chunks_dir_)) {
      spdlog::warn("disk cache {}: index.db is missing; rebuilding it from the chunk files",
                   options_.root);
    }
  }
  Result<std::unique_ptr<ChunkIndex>> index = ChunkIndex::Open(index_path_);
  if (!index.ok() && index.status().kind() == ErrorKind::kCorrupt) {
    const std::string aside = index_path_ + ".corrupt";
    spdlog::warn(
        "disk cache {}: index unusable ({}); moved it to {}, rebuilding it from the chunk "
        "files",
        options_.root, index.status().message(), aside);
    if (::rename(index_path_.c_str(), aside.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "rename " + index_path_);
    }
    RemoveFile(index_path_ + "-wal");
    RemoveFile(index_path_ + "-shm");
    index = ChunkIndex::Open(index_path_);
  }
  if (!index.ok()) return index.status();
  index_ = std::move(index).value();
  return Status::Ok();
}

Status DiskTier::Recover() {
  STRATA_ASSIGN_OR_RETURN(std::vector<ChunkIndex::Row> loaded, index_->LoadAll());
  RecoveryReport report;
  std::unordered_map<std::string, ChunkIndex::Row> unmatched;  // rows not yet matched to a file
  std::vector<std::string> drop;                               // rows to delete
  for (ChunkIndex::Row& row : loaded) {
    if (!IsChunkId(row.id) || row.key.Id() != row.id) {
      drop.push_back(row.id);
      ++report.rows_dropped;
      continue;
    }
    std::string id = row.id;
    unmatched.emplace(std::move(id), std::move(row));
  }
  std::vector<ChunkIndex::Row> kept;   // rows matched to a good file
  std::vector<ChunkIndex::Row> added;  // rows to (re)write
  std::error_code ec;
  for (fs::directory_iterator dir(chunks_dir_, ec), end; !ec && dir != end; dir.increment(ec)) {
    const std::string fanout = dir->path().filename().string();
    std::error_code type_ec;
    if (!IsFanoutName(fanout) || !dir->is_directory(type_ec)) {
      spdlog::warn("disk cache: ignoring unexpected {}", dir->path().string());
      continue;
    }
    std::error_code sub_ec;
    for (fs::directory_iterator file(dir->path(), sub_ec); !sub_ec && file != end;
         file.increment(sub_ec)) {
      const std::string name = file->path().filename().string();
      const std::string path = file->path().string();
      if (ChunkFile::IsTempName(name)) {
        RemoveFile(path);
        ++report.temp_files;
        continue;
      }
      if (!IsChunkId(name) || name.compare(0, 2, fanout) != 0) {
        spdlog::warn("disk cache: deleting stray file {}", path);
        RemoveFile(path);
        ++report.files_deleted;
        continue;
      }
      auto row = unmatched.find(name);
      if (row != unmatched.end()) {
        // Get verifies the contents; a size check here catches truncation cheaply.
        struct stat st;
        const uint64_t expected =
            ChunkFile::HeaderSize(row->second.key, row->second.size) + row->second.size;
        if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            static_cast<uint64_t>(st.st_size) == expected) {
          kept.push_back(std::move(row->second));
        } else {
          spdlog::warn("disk cache: deleting {}: its size does not match the index", path);
          RemoveFile(path);
          drop.push_back(name);
          ++report.files_deleted;
        }
        unmatched.erase(row);
        continue;
      }
      // No row (a crash between publishing and indexing, or a lost index): keep if it verifies.
      Result<ChunkFile::Contents> contents = ChunkFile::Read(path);
      if (contents.ok() && contents->header.key.Id() != name) {
        contents = Status::Corrupt(path + " holds a chunk with another id");
      }
      if (!contents.ok()) {
        spdlog::warn("disk cache: deleting {}", contents.status().ToString());
        RemoveFile(path);
        ++report.files_deleted;
        continue;
      }
      ChunkIndex::Row fresh;
      fresh.id = name;
      fresh.key = contents->header.key;
      fresh.size = contents->header.data_length;
      fresh.checksum = contents->header.data_checksum;
      fresh.last_access = 0;  // the oldest
      ++report.reindexed;
      added.push_back(std::move(fresh));
    }
    if (sub_ec) return Status::Io("list " + dir->path().string() + ": " + sub_ec.message());
  }
  if (ec) return Status::Io("list " + chunks_dir_ + ": " + ec.message());
  for (auto& [id, row] : unmatched) {
    drop.push_back(id);
    ++report.rows_dropped;
  }
  STRATA_RETURN_IF_ERROR(index_->Remove(drop));
  STRATA_RETURN_IF_ERROR(index_->Insert(added));

  kept.insert(kept.end(), std::make_move_iterator(added.begin()),
              std::make_move_iterator(added.end()));
  std::sort(kept.begin(), kept.end(), [](const ChunkIndex::Row& a, const ChunkIndex::Row& b) {
    return std::tie(a.last_access, a.id) < std::tie(b.last_access, b.id);
  });
  uint64_t used = 0;
  {
    MutexLock lock(mu_);
    entries_.clear();
    lru_.clear();
    pending_access_.clear();
    used_ = 0;
    int64_t max_tick = last_tick_;
    for (const ChunkIndex::Row& row : kept) {
      auto [it, inserted] = entries_.try_emplace(row.id);
      Entry& entry = it->second;
      entry.size = row.size;
      entry.object_hash = ObjectHash(row.key.bucket, row.key.object_key);
      entry.generation = next_generation_++;
      entry.last_access = row.last_access;
      entry.lru = lru_.insert(lru_.end(), &it->first);
      used_ += row.size;
      max_tick = std::max(max_tick, row.last_access);
    }
    tick_base_ = max_tick;
    last_tick_ = max_tick;
    opened_at_ = clock_->Now();
    used = used_;
  }
  spdlog::info(
      "disk cache {}: {} chunks, {} bytes; removed {} temp files, dropped {} index rows without a "
      "good file, re-indexed {} files, deleted {} bad files",
      options_.root, kept.size(), used, report.temp_files, report.rows_dropped, report.reindexed,
      report.files_deleted);
  return Status::Ok();
}

void DiskTier::EvictOverLimit() {
  std::vector<std::string> victims;
  {
    MutexLock lock(mu_);
    if (used_ + reserved_ <= options_.max_bytes) return;
    // Evicts what it can even when pins keep the tier over the limit.
    PickVictimsLocked(used_ + reserved_ - options_.max_bytes, &victims);
    victims = DetachLocked(victims, std::nullopt);
  }
  stats_.disk_evictions.fetch_add(victims.size(), std::memory_order_relaxed);
  RemoveDetached(victims);
}

std::optional<uint64_t> DiskTier::Touch(const std::string& id) {
  {
    MutexLock lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      TouchLocked(id, it->second);
      return it->second.generation;
    }
  }
  stats_.disk_misses.fetch_add(1, std::memory_order_relaxed);
  MaybeFlush();
  return std::nullopt;
}

Status DiskTier::DropUnreadable(const std::string& id, uint64_t generation, const Status& problem) {
  // Never serve what failed: drop the entry (unless a new Put replaced it meanwhile).
  const bool dropped = !Remove({id}, generation).empty();
  stats_.disk_misses.fetch_add(1, std::memory_order_relaxed);
  MaybeFlush();
  if (problem.IsNotFound()) {
    if (dropped) spdlog::warn("disk cache: {} vanished; dropped it from the index", ChunkPath(id));
    return Status::Ok();
  }
  if (problem.kind() == ErrorKind::kCorrupt) {
    stats_.disk_checksum_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("disk cache: deleted bad chunk: {}", problem.message());
    return Status::Ok();
  }
  spdlog::warn("disk cache: dropped unreadable chunk: {}", problem.ToString());
  return problem;
}

Result<std::optional<ChunkData>> DiskTier::Get(const ChunkKey& key) {
  ReaderMutexLock gate(gate_);
  const std::string id = key.Id();
  const std::optional<uint64_t> generation = Touch(id);
  if (!generation.has_value()) return std::optional<ChunkData>();
  const std::string path = ChunkPath(id);
  Result<ChunkFile::Contents> contents = ChunkFile::Read(path);
  if (contents.ok() && !(contents->header.key == key)) {
    contents = Status::Corrupt(path + " holds another chunk key (an id collision)");
  }
  if (contents.ok()) {
    stats_.disk_hits.fetch_add(1, std::memory_order_relaxed);
    stats_.disk_bytes_served.fetch_add(contents->header.data_length, std::memory_order_relaxed);
    MaybeFlush();
    return std::optional<ChunkData>(std::move(contents->data));
  }
  STRATA_RETURN_IF_ERROR(DropUnreadable(id, *generation, contents.status()));
  return std::optional<ChunkData>();
}

Result<std::optional<ChunkSlice>> DiskTier::GetRange(const ChunkKey& key, uint64_t offset,
                                                     uint64_t length) {
  ReaderMutexLock gate(gate_);
  const std::string id = key.Id();
  const std::optional<uint64_t> generation = Touch(id);
  if (!generation.has_value()) return std::optional<ChunkSlice>();
  const std::string path = ChunkPath(id);
  Result<ChunkFile::Range> range = ChunkFile::ReadRange(path, offset, length);
  if (range.ok() && !(range->header.key == key)) {
    range = Status::Corrupt(path + " holds another chunk key (an id collision)");
  }
  if (range.ok()) {
    stats_.disk_hits.fetch_add(1, std::memory_order_relaxed);
    stats_.disk_range_hits.fetch_add(1, std::memory_order_relaxed);
    stats_.disk_range_bytes_read.fetch_add(range->blocks->size(), std::memory_order_relaxed);
    stats_.disk_bytes_served.fetch_add(length, std::memory_order_relaxed);
    MaybeFlush();
    return std::optional<ChunkSlice>(
        ChunkSlice{std::move(range->blocks), range->offset, static_cast<size_t>(length)});
  }
  if (range.status().kind() == ErrorKind::kInvalidArgument) {
    MaybeFlush();
    return range.status();  // the caller's range, not the file, is wrong
  }
  STRATA_RETURN_IF_ERROR(DropUnreadable(id, *generation, range.status()));
  return std::optional<ChunkSlice>();
}

Status DiskTier::Put(const ChunkKey& key, const ChunkData& data) {
  if (data == nullptr) return Status::InvalidArgument("disk cache: Put without data");
  ReaderMutexLock gate(gate_);
  const std::string id = key.Id();
  const uint64_t size = data->size();
  const uint64_t free =
      options_.min_free_bytes > 0 ? FreeSpace() : std::numeric_limits<uint64_t>::max();
  std::vector<std::string> victims;
  ChunkIndex::Row row;
  bool stored_already = false;
  {
    MutexLock lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      // Chunks are immutable: the entry with this id already holds these bytes.
      TouchLocked(id, it->second);
      stored_already = true;
    } else if (busy_.contains(id)) {
      return Status::Ok();  // another thread is writing it (or removing it: a miss, no harm)
    } else {
      const uint64_t committed = used_ + reserved_;
      uint64_t need = 0;
      if (SaturatingAdd(committed, size) > options_.max_bytes) {
        need = SaturatingAdd(committed, size) - options_.max_bytes;
      }
      if (options_.min_free_bytes > 0) {
        // Puts in flight will take what they reserved out of the free space.
        const uint64_t available = free > reserved_ ? free - reserved_ : 0;
        const uint64_t wanted = SaturatingAdd(options_.min_free_bytes, size);
        if (wanted > available) need = std::max(need, wanted - available);
      }
      if (!PickVictimsLocked(need, &victims)) {
        return Status::NoSpace("disk cache: no room for a chunk of " + std::to_string(size) +
                               " bytes (max_bytes " + std::to_string(options_.max_bytes) +
                               ", min_free_bytes " + std::to_string(options_.min_free_bytes) +
                               ", free " + std::to_string(free) + ")");
      }
      victims = DetachLocked(victims, std::nullopt);
      busy_.insert(id);
      reserved_ += size;
      row.last_access = NextTickLocked();
    }
  }
  if (stored_already) {
    MaybeFlush();
    return Status::Ok();
  }
  stats_.disk_evictions.fetch_add(victims.size(), std::memory_order_relaxed);
  RemoveDetached(victims);

  // Publish the file first, then its row: a crash in between leaves a file that Open
  // re-indexes, never a row that names a partial file.
  const std::string path = ChunkPath(id);
  Status st;
  Result<uint64_t> checksum = ChunkFile::Write(path, key, *data);
  if (checksum.ok()) {
    row.id = id;
    row.key = key;
    row.size = size;
    row.checksum = *checksum;
    st = index_->Insert({row});
    if (!st.ok()) RemoveFile(path);
  } else {
    st = checksum.status();
  }
  {
    MutexLock lock(mu_);
    busy_.erase(id);
    reserved_ -= size;
    if (st.ok()) {
      auto [it, inserted] = entries_.try_emplace(id);
      Entry& entry = it->second;
      entry.size = size;
      entry.object_hash = ObjectHash(key.bucket, key.object_key);
      entry.generation = next_generation_++;
      entry.last_access = row.last_access;
      entry.lru = lru_.insert(lru_.end(), &it->first);
      used_ += size;
    }
  }
  if (!st.ok()) {
    stats_.disk_write_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("disk cache: cannot store chunk {}: {}", id, st.ToString());
    return st;
  }
  MaybeFlush();
  return Status::Ok();
}

Status DiskTier::Erase(const ChunkKey& key) {
  ReaderMutexLock gate(gate_);
  Remove({key.Id()}, std::nullopt);
  return Status::Ok();
}

void DiskTier::Pin(const std::string& bucket, const std::string& object_key) {
  const uint64_t hash = ObjectHash(bucket, object_key);
  MutexLock lock(mu_);
  ++pins_[hash];
}

void DiskTier::Unpin(const std::string& bucket, const std::string& object_key) {
  const uint64_t hash = ObjectHash(bucket, object_key);
  MutexLock lock(mu_);
  auto it = pins_.find(hash);
  if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
}

Status DiskTier::FlushAccessTimes() {
  ReaderMutexLock gate(gate_);
  return FlushPending();
}

uint64_t DiskTier::used_bytes() {
  MutexLock lock(mu_);
  return used_;
}

uint64_t DiskTier::chunk_count() {
  MutexLock lock(mu_);
  return entries_.size();
}

uint64_t DiskTier::index_transactions() {
  ReaderMutexLock gate(gate_);
  return index_->write_transactions();
}

int64_t DiskTier::NextTickLocked() {
  const int64_t elapsed =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->Now() - opened_at_).count();
  last_tick_ = std::max(last_tick_ + 1, tick_base_ + elapsed);
  return last_tick_;
}

void DiskTier::TouchLocked(const std::string& id, Entry& entry) {
  lru_.splice(lru_.end(), lru_, entry.lru);
  entry.last_access = NextTickLocked();
  pending_access_[id] = entry.last_access;
}

bool DiskTier::PickVictimsLocked(uint64_t bytes, std::vector<std::string>* victims) {
  uint64_t freed = 0;
  for (const std::string* id : lru_) {
    if (freed >= bytes) break;
    const Entry& entry = entries_.at(*id);
    if (pins_.contains(entry.object_hash)) continue;
    victims->push_back(*id);
    freed += entry.size;
  }
  return freed >= bytes;
}

std::vector<std::string> DiskTier::DetachLocked(const std::vector<std::string>& ids,
                                                std::optional<uint64_t> generation) {
  std::vector<std::string> taken;
  for (const std::string& id : ids) {
    auto it = entries_.find(id);
    if (it == entries_.end()) continue;  // gone already, or busy (busy ids have no entry)
    if (generation.has_value() && it->second.generation != *generation) continue;
    lru_.erase(it->second.lru);
    used_ -= it->second.size;
    entries_.erase(it);
    pending_access_.erase(id);
    busy_.insert(id);
    taken.push_back(id);
  }
  return taken;
}

void DiskTier::RemoveDetached(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  // Files first, so space comes back even if the index cannot be written (a full disk): Open
  // drops rows whose file is missing.
  for (const std::string& id : ids) RemoveFile(ChunkPath(id));
  if (index_ != nullptr) {
    Status st = index_->Remove(ids);
    if (!st.ok()) {
      spdlog::warn("disk cache: cannot remove {} index rows ({}); the next Open drops them",
                   ids.size(), st.ToString());
    }
  }
  MutexLock lock(mu_);
  for (const std::string& id : ids) busy_.erase(id);
}

std::vector<std::string> DiskTier::Remove(const std::vector<std::string>& ids,
                                          std::optional<uint64_t> generation) {
  std::vector<std::string> taken;
  {
    MutexLock lock(mu_);
    taken = DetachLocked(ids, generation);
  }
  RemoveDetached(taken);
  return taken;
}

void DiskTier::MaybeFlush() {
  {
    MutexLock lock(mu_);
    if (clock_->Now() < next_flush_) return;
  }
  Status st = FlushPending();
  if (!st.ok()) spdlog::warn("disk cache: {}", st.ToString());
}

Status DiskTier::FlushPending() {
  std::vector<std::pair<std::string, int64_t>> batch;
  {
    MutexLock lock(mu_);
    next_flush_ = clock_->Now() + options_.access_flush_interval;
    batch.assign(pending_access_.begin(), pending_access_.end());
    pending_access_.clear();
  }
  if (batch.empty() || index_ == nullptr) return Status::Ok();
  Status st = index_->UpdateAccess(batch);
  if (!st.ok()) {
    return Status::Error(st.kind(), "cannot record " + std::to_string(batch.size()) +
                                        " access times: " + st.message());
  }
  return Status::Ok();
}

}  // namespace strata
