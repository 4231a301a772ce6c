#include "cache/queue_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <utility>

#include "base/posix_file.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

}  // namespace

Result<std::unique_ptr<QueueDir>> QueueDir::Open(const std::string& root_in,
                                                 Clock::Duration lock_wait) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty()) return Status::InvalidArgument("upload queue: directory is empty");
  const fs::path path(root);
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) return Status::Io("create " + path.parent_path().string() + ": " + ec.message());
  STRATA_RETURN_IF_ERROR(MakePrivateDir(root));

  SystemClock clock;
  STRATA_ASSIGN_OR_RETURN(DirLock lock, DirLock::Acquire(root, "upload queue", clock, lock_wait));
  std::unique_ptr<QueueDir> dir(new QueueDir(root, std::move(lock)));
  STRATA_RETURN_IF_ERROR(MakePrivateDir(dir->data_dir_));
  // The new directory entries must survive a power loss before files are adopted into them.
  STRATA_RETURN_IF_ERROR(FsyncDir(root));
  if (path.has_parent_path()) STRATA_RETURN_IF_ERROR(FsyncDir(path.parent_path().string()));
  return dir;
}

QueueDir::QueueDir(std::string root, DirLock lock)
    : root_(std::move(root)), data_dir_(root_ + "/data"), dir_lock_(std::move(lock)) {}

QueueDir::~QueueDir() = default;

Status QueueDir::CheckStaged(const std::string& staged_path, uint64_t size) {
  Fd fd(::open(staged_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::InvalidArgument("staged file " + staged_path + " missing");
    return ErrnoStatus(err, "open " + staged_path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat " + staged_path);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(staged_path + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) != size) {
    return Status::InvalidArgument("staged file " + staged_path + " has " +
                                   std::to_string(st.st_size) + " bytes, not " +
                                   std::to_string(size));
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync " + staged_path);
  return Status::Ok();
}

Status QueueDir::Adopt(const std::string& staged_path, const std::string& name) {
  const std::string target = DataPath(name);
  if (::rename(staged_path.c_str(), target.c_str()) != 0) {
    const int err = errno;
    if (err == EXDEV) {
      return Status::InvalidArgument("staged file " + staged_path +
                                     " is not on the upload queue's filesystem (" + root_ + ")");
    }
    return ErrnoStatus(err, "rename " + staged_path + " to " + target);
  }
  return FsyncDir(data_dir_);
}

Status QueueDir::GiveBack(const std::string& name, const std::string& staged_path) {
  const std::string source = DataPath(name);
  if (::rename(source.c_str(), staged_path.c_str()) != 0) {
    return ErrnoStatus(errno, "rename " + source + " back to " + staged_path);
  }
  return Status::Ok();
}

void QueueDir::Remove(const std::string& name) {
  const std::string path = DataPath(name);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("upload queue: cannot remove {}: {}", path, std::strerror(errno));
  }
}

Result<uint64_t> QueueDir::SizeOf(const std::string& name) const {
  const std::string path = DataPath(name);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

uint64_t QueueDir::RemoveUnreferenced(const std::set<std::string>& keep) {
  uint64_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(data_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (keep.count(name) != 0) continue;
    Remove(name);
    ++removed;
  }
  if (ec) spdlog::warn("upload queue: cannot list {}: {}", data_dir_, ec.message());
  return removed;
}

}  // namespace strata
