#include "fs/open_writes.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

namespace strata {

Result<std::shared_ptr<OpenWrite>> OpenWrites::GetOrMake(const std::string& path) {
  if (std::shared_ptr<OpenWrite> write = table_.Find(path)) return write;
  Result<std::optional<EntryInfo>> info = view_.Resolve(path);
  if (!info.ok()) return info.status();
  if (!*info) return Status::NotFound("'" + path + "' does not exist");
  if ((*info)->type == EntryType::kDirectory) {
    return Status::IsDirectory("'" + path + "' is a directory");
  }
  auto write = std::make_shared<OpenWrite>();
  {
    MutexLock lock(write->mu);
    write->path = path;
    write->info = **info;
  }
  return table_.PutIfAbsent(path, std::move(write));
}

Result<std::shared_ptr<StagedFile>> OpenWrites::Staged(OpenWrite& write) {
  MutexLock lock(write.mu);
  if (write.staged) return write.staged;
  uint64_t size = 0;
  SourceReader source;
  if (write.base) {
    struct stat st {};
    if (::fstat(write.base->get(), &st) != 0) return ErrnoStatus(errno, "fstat");
    size = static_cast<uint64_t>(st.st_size);
    source = LocalSource(write.base);
  } else if (!write.unlinked) {
    Result<SourceReader> from = view_.SourceOf(write.path, &size);
    if (!from.ok()) return from.status();
    source = std::move(*from);
  }
  Result<std::shared_ptr<StagedFile>> staged =
      staging_.Create(write.path, size, size > 0 ? std::move(source) : SourceReader());
  if (!staged.ok()) return staged.status();
  write.staged = *staged;
  return write.staged;
}

PutOptions OpenWrites::PutOptionsFor(const EntryInfo& info) const {
  PutOptions options;
  const mode_t default_perms =
      (info.type == EntryType::kDirectory || info.type == EntryType::kSymlink ? 0777 : 0666) &
      ~defaults_.umask & 07777;
  options.metadata = PosixMetadata(info, default_perms, defaults_.uid, defaults_.gid);
  if (info.type == EntryType::kDirectory) options.content_type = kDirectoryContentType;
  return options;
}

Result<uint64_t> OpenWrites::SetMetadata(const std::string& path, const EntryInfo& info,
                                         const std::string& base_etag) {
  Result<uint64_t> sequence = queue_.EnqueueSetMetadata(
      metadata_.KeyOf(path), PutOptionsFor(info).metadata, base_etag, info.size);
  if (!sequence.ok()) return sequence;
  spdlog::debug("attributes of '{}': metadata change queued as #{}", path, *sequence);
  metadata_.Invalidate(path);
  return sequence;
}

Status OpenWrites::Await(Result<uint64_t> sequence) {
  if (!sequence.ok()) return sequence.status();
  if (!sync_upload_) return Status::Ok();
  return queue_.WaitUploaded(*sequence, sync_timeout_);
}

Status OpenWrites::Commit(OpenWrite& write, bool await) {
  std::unique_lock commit(write.commit_mu);
  return CommitLocked(write, await);
}

Status OpenWrites::CommitLocked(OpenWrite& write, bool await) {
  std::string path;
  EntryInfo info;
  {
    MutexLock lock(write.mu);
    if (!write.dirty || write.unlinked) {
      spdlog::debug("commit '{}': nothing to queue (dirty {}, unlinked {})", write.path,
                    write.dirty, write.unlinked);
      return Status::Ok();
    }
    path = write.path;
    info = write.info;
  }
  Result<std::shared_ptr<StagedFile>> staged = Staged(write);  // attributes-only changes
  if (!staged.ok()) return staged.status();
  info.size = (*staged)->size();
  // EnqueuePut fsyncs the file and the directory it moves it into: no need to do it twice.
  STRATA_RETURN_IF_ERROR((*staged)->Detach(/*durable=*/false));
  const std::string staged_path = (*staged)->path();
  // Kept open: later writes restage from it, whatever the queue does with the file meanwhile.
  const int fd = ::open(staged_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + staged_path);
  auto base = std::make_shared<Fd>(fd);
  Result<uint64_t> sequence =
      queue_.EnqueuePut(metadata_.KeyOf(path), staged_path, info.size, PutOptionsFor(info));
  {
    MutexLock lock(write.mu);
    write.staged = nullptr;
    write.base = base;
    if (sequence.ok()) {
      write.dirty = false;
      write.info.size = info.size;
    }
  }
  if (!sequence.ok()) {
    // Nothing was queued; the changes live on through `base` and stay dirty.
    ::unlink(staged_path.c_str());
    return sequence.status();
  }
  spdlog::debug("commit '{}': {} bytes queued as #{}", path, info.size, *sequence);
  metadata_.Invalidate(path);
  return await ? Await(sequence) : Status::Ok();
}

void OpenWrites::ReleaseWriter(const std::shared_ptr<OpenWrite>& write) {
  {
    MutexLock lock(write->mu);
    spdlog::debug("release of a writer of '{}': {} left", write->path, write->writers - 1);
    if (--write->writers > 0) return;
  }
  if (Status st = Commit(*write); !st.ok()) {
    // flush reported its own failure; this one comes from changes made after the last close
    // (through mmap). They stay staged and visible; the next close of the file commits them.
    spdlog::error("cannot queue the upload of a released file: {}", st.ToString());
  }
  table_.EraseIfIdle(write);
}

Result<uint64_t> OpenWrites::PutSmall(const std::string& key, const std::string& content,
                                      const EntryInfo& info) {
  Result<std::shared_ptr<StagedFile>> staged = staging_.Create(key, 0, SourceReader());
  if (!staged.ok()) return staged.status();
  if (!content.empty()) STRATA_RETURN_IF_ERROR((*staged)->Write(0, content));
  STRATA_RETURN_IF_ERROR((*staged)->Detach(/*durable=*/false));  // EnqueuePut syncs it
  Result<uint64_t> sequence =
      queue_.EnqueuePut(key, (*staged)->path(), content.size(), PutOptionsFor(info));
  if (!sequence.ok()) ::unlink((*staged)->path().c_str());
  return sequence;
}

}  // namespace strata
