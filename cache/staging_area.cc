#include "cache/staging_area.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "base/posix_file.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kStagedSuffix = ".staged";
constexpr size_t kMaxHintChars = 64;

// Deletes staged files of an earlier run. One that cannot be deleted only takes space.
void RemoveLeftovers(const std::string& dir) {
  uint64_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.ends_with(kStagedSuffix)) continue;
    if (::unlink(it->path().c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      spdlog::warn("staging: cannot remove leftover {}: {}", it->path().string(),
                   std::strerror(errno));
    }
  }
  if (ec) spdlog::warn("staging: cannot list {}: {}", dir, ec.message());
  if (removed > 0) spdlog::info("staging {}: removed {} leftover staged files", dir, removed);
}

// The last kMaxHintChars characters of `hint`, with everything but [A-Za-z0-9._-] as '_'.
std::string FileSafe(const std::string& hint) {
  std::string out = hint.size() > kMaxHintChars ? hint.substr(hint.size() - kMaxHintChars) : hint;
  for (char& c : out) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
    if (!safe) c = '_';
  }
  return out;
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

}  // namespace

Result<std::shared_ptr<StagingArea>> StagingArea::Open(StagingOptions options) {
  while (options.dir.size() > 1 && options.dir.back() == '/') options.dir.pop_back();
  if (options.dir.empty()) return Status::InvalidArgument("staging: dir is empty");
  if (options.max_bytes == 0) return Status::InvalidArgument("staging: max_bytes is 0");
  if (options.block_size == 0) return Status::InvalidArgument("staging: block_size is 0");
  STRATA_RETURN_IF_ERROR(MakePrivateDir(options.dir));
  SystemClock clock;
  STRATA_ASSIGN_OR_RETURN(DirLock lock,
                          DirLock::Acquire(options.dir, "staging area", clock, options.lock_wait));
  RemoveLeftovers(options.dir);
  return std::shared_ptr<StagingArea>(new StagingArea(std::move(options), std::move(lock)));
}

StagingArea::StagingArea(StagingOptions options, DirLock lock)
    : options_(std::move(options)), dir_lock_(std::move(lock)) {}

StagingArea::~StagingArea() = default;

Result<std::shared_ptr<StagedFile>> StagingArea::Create(const std::string& name_hint,
                                                        uint64_t initial_size,
                                                        SourceReader source) {
  if (initial_size > 0 && !source) {
    return Status::InvalidArgument("staging: a file with initial bytes needs a source");
  }
  const std::string path = NewFilePath(name_hint);
  STRATA_RETURN_IF_ERROR(BeginGrowth(initial_size));
  Result<int> fd = StagedFile::CreateLocalFile(path, initial_size);
  EndGrowth(initial_size, fd.ok());
  if (!fd.ok()) return fd.status();
  {
    MutexLock lock(mu_);
    ++files_;
  }
  return std::shared_ptr<StagedFile>(
      new StagedFile(shared_from_this(), path, *fd, initial_size, std::move(source)));
}

uint64_t StagingArea::used_bytes() const {
  MutexLock lock(mu_);
  return used_;
}

uint64_t StagingArea::file_count() const {
  MutexLock lock(mu_);
  return files_;
}

uint64_t StagingArea::FreeSpace() const {
  if (options_.free_space_probe) return options_.free_space_probe();
  return FreeSpaceOrUnlimited(options_.dir, "staging");
}

std::string StagingArea::NewFilePath(const std::string& name_hint) {
  uint64_t number = 0;
  {
    MutexLock lock(mu_);
    number = next_file_number_++;
  }
  return options_.dir + "/" + std::to_string(number) + "-" + FileSafe(name_hint) +
         std::string(kStagedSuffix);
}

Status StagingArea::BeginGrowth(uint64_t bytes) {
  if (bytes == 0) return Status::Ok();
  const bool check_free = options_.min_free_bytes > 0;
  const uint64_t free = check_free ? FreeSpace() : 0;
  MutexLock lock(mu_);
  if (SaturatingAdd(used_, bytes) > options_.max_bytes) {
    return Status::NoSpace("staging: " + std::to_string(bytes) + " more bytes would exceed " +
                           std::to_string(options_.max_bytes) + " (" + std::to_string(used_) +
                           " in use)");
  }
  if (check_free) {
    // Growths in progress have not been allocated yet, so the probe does not see them.
    const uint64_t available = free > pending_ ? free - pending_ : 0;
    if (available < SaturatingAdd(bytes, options_.min_free_bytes)) {
      return Status::NoSpace("staging: " + std::to_string(bytes) + " more bytes would leave " +
                             "less than " + std::to_string(options_.min_free_bytes) +
                             " bytes free (" + std::to_string(available) + " available)");
    }
  }
  used_ += bytes;
  pending_ += bytes;
  return Status::Ok();
}

void StagingArea::EndGrowth(uint64_t bytes, bool kept) {
  if (bytes == 0) return;
  MutexLock lock(mu_);
  pending_ -= bytes;
  if (!kept) used_ -= bytes;
}

void StagingArea::Release(uint64_t bytes, bool file_gone) {
  MutexLock lock(mu_);
  used_ -= bytes;
  if (file_gone) --files_;
}

}  // namespace strata
