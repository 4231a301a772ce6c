#include "cache/staged_file.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "base/posix_file.h"
#include "cache/staging_area.h"

namespace strata {
namespace {

Status PreadAll(int fd, std::span<char> out, uint64_t offset, const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(const size_t n, ReadFull(fd, offset, out, path));
  if (n < out.size()) return Status::Io("read " + path + ": shorter than its staged size");
  return Status::Ok();
}

// Grows the file from `from` to `to` bytes and allocates the new bytes, so that writing them
// later cannot run out of space. Filesystems without fallocate only get the size. On failure
// the file is cut back to `from`.
Status GrowLocalFile(int fd, const std::string& path, uint64_t from, uint64_t to) {
  if (::ftruncate(fd, static_cast<off_t>(to)) != 0) return ErrnoStatus(errno, "resize " + path);
  if (::fallocate(fd, 0, static_cast<off_t>(from), static_cast<off_t>(to - from)) != 0) {
    const int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) return Status::Ok();
    if (::ftruncate(fd, static_cast<off_t>(from)) != 0) {
      spdlog::warn("staging: cannot cut {} back to {} bytes: {}", path, from, std::strerror(errno));
    }
    return ErrnoStatus(err, "allocate " + path);
  }
  return Status::Ok();
}

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

StagedFile::StagedFile(std::shared_ptr<StagingArea> area, std::string path, int fd, uint64_t size,
                       SourceReader source)
    : area_(std::move(area)),
      path_(std::move(path)),
      dir_(ParentOf(path_)),
      source_(std::move(source)),
      block_size_(area_->options().block_size),
      fetch_blocks_(std::max<uint64_t>(
          1, (area_->options().max_fetch_bytes + block_size_ - 1) / block_size_)),
      fd_(fd) {
  MutexLock lock(mu_);
  size_ = size;
  reserved_ = size;
  source_end_ = size;
}

StagedFile::~StagedFile() {
  uint64_t reserved = 0;
  {
    MutexLock lock(mu_);
    if (detached_) return;
    reserved = reserved_;
  }
  if (fd_ >= 0) ::close(fd_);
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    // The bytes stay on disk until the next Open removes the file, so they stay counted.
    spdlog::warn("staging: cannot remove {}: {}", path_, std::strerror(errno));
    reserved = 0;
  }
  area_->Release(reserved, /*file_gone=*/true);
}

Result<int> StagedFile::CreateLocalFile(const std::string& path, uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "create " + path);
  if (size > 0) {
    Status st = GrowLocalFile(fd, path, 0, size);
    if (!st.ok()) {
      ::close(fd);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        spdlog::warn("staging: cannot remove {}: {}", path, std::strerror(errno));
      }
      return st;
    }
  }
  return fd;
}

uint64_t StagedFile::size() const {
  MutexLock lock(mu_);
  return size_;
}

bool StagedFile::dirty() const {
  MutexLock lock(mu_);
  return write_generation_ != synced_generation_;
}

bool StagedFile::complete() const {
  MutexLock lock(mu_);
  return present_.Missing(0, SourceBlocksLocked()).empty();
}

bool StagedFile::detached() const {
  MutexLock lock(mu_);
  return detached_;
}

uint64_t StagedFile::SourceBlocksLocked() const {
  return source_end_ / block_size_ + (source_end_ % block_size_ != 0 ? 1 : 0);
}

Status StagedFile::CheckAttachedLocked() const {
  if (detached_) return Status::InvalidArgument("staging: " + path_ + " was detached");
  return Status::Ok();
}

void StagedFile::WaitUnclaimedLocked(MutexLock& lock, uint64_t first, uint64_t end) {
  cv_.Wait(lock, [&]() REQUIRES(mu_) { return !claimed_.Intersects(first, end); });
}

std::vector<StagedFile::Range> StagedFile::ClaimAbsentLocked(uint64_t first, uint64_t end) {
  end = std::min(end, SourceBlocksLocked());
  std::vector<Range> absent = present_.Missing(first, end);
  for (const Range& run : absent) claimed_.Insert(run.begin, run.end);
  return absent;
}

void StagedFile::Settle(const std::vector<Range>& claims, bool filled, bool written) {
  {
    MutexLock lock(mu_);
    for (const Range& run : claims) {
      claimed_.Erase(run.begin, run.end);
      if (filled) present_.Insert(run.begin, run.end);
    }
    if (written) ++write_generation_;
  }
  if (!claims.empty()) cv_.NotifyAll();
}

Status StagedFile::ReadSource(uint64_t offset, std::span<char> out) {
  size_t done = 0;
  while (done < out.size()) {
    STRATA_ASSIGN_OR_RETURN(size_t n, source_(offset + done, out.subspan(done)));
    if (n == 0 || n > out.size() - done) {
      return Status::Internal("staging: source of " + path_ + " returned " + std::to_string(n) +
                              " bytes at offset " + std::to_string(offset + done) + ", expected " +
                              std::to_string(out.size() - done) +
                              " (object shorter than its staged size?)");
    }
    done += n;
  }
  return Status::Ok();
}

Status StagedFile::Fill(const std::vector<Range>& runs, uint64_t source_end) {
  std::string buffer;
  for (const Range& run : runs) {
    for (uint64_t block = run.begin; block < run.end; block += fetch_blocks_) {
      const uint64_t begin = block * block_size_;
      const uint64_t end =
          std::min(std::min(run.end, block + fetch_blocks_) * block_size_, source_end);
      buffer.resize(end - begin);
      STRATA_RETURN_IF_ERROR(ReadSource(begin, buffer));
      STRATA_RETURN_IF_ERROR(WriteFull(fd_, begin, buffer, path_));
    }
  }
  return Status::Ok();
}

Status StagedFile::FillAround(uint64_t block, uint64_t offset, uint64_t end, uint64_t source_end) {
  const uint64_t block_begin = block * block_size_;
  const uint64_t block_end = std::min(block_begin + block_size_, source_end);
  // The parts of the block's source bytes that [offset, end) leaves out: a head and a tail.
  const uint64_t head_end = std::min(offset, block_end);
  const uint64_t tail_begin = std::max(end, block_begin);
  const bool head = head_end > block_begin;
  const bool tail = tail_begin < block_end;
  if (!head && !tail) return Status::Ok();
  // One source call per block, even when that brings the bytes between head and tail too: a
  // second request costs more than the extra bytes.
  const uint64_t fetch_begin = head ? block_begin : tail_begin;
  const uint64_t fetch_end = tail ? block_end : head_end;
  std::string buffer(fetch_end - fetch_begin, '\0');
  STRATA_RETURN_IF_ERROR(ReadSource(fetch_begin, buffer));
  const std::span<const char> bytes(buffer);
  if (head) {
    STRATA_RETURN_IF_ERROR(WriteFull(fd_, block_begin, bytes.first(head_end - block_begin), path_));
  }
  if (tail) {
    STRATA_RETURN_IF_ERROR(
        WriteFull(fd_, tail_begin, bytes.subspan(tail_begin - fetch_begin), path_));
  }
  return Status::Ok();
}

Result<size_t> StagedFile::Read(uint64_t offset, std::span<char> out) {
  ReaderMutexLock gate(gate_);
  size_t count = 0;
  std::vector<Range> claims;
  uint64_t source_end = 0;
  {
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckAttachedLocked());
    if (offset >= size_ || out.empty()) return size_t{0};
    count = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
    const uint64_t first = offset / block_size_;
    const uint64_t end = (offset + count - 1) / block_size_ + 1;
    WaitUnclaimedLocked(lock, first, end);
    claims = ClaimAbsentLocked(first, end);
    source_end = source_end_;
  }
  if (!claims.empty()) {
    Status st = Fill(claims, source_end);
    Settle(claims, st.ok(), /*written=*/false);
    STRATA_RETURN_IF_ERROR(st);
  }
  STRATA_RETURN_IF_ERROR(PreadAll(fd_, out.first(count), offset, path_));
  return count;
}

Status StagedFile::Write(uint64_t offset, std::span<const char> data) {
  if (data.size() > std::numeric_limits<uint64_t>::max() - offset) {
    return Status::InvalidArgument("staging: write past the largest offset");
  }
  const uint64_t end = offset + data.size();
  ReaderMutexLock gate(gate_);
  uint64_t old_size = 0;
  {
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckAttachedLocked());
    old_size = size_;
  }
  if (data.empty()) return Status::Ok();
  if (end <= old_size) return WriteRange(offset, data);

  MutexLock grow(grow_mu_);
  {
    MutexLock lock(mu_);
    old_size = size_;  // another extending write may have finished meanwhile
  }
  if (end <= old_size) return WriteRange(offset, data);
  STRATA_RETURN_IF_ERROR(Grow(old_size, end));
  Status st = WriteRange(offset, data);
  if (st.ok()) {
    MutexLock lock(mu_);
    size_ = end;
    return st;
  }
  // Nobody has seen the new size: cut it off again. Should that fail, reserved_ keeps counting
  // the longer file.
  IgnoreError(Shrink(old_size), "rollback of a failed extending write; the write's error wins");
  return st;
}

Status StagedFile::WriteRange(uint64_t offset, std::span<const char> data) {
  const uint64_t end = offset + data.size();
  const uint64_t first = offset / block_size_;
  const uint64_t last = (end - 1) / block_size_;
  std::vector<Range> claims;
  uint64_t source_end = 0;
  {
    MutexLock lock(mu_);
    WaitUnclaimedLocked(lock, first, last + 1);
    claims = ClaimAbsentLocked(first, last + 1);
    source_end = source_end_;
  }
  auto claimed = [&](uint64_t block) {
    return std::any_of(claims.begin(), claims.end(),
                       [&](const Range& run) { return run.begin <= block && block < run.end; });
  };
  // Only the first and the last block can be covered partially.
  Status st;
  if (claimed(first)) st = FillAround(first, offset, end, source_end);
  if (st.ok() && last != first && claimed(last)) st = FillAround(last, offset, end, source_end);
  if (st.ok()) st = WriteFull(fd_, offset, data, path_);
  Settle(claims, st.ok(), /*written=*/st.ok());
  return st;
}

Status StagedFile::Truncate(uint64_t new_size) {
  WriterMutexLock gate(gate_);
  uint64_t old_size = 0;
  {
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckAttachedLocked());
    old_size = size_;
  }
  if (new_size == old_size) return Status::Ok();
  if (new_size > old_size) {
    STRATA_RETURN_IF_ERROR(Grow(old_size, new_size));
  } else {
    STRATA_RETURN_IF_ERROR(Shrink(new_size));
  }
  MutexLock lock(mu_);
  size_ = new_size;
  if (new_size < source_end_) {
    source_end_ = new_size;
    // Blocks wholly past the object's (new) end are present by definition: forget them.
    present_.Erase(SourceBlocksLocked(), std::numeric_limits<uint64_t>::max());
  }
  ++write_generation_;
  return Status::Ok();
}

Status StagedFile::Grow(uint64_t old_size, uint64_t new_size) {
  uint64_t reserved = 0;
  {
    MutexLock lock(mu_);
    reserved = reserved_;
  }
  const uint64_t more = new_size > reserved ? new_size - reserved : 0;
  STRATA_RETURN_IF_ERROR(area_->BeginGrowth(more));
  Status st = GrowLocalFile(fd_, path_, old_size, new_size);
  area_->EndGrowth(more, st.ok());
  if (st.ok()) {
    MutexLock lock(mu_);
    reserved_ = std::max(reserved_, new_size);
  }
  return st;
}

Status StagedFile::Shrink(uint64_t new_size) {
  if (::ftruncate(fd_, static_cast<off_t>(new_size)) != 0) {
    return ErrnoStatus(errno, "truncate " + path_);
  }
  uint64_t released = 0;
  {
    MutexLock lock(mu_);
    if (reserved_ > new_size) {
      released = reserved_ - new_size;
      reserved_ = new_size;
    }
  }
  area_->Release(released, /*file_gone=*/false);
  return Status::Ok();
}

Status StagedFile::Complete() {
  ReaderMutexLock gate(gate_);
  {
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckAttachedLocked());
  }
  return CompleteHeld();
}

Status StagedFile::CompleteHeld() {
  for (;;) {
    std::vector<Range> claim;
    uint64_t source_end = 0;
    {
      MutexLock lock(mu_);
      for (;;) {
        const std::vector<Range> absent = present_.Missing(0, SourceBlocksLocked());
        if (absent.empty()) return Status::Ok();
        // The first absent run no other call is filling; wait when they all are.
        std::optional<Range> run;
        for (const Range& candidate : absent) {
          const std::vector<Range> free = claimed_.Missing(candidate.begin, candidate.end);
          if (!free.empty()) {
            run = free.front();
            break;
          }
        }
        if (run.has_value()) {
          run->end = std::min(run->end, run->begin + fetch_blocks_);
          claimed_.Insert(run->begin, run->end);
          claim.push_back(*run);
          break;
        }
        cv_.Wait(lock);
      }
      source_end = source_end_;
    }
    Status st = Fill(claim, source_end);
    Settle(claim, st.ok(), /*written=*/false);
    STRATA_RETURN_IF_ERROR(st);
  }
}

Status StagedFile::Sync() {
  ReaderMutexLock gate(gate_);
  {
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckAttachedLocked());
  }
  return SyncHeld();
}

Status StagedFile::SyncHeld() {
  uint64_t generation = 0;
  {
    MutexLock lock(mu_);
    generation = write_generation_;  // what returned before now is in the file
  }
  STRATA_RETURN_IF_ERROR(CompleteHeld());
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, "fsync " + path_);
  bool dir_synced = false;
  {
    MutexLock lock(mu_);
    dir_synced = dir_synced_;
  }
  if (!dir_synced) {
    STRATA_RETURN_IF_ERROR(FsyncDir(dir_));
    MutexLock lock(mu_);
    dir_synced_ = true;
  }
  MutexLock lock(mu_);
  synced_generation_ = std::max(synced_generation_, generation);
  return Status::Ok();
}

Status StagedFile::Detach(bool durable) {
  WriterMutexLock gate(gate_);
  {
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckAttachedLocked());
  }
  STRATA_RETURN_IF_ERROR(durable ? SyncHeld() : CompleteHeld());
  uint64_t reserved = 0;
  {
    MutexLock lock(mu_);
    detached_ = true;
    reserved = reserved_;
    reserved_ = 0;
  }
  area_->Release(reserved, /*file_gone=*/true);
  // Durable: the data is on stable storage already, close cannot lose any of it. Otherwise the
  // taker fsyncs the file before relying on it, which reports what close would.
  if (::close(fd_) != 0) spdlog::warn("staging: close {}: {}", path_, std::strerror(errno));
  fd_ = -1;
  return Status::Ok();
}

}  // namespace strata
