// The write side of Filesystem: open writes, commits to the upload queue, namespace changes, and
// the merged view (S3 + queue + open writes) that makes them visible at once. See filesystem.h.
#include <fcntl.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <mutex>
#include <set>

#include "fs/filesystem.h"
#include "fs/paths.h"

namespace strata {
namespace {

constexpr size_t kMaxKeyBytes = 1024;  // S3's limit on a key
constexpr const char* kDirectoryContentType = "application/x-directory";

EntryInfo DirectoryInfo() {
  EntryInfo info;
  info.type = EntryType::kDirectory;
  return info;
}

TimePoint Now() { return std::chrono::system_clock::now(); }

// A SourceReader over a local file (a pending upload's data, or what a commit handed over).
SourceReader LocalSource(std::shared_ptr<Fd> fd) {
  return [fd = std::move(fd)](uint64_t offset, std::span<char> out) -> Result<size_t> {
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::pread(fd->get(), out.data() + done, out.size() - done,
                                static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read of committed data");
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  };
}

}  // namespace

Result<Filesystem::NamedEntry> Filesystem::Target(uint64_t parent, const std::string& name) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  Result<std::string> path = ChildPath(parent, name);
  if (!path.ok()) return path.status();
  // Asked first without a lock, so that what S3 says is in the metadata cache and the decision
  // under the locks rarely waits for S3 (it does when the entry expired in between).
  if (Result<std::optional<EntryInfo>> ahead = Resolve(*path); !ahead.ok()) return ahead.status();
  PathLocks::Guard guard = names_.Lock({{ParentPath(*path)}, {*path}});
  Result<std::optional<EntryInfo>> existing = Resolve(*path);
  if (!existing.ok()) return existing.status();
  return NamedEntry{std::move(*path), std::move(*existing), std::move(guard)};
}

EntryInfo Filesystem::NewEntry(EntryType type, mode_t mode, Caller caller) {
  EntryInfo info;
  info.type = type;
  info.mode = mode & 07777;
  info.uid = caller.uid;
  info.gid = caller.gid;
  info.mtime = Now();
  return info;
}

Status Filesystem::CheckWritable() const {
  if (!writable()) return PosixError(EROFS, "the filesystem is mounted read-only");
  return Status::Ok();
}

Result<std::string> Filesystem::ChildPath(uint64_t parent, const std::string& name) {
  std::optional<InodeTable::Node> node = inodes_.Get(parent);
  if (!node || node->type != EntryType::kDirectory) {
    return Status::NotFound("no directory inode " + std::to_string(parent));
  }
  const std::string path = JoinPath(node->path, name);
  if (name.size() > 255 || metadata_.KeyOf(path).size() + 1 > kMaxKeyBytes) {
    return PosixError(ENAMETOOLONG, "name too long for an S3 key: " + path);
  }
  if (!ValidFileName(name)) return Status::InvalidArgument("invalid file name '" + name + "'");
  return path;
}

std::shared_ptr<Filesystem::OpenWrite> Filesystem::FindWrite(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = open_writes_.find(path);
  return it == open_writes_.end() ? nullptr : it->second;
}

Result<std::optional<EntryInfo>> Filesystem::InfoFromPending(const PendingState& pending) {
  if (pending.kind == PendingState::Kind::kPut) {
    EntryInfo info;
    info.size = pending.put.size;
    info.mtime = Now();
    ApplyPosixMetadata(pending.put.options.metadata, info);
    if (pending.put.options.content_type == kDirectoryContentType)
      info.type = EntryType::kDirectory;
    return std::optional<EntryInfo>(info);
  }
  if (pending.kind == PendingState::Kind::kCopy) {
    // Renamed, not yet copied: the source object still holds the content and attributes.
    Result<ObjectInfo> head = store_.Head(pending.copy_source);
    if (!head.ok()) {
      if (head.status().IsNotFound()) return std::optional<EntryInfo>();
      return head.status();
    }
    EntryInfo info;
    info.size = head->size;
    info.mtime = head->last_modified;
    info.etag = head->etag;
    ApplyPosixMetadata(head->metadata, info);
    return std::optional<EntryInfo>(info);
  }
  return std::optional<EntryInfo>();
}

Result<std::optional<EntryInfo>> Filesystem::Resolve(const std::string& path) {
  if (path.empty()) return std::optional<EntryInfo>(DirectoryInfo());
  if (std::shared_ptr<OpenWrite> write = FindWrite(path)) {
    std::lock_guard lock(write->mu);
    if (!write->unlinked) {
      EntryInfo info = write->info;
      if (write->staged) info.size = write->staged->size();
      return std::optional<EntryInfo>(info);
    }
  }
  std::string dir, name;
  SplitPath(path, dir, name);
  if (!writable()) return metadata_.Lookup(dir, name);
  const std::string key = metadata_.KeyOf(path);
  PendingState file;
  for (int attempt = 1;; ++attempt) {
    file = writes_.queue->Pending(key);
    if (file.kind != PendingState::Kind::kPut && file.kind != PendingState::Kind::kCopy) break;
    Result<std::optional<EntryInfo>> info = InfoFromPending(file);
    if (!info.ok() || *info) return info;
    // A pending copy whose source is gone finished meanwhile: look at the queue again.
    if (attempt == 5) return Status::Transient("'" + path + "' keeps changing; try again");
  }
  const PendingState marker = writes_.queue->Pending(key + "/");
  if (marker.kind == PendingState::Kind::kPut) {
    EntryInfo info = DirectoryInfo();
    ApplyPosixMetadata(marker.put.options.metadata, info);
    info.type = EntryType::kDirectory;
    return std::optional<EntryInfo>(info);
  }
  // The queue's state is taken before S3's: an operation that finishes in between is then
  // still seen as pending, and S3's answer, older or newer, is corrected by it.
  bool deletes_under = false;
  for (const auto& [child, state] : writes_.queue->PendingUnder(key + "/")) {
    if (state.kind == PendingState::Kind::kPut || state.kind == PendingState::Kind::kCopy) {
      return std::optional<EntryInfo>(DirectoryInfo());  // implied by a pending child
    }
    if (state.kind == PendingState::Kind::kDeleted) deletes_under = true;
  }
  Result<std::optional<EntryInfo>> info = metadata_.Lookup(dir, name);
  if (!info.ok() || !*info) return info;
  if ((*info)->type == EntryType::kDirectory) {
    // rmdir queued the deletion of the marker of an empty directory.
    if (marker.kind == PendingState::Kind::kDeleted) return std::optional<EntryInfo>();
    if (deletes_under) {
      // A directory whose objects are all being deleted (or renamed away) is gone.
      Result<std::shared_ptr<const DirListing>> listing = MergedListing(path, false);
      if (listing.ok() && (*listing)->entries.empty() && !(*listing)->marker) {
        return std::optional<EntryInfo>();
      }
    }
  } else if (file.kind == PendingState::Kind::kDeleted) {
    return std::optional<EntryInfo>();
  }
  return info;
}

Result<std::shared_ptr<const DirListing>> Filesystem::MergedListing(const std::string& dir,
                                                                    bool check_self) {
  if (!writable()) return metadata_.List(dir);
  // The queue first, then S3 (see Resolve).
  const std::string prefix = dir.empty() ? metadata_.options().prefix : metadata_.KeyOf(dir) + "/";
  const std::vector<std::pair<std::string, PendingState>> pending =
      writes_.queue->PendingUnder(prefix);
  Result<std::shared_ptr<const DirListing>> base = metadata_.List(dir);
  auto merged = std::make_shared<DirListing>();
  if (base.ok()) {
    *merged = **base;
  } else if (base.status().IsNotFound()) {
    // Not in S3 (yet): it may exist only in the queue.
    if (!check_self) return std::shared_ptr<const DirListing>(std::move(merged));
    Result<std::optional<EntryInfo>> self = Resolve(dir);
    if (!self.ok()) return self.status();
    if (!*self || (*self)->type != EntryType::kDirectory) return base.status();
  } else {
    return base.status();
  }
  std::set<std::string> emptied;  // subdirectories with deletions under them
  for (const auto& [key, state] : pending) {
    const std::string rest = key.substr(prefix.size());
    if (rest.empty()) continue;  // this directory's own marker
    const size_t slash = rest.find('/');
    const bool live =
        state.kind == PendingState::Kind::kPut || state.kind == PendingState::Kind::kCopy;
    if (slash != std::string::npos) {
      const std::string name = rest.substr(0, slash);
      if (!ValidFileName(name)) continue;
      if (live) {
        EntryInfo& entry = merged->entries[name];
        if (entry.type != EntryType::kDirectory) entry = DirectoryInfo();
        if (slash + 1 == rest.size()) ApplyPosixMetadata(state.put.options.metadata, entry);
        entry.type = EntryType::kDirectory;
      } else if (state.kind == PendingState::Kind::kDeleted) {
        emptied.insert(name);  // gone unless something live remains under it
      }
      continue;
    }
    if (!ValidFileName(rest)) continue;
    if (live) {
      Result<std::optional<EntryInfo>> info = InfoFromPending(state);
      if (!info.ok()) return info.status();
      auto it = merged->entries.find(rest);
      if (*info && (it == merged->entries.end() || it->second.type != EntryType::kDirectory)) {
        merged->entries[rest] = **info;
      }
    } else if (state.kind == PendingState::Kind::kDeleted) {
      auto it = merged->entries.find(rest);
      if (it != merged->entries.end() && it->second.type != EntryType::kDirectory) {
        merged->entries.erase(it);
      }
    }
  }
  for (const std::string& name : emptied) {
    auto it = merged->entries.find(name);
    if (it == merged->entries.end() || it->second.type != EntryType::kDirectory) continue;
    Result<std::optional<EntryInfo>> still = Resolve(JoinPath(dir, name));
    if (still.ok() && !*still) merged->entries.erase(it);
  }
  std::vector<std::shared_ptr<OpenWrite>> writes;
  {
    std::lock_guard lock(mu_);
    for (const auto& [path, write] : open_writes_) {
      if (ParentPath(path) == dir) writes.push_back(write);
    }
  }
  for (const std::shared_ptr<OpenWrite>& write : writes) {
    std::lock_guard lock(write->mu);
    if (write->unlinked) continue;
    std::string parent, name;
    SplitPath(write->path, parent, name);
    if (parent != dir) continue;
    EntryInfo info = write->info;
    if (write->staged) info.size = write->staged->size();
    merged->entries[name] = info;
  }
  return std::shared_ptr<const DirListing>(std::move(merged));
}

Result<SourceReader> Filesystem::SourceOf(const std::string& path, uint64_t* size) {
  *size = 0;
  const std::string key = metadata_.KeyOf(path);
  std::optional<ObjectVersion> version;
  for (int attempt = 0; attempt < 5 && !version; ++attempt) {
    PendingState pending = writes_.queue->Pending(key);
    switch (pending.kind) {
      case PendingState::Kind::kDeleted:
        return SourceReader();
      case PendingState::Kind::kPut: {
        const int fd = ::open(pending.put.staged_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) continue;  // uploaded meanwhile: ask again
        if (fd < 0) return ErrnoStatus(errno, "open " + pending.put.staged_path);
        *size = pending.put.size;
        return LocalSource(std::make_shared<Fd>(fd));
      }
      case PendingState::Kind::kCopy: {
        Result<ObjectInfo> head = store_.Head(pending.copy_source);
        if (!head.ok() && head.status().IsNotFound()) continue;  // copied meanwhile: ask again
        if (!head.ok()) return head.status();
        version =
            ObjectVersion{metadata_.options().bucket, pending.copy_source, head->etag, head->size};
        break;
      }
      case PendingState::Kind::kNone: {
        Result<std::optional<EntryInfo>> info = metadata_.Revalidate(path);
        if (!info.ok()) return info.status();
        if (!*info) return SourceReader();
        version = ObjectVersion{metadata_.options().bucket, key, (*info)->etag, (*info)->size};
        break;
      }
    }
  }
  if (!version) {
    // Never an empty source for a file that has content: the caller would write it back empty.
    return Status::Transient("the content of '" + path + "' kept moving; try again");
  }
  *size = version->size;
  if (version->key == key) {
    std::shared_ptr<ReadStream> stream = streams_(*version);
    return SourceReader([stream](uint64_t offset, std::span<char> out) -> Result<size_t> {
      return stream->Read(offset, out);
    });
  }
  // A pending rename's source: once the copy is done the queue deletes it, and the bytes are
  // read from the copy under `key` instead (the same size, or the content moved on: an error).
  struct CopySource {
    std::mutex mu;
    std::shared_ptr<ReadStream> stream;
    bool switched = false;
  };
  auto state = std::make_shared<CopySource>();
  state->stream = streams_(*version);
  const uint64_t expected_size = version->size;
  return SourceReader(
      [this, state, key, expected_size](uint64_t offset, std::span<char> out) -> Result<size_t> {
        std::shared_ptr<ReadStream> stream;
        bool switched = false;
        {
          std::lock_guard lock(state->mu);
          stream = state->stream;
          switched = state->switched;
        }
        Result<size_t> got = stream->Read(offset, out);
        if (got.ok() || switched || !got.status().IsNotFound()) return got;
        Result<ObjectInfo> head = store_.Head(key);
        if (!head.ok()) return head.status();
        if (head->size != expected_size) {
          return Status::PreconditionFailed("'" + key + "' changed while its rename was pending");
        }
        {
          std::lock_guard lock(state->mu);
          if (!state->switched) {
            state->stream =
                streams_(ObjectVersion{metadata_.options().bucket, key, head->etag, head->size});
            state->switched = true;
          }
          stream = state->stream;
        }
        return stream->Read(offset, out);
      });
}

Result<std::shared_ptr<Filesystem::OpenWrite>> Filesystem::GetOrMakeWrite(const std::string& path) {
  if (std::shared_ptr<OpenWrite> write = FindWrite(path)) return write;
  Result<std::optional<EntryInfo>> info = Resolve(path);
  if (!info.ok()) return info.status();
  if (!*info) return Status::NotFound("'" + path + "' does not exist");
  if ((*info)->type == EntryType::kDirectory) {
    return PosixError(EISDIR, "'" + path + "' is a directory");
  }
  auto write = std::make_shared<OpenWrite>();
  {
    std::lock_guard lock(write->mu);
    write->path = path;
    write->info = **info;
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = open_writes_.emplace(path, write);
  return it->second;
}

Result<std::shared_ptr<StagedFile>> Filesystem::Staged(OpenWrite& write) {
  std::lock_guard lock(write.mu);
  if (write.staged) return write.staged;
  uint64_t size = 0;
  SourceReader source;
  if (write.base) {
    struct stat st {};
    if (::fstat(write.base->get(), &st) != 0) return ErrnoStatus(errno, "fstat");
    size = static_cast<uint64_t>(st.st_size);
    source = LocalSource(write.base);
  } else if (!write.unlinked) {
    Result<SourceReader> from = SourceOf(write.path, &size);
    if (!from.ok()) return from.status();
    source = std::move(*from);
  }
  Result<std::shared_ptr<StagedFile>> staged =
      writes_.staging->Create(write.path, size, size > 0 ? std::move(source) : SourceReader());
  if (!staged.ok()) return staged.status();
  write.staged = *staged;
  return write.staged;
}

PutOptions Filesystem::PutOptionsFor(const EntryInfo& info) const {
  PutOptions options;
  const mode_t default_perms =
      (info.type == EntryType::kFile ? 0666 : 0777) & ~options_.umask & 07777;
  options.metadata = PosixMetadata(info, default_perms, options_.uid, options_.gid);
  if (info.type == EntryType::kDirectory) options.content_type = kDirectoryContentType;
  return options;
}

Status Filesystem::Await(Result<uint64_t> sequence) {
  if (!sequence.ok()) return sequence.status();
  if (!writes_.sync_upload) return Status::Ok();
  return writes_.queue->WaitUploaded(*sequence, writes_.sync_timeout);
}

void Filesystem::Changed(const std::string& path) { metadata_.Invalidate(path); }

Status Filesystem::Commit(OpenWrite& write, bool await) {
  std::unique_lock commit(write.commit_mu);
  return CommitLocked(write, await);
}

Status Filesystem::CommitLocked(OpenWrite& write, bool await) {
  std::string path;
  EntryInfo info;
  {
    std::lock_guard lock(write.mu);
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
      writes_.queue->EnqueuePut(metadata_.KeyOf(path), staged_path, info.size, PutOptionsFor(info));
  {
    std::lock_guard lock(write.mu);
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
  Changed(path);
  return await ? Await(sequence) : Status::Ok();
}

void Filesystem::DropWriteIfIdle(const std::shared_ptr<OpenWrite>& write) {
  std::lock_guard lock(mu_);
  std::lock_guard write_lock(write->mu);
  if (write->writers > 0 || (write->dirty && !write->unlinked)) return;
  auto it = open_writes_.find(write->path);
  if (it != open_writes_.end() && it->second == write) open_writes_.erase(it);
}

void Filesystem::ReleaseWriter(const std::shared_ptr<OpenWrite>& write) {
  {
    std::lock_guard lock(write->mu);
    spdlog::debug("release of a writer of '{}': {} left", write->path, write->writers - 1);
    if (--write->writers > 0) return;
  }
  if (Status st = Commit(*write); !st.ok()) {
    // flush reported its own failure; this one comes from changes made after the last close
    // (through mmap). They stay staged and visible; the next close of the file commits them.
    spdlog::error("cannot queue the upload of a released file: {}", st.ToString());
  }
  DropWriteIfIdle(write);
}

Result<size_t> Filesystem::ReadLocal(FileHandle& file, uint64_t offset, std::span<char> out) {
  if (file.source) {
    if (offset >= file.source_size) return size_t{0};
    return file.source(offset,
                       out.first(std::min<uint64_t>(out.size(), file.source_size - offset)));
  }
  if (!file.write) return Status::InvalidArgument("the handle has nothing to read");
  OpenWrite& write = *file.write;
  std::shared_lock commit(write.commit_mu);
  std::shared_ptr<Fd> base;
  {
    std::lock_guard lock(write.mu);
    if (!write.staged) base = write.base;
  }
  if (base) {
    struct stat st {};
    if (::fstat(base->get(), &st) != 0) return ErrnoStatus(errno, "fstat");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (offset >= size) return size_t{0};
    return LocalSource(base)(offset, out.first(std::min<uint64_t>(out.size(), size - offset)));
  }
  Result<std::shared_ptr<StagedFile>> staged = Staged(write);
  if (!staged.ok()) return staged.status();
  return (*staged)->Read(offset, out);
}

Result<std::pair<EntryReply, OpenReply>> Filesystem::Create(uint64_t parent,
                                                            const std::string& name, mode_t mode,
                                                            int flags, Caller caller) {
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (existing) {
    if (flags & O_EXCL) return PosixError(EEXIST, "'" + path + "' exists");
    if (existing->type == EntryType::kDirectory) {
      return PosixError(EISDIR, "'" + path + "' is a directory");
    }
    target_entry->guard.Unlock();
    const uint64_t ino = inodes_.Lookup(path, existing->type);
    Result<OpenReply> opened = Open(ino, flags);
    if (!opened.ok()) {
      inodes_.Forget(ino, 1);
      return opened.status();
    }
    Result<struct stat> st = GetAttr(ino);
    if (!st.ok()) return st.status();
    return std::make_pair(EntryReply{ino, *st}, *opened);
  }
  Result<std::shared_ptr<StagedFile>> staged = writes_.staging->Create(path, 0, SourceReader());
  if (!staged.ok()) return staged.status();
  auto write = std::make_shared<OpenWrite>();
  const EntryInfo info = NewEntry(EntryType::kFile, mode, caller);
  {
    std::lock_guard lock(write->mu);
    write->path = path;
    write->info = info;
    write->staged = *staged;
    write->dirty = true;
    write->writers = 1;
  }
  {
    std::lock_guard lock(mu_);
    open_writes_[path] = write;  // any earlier one was unlinked (else Resolve found it)
  }
  target_entry->guard.Unlock();  // the name is taken: later changes see the open write
  spdlog::debug("create '{}'", path);
  const uint64_t ino = inodes_.Lookup(path, EntryType::kFile);
  auto file = std::make_shared<FileHandle>();
  file->ino = ino;
  file->path = path;
  file->write = write;
  file->writer = true;
  file->append = (flags & O_APPEND) != 0;
  const uint64_t handle = next_handle_++;
  {
    std::lock_guard lock(mu_);
    files_[handle] = std::move(file);
    last_open_etag_.erase(ino);
  }
  open_files_++;
  return std::make_pair(EntryReply{ino, ToStat(ino, info)}, OpenReply{handle, false});
}

Status Filesystem::Write(uint64_t handle, uint64_t offset, std::span<const char> data) {
  std::shared_ptr<FileHandle> file = FindFile(handle);
  if (!file) return Status::InvalidArgument("unknown file handle");
  if (!file->writer) return PosixError(EBADF, "the file is not open for writing");
  OpenWrite& write = *file->write;
  std::shared_lock commit(write.commit_mu);
  Result<std::shared_ptr<StagedFile>> staged = Staged(write);
  if (!staged.ok()) return staged.status();
  if (file->append) offset = (*staged)->size();
  STRATA_RETURN_IF_ERROR((*staged)->Write(offset, data));
  std::lock_guard lock(write.mu);
  write.dirty = true;
  write.info.mtime = Now();
  return Status::Ok();
}

Status Filesystem::Flush(uint64_t handle) {
  std::shared_ptr<FileHandle> file = FindFile(handle);
  if (!file) return Status::InvalidArgument("unknown file handle");
  if (!file->writer) return Status::Ok();
  return Commit(*file->write);
}

Status Filesystem::Fsync(uint64_t handle) { return Flush(handle); }

Result<struct stat> Filesystem::SetAttr(uint64_t ino, const SetAttrRequest& request,
                                        std::optional<uint64_t> handle) {
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node) return Status::NotFound("unknown inode " + std::to_string(ino));
  if (!request.size && !request.mode && !request.uid && !request.gid && !request.mtime) {
    return GetAttr(ino);  // atime and ctime are not stored
  }
  STRATA_RETURN_IF_ERROR(CheckWritable());
  Result<std::optional<EntryInfo>> current = Resolve(node->path);
  if (!current.ok()) return current.status();
  if (!*current) return Status::NotFound("'" + node->path + "' no longer exists");
  auto apply = [&](EntryInfo& info) {
    if (request.mode) info.mode = *request.mode & 07777;
    if (request.uid) info.uid = *request.uid;
    if (request.gid) info.gid = *request.gid;
    if (request.mtime) info.mtime = *request.mtime;
  };
  if ((*current)->type == EntryType::kDirectory) {
    if (request.size) return PosixError(EISDIR, "'" + node->path + "' is a directory");
    EntryInfo info = **current;
    apply(info);
    if (node->path.empty()) return ToStat(ino, info);  // the root has no marker to hold them
    if (info.mtime == TimePoint{}) info.mtime = Now();
    PathLocks::Guard guard = names_.Lock({{node->path}});
    Result<uint64_t> sequence = PutSmall(metadata_.KeyOf(node->path) + "/", "", info);
    Changed(node->path);
    guard.Unlock();
    STRATA_RETURN_IF_ERROR(Await(sequence));
    return ToStat(ino, info);
  }
  std::shared_ptr<OpenWrite> write;
  if (handle) {
    if (std::shared_ptr<FileHandle> file = FindFile(*handle); file && file->writer) {
      write = file->write;
    }
  }
  if (!write) {
    Result<std::shared_ptr<OpenWrite>> made = GetOrMakeWrite(node->path);
    if (!made.ok()) return made.status();
    write = *made;
  }
  bool idle = false;
  {
    std::lock_guard lock(write->mu);
    idle = write->writers == 0;
  }
  Status changed = [&]() -> Status {
    std::shared_lock commit(write->commit_mu);
    if (request.size) {
      Result<std::shared_ptr<StagedFile>> staged = Staged(*write);
      if (!staged.ok()) return staged.status();
      STRATA_RETURN_IF_ERROR((*staged)->Truncate(*request.size));
    }
    std::lock_guard lock(write->mu);
    apply(write->info);
    if (request.size && !request.mtime) write->info.mtime = Now();
    write->dirty = true;
    return Status::Ok();
  }();
  Status committed = !changed.ok() ? changed : idle ? Commit(*write) : Status::Ok();
  if (!committed.ok() && idle) {
    // Not open anywhere: the change failed as a whole, and what is committed stays as it was.
    {
      std::lock_guard lock(write->mu);
      write->dirty = false;
    }
    DropWriteIfIdle(write);
    return committed;
  }
  EntryInfo info;
  {
    std::lock_guard lock(write->mu);
    info = write->info;
    if (write->staged) info.size = write->staged->size();
  }
  if (idle) DropWriteIfIdle(write);
  if (!committed.ok()) return committed;
  return ToStat(ino, info);
}

Result<uint64_t> Filesystem::PutSmall(const std::string& key, const std::string& content,
                                      const EntryInfo& info) {
  Result<std::shared_ptr<StagedFile>> staged = writes_.staging->Create(key, 0, SourceReader());
  if (!staged.ok()) return staged.status();
  if (!content.empty()) STRATA_RETURN_IF_ERROR((*staged)->Write(0, content));
  STRATA_RETURN_IF_ERROR((*staged)->Detach(/*durable=*/false));  // EnqueuePut syncs it
  Result<uint64_t> sequence =
      writes_.queue->EnqueuePut(key, (*staged)->path(), content.size(), PutOptionsFor(info));
  if (!sequence.ok()) ::unlink((*staged)->path().c_str());
  return sequence;
}

Result<EntryReply> Filesystem::MkDir(uint64_t parent, const std::string& name, mode_t mode,
                                     Caller caller) {
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (existing) return PosixError(EEXIST, "'" + path + "' exists");
  const EntryInfo info = NewEntry(EntryType::kDirectory, mode, caller);
  Result<uint64_t> sequence = PutSmall(metadata_.KeyOf(path) + "/", "", info);
  if (!sequence.ok()) return sequence.status();
  Changed(path);
  const uint64_t ino = inodes_.Lookup(path, EntryType::kDirectory);
  target_entry->guard.Unlock();
  STRATA_RETURN_IF_ERROR(Await(sequence));
  return EntryReply{ino, ToStat(ino, info)};
}

Result<EntryReply> Filesystem::Symlink(const std::string& target, uint64_t parent,
                                       const std::string& name, Caller caller) {
  if (target.empty() || target.size() >= 4096) {
    return PosixError(ENAMETOOLONG, "symlink target too long");
  }
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (existing) return PosixError(EEXIST, "'" + path + "' exists");
  EntryInfo info = NewEntry(EntryType::kSymlink, 0777, caller);
  info.size = target.size();
  Result<uint64_t> sequence = PutSmall(metadata_.KeyOf(path), target, info);
  if (!sequence.ok()) return sequence.status();
  Changed(path);
  const uint64_t ino = inodes_.Lookup(path, EntryType::kSymlink);
  target_entry->guard.Unlock();
  STRATA_RETURN_IF_ERROR(Await(sequence));
  return EntryReply{ino, ToStat(ino, info)};
}

Status Filesystem::Unlink(uint64_t parent, const std::string& name) {
  // Before the locks: open readers of the object finish from the cache (up to 64 MiB).
  if (Result<std::string> path = ChildPath(parent, name); path.ok()) KeepReadable(*path);
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (!existing) return Status::NotFound("no such entry '" + path + "'");
  if (existing->type == EntryType::kDirectory) {
    return PosixError(EISDIR, "'" + path + "' is a directory");
  }
  if (std::shared_ptr<OpenWrite> write = FindWrite(path)) {
    // Open handles keep reading and writing the staged data; nothing more is uploaded.
    std::unique_lock commit(write->commit_mu);
    std::lock_guard lock(mu_);
    std::lock_guard write_lock(write->mu);
    write->unlinked = true;
    open_writes_.erase(path);
  }
  Result<uint64_t> sequence = writes_.queue->EnqueueDelete(metadata_.KeyOf(path));
  if (sequence.ok()) spdlog::debug("unlink '{}': delete queued as #{}", path, *sequence);
  inodes_.Unlink(path);
  Changed(path);
  target_entry->guard.Unlock();
  return Await(sequence);
}

void Filesystem::KeepReadable(const std::string& path) {
  constexpr uint64_t kMaxBytes = 64ull << 20;
  std::vector<std::shared_ptr<FileHandle>> readers;
  {
    std::lock_guard lock(mu_);
    for (const auto& [handle, file] : files_) {
      if (file->stream && file->path == path) readers.push_back(file);
    }
  }
  std::string scratch;
  for (const std::shared_ptr<FileHandle>& file : readers) {
    const uint64_t size = file->stream->object().size;
    if (size > kMaxBytes) continue;
    scratch.resize(1 << 20);
    for (uint64_t offset = 0; offset < size; offset += scratch.size()) {
      if (!file->stream->Read(offset, std::span<char>(scratch.data(), scratch.size())).ok()) break;
    }
  }
}

Status Filesystem::RmDir(uint64_t parent, const std::string& name) {
  if (Result<std::string> path = ChildPath(parent, name); path.ok()) {
    IgnoreError(MergedListing(*path).status(), "only warms the cache for the check below");
  }
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (!existing) return Status::NotFound("no such entry '" + path + "'");
  if (existing->type != EntryType::kDirectory) {
    return PosixError(ENOTDIR, "'" + path + "' is not a directory");
  }
  Result<std::shared_ptr<const DirListing>> listing = MergedListing(path);
  if (!listing.ok() && !listing.status().IsNotFound()) return listing.status();
  if (listing.ok() && !(*listing)->entries.empty()) {
    return PosixError(ENOTEMPTY, "'" + path + "' is not empty");
  }
  Result<uint64_t> sequence = writes_.queue->EnqueueDelete(metadata_.KeyOf(path) + "/");
  inodes_.Unlink(path);
  Changed(path);
  target_entry->guard.Unlock();
  return Await(sequence);
}

Status Filesystem::Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                          const std::string& new_name, unsigned flags) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) {
    return PosixError(EINVAL, "rename flags other than RENAME_NOREPLACE are not supported");
  }
  Result<std::string> from = ChildPath(parent, name);
  if (!from.ok()) return from.status();
  Result<std::string> to = ChildPath(new_parent, new_name);
  if (!to.ok()) return to.status();
  // Asked first without locks (see Target); a directory is locked with its whole subtree.
  Result<std::optional<EntryInfo>> ahead = Resolve(*from);
  if (!ahead.ok()) return ahead.status();
  IgnoreError(Resolve(*to).status(), "only warms the cache for the decision below");
  bool subtree = *ahead && (*ahead)->type == EntryType::kDirectory;
  PathLocks::Guard guard;
  Result<std::optional<EntryInfo>> source = Status::Internal("unset");
  for (int attempt = 1;; ++attempt) {
    guard = names_.Lock({{ParentPath(*from)}, {*from, subtree}, {ParentPath(*to)}, {*to}});
    source = Resolve(*from);
    if (!source.ok()) return source.status();
    if (!*source) return Status::NotFound("no such entry '" + *from + "'");
    const bool is_dir = (*source)->type == EntryType::kDirectory;
    if (is_dir == subtree) break;
    // It changed type meanwhile (replaced by another change of this mount): lock again.
    if (attempt == 3) return Status::Transient("'" + *from + "' keeps changing; try again");
    guard.Unlock();
    subtree = is_dir;
  }
  if (*from == *to) return Status::Ok();
  const bool is_dir = subtree;
  if (is_dir && PathWithin(*to, *from)) {
    return PosixError(EINVAL, "cannot move '" + *from + "' into itself");
  }
  Result<std::optional<EntryInfo>> target = Resolve(*to);
  if (!target.ok()) return target.status();
  if (*target) {
    if (flags & RENAME_NOREPLACE) return PosixError(EEXIST, "'" + *to + "' exists");
    const bool target_dir = (*target)->type == EntryType::kDirectory;
    if (is_dir && !target_dir) return PosixError(ENOTDIR, "'" + *to + "' is not a directory");
    if (!is_dir && target_dir) return PosixError(EISDIR, "'" + *to + "' is a directory");
    if (target_dir) {
      Result<std::shared_ptr<const DirListing>> listing = MergedListing(*to);
      if (!listing.ok()) return listing.status();
      if (!(*listing)->entries.empty()) return PosixError(ENOTEMPTY, "'" + *to + "' is not empty");
      Result<uint64_t> removed = writes_.queue->EnqueueDelete(metadata_.KeyOf(*to) + "/");
      if (!removed.ok()) return removed.status();
    }
  }
  if (is_dir) {
    Result<uint64_t> last = RenameDirectory(*from, *to);
    guard.Unlock();
    if (!last.ok()) return last.status();
    return Await(last);
  }

  std::shared_ptr<OpenWrite> write = FindWrite(*from);
  std::unique_lock<std::shared_mutex> commit;
  if (write) {
    // Its changes go to the old name first; the rename then carries them over.
    commit = std::unique_lock(write->commit_mu);
    STRATA_RETURN_IF_ERROR(CommitLocked(*write, /*await=*/false));
  }
  if (std::shared_ptr<OpenWrite> replaced = FindWrite(*to)) {
    std::unique_lock replaced_commit(replaced->commit_mu);
    std::lock_guard lock(mu_);
    std::lock_guard write_lock(replaced->mu);
    replaced->unlinked = true;
    open_writes_.erase(*to);
  }
  Result<uint64_t> sequence =
      writes_.queue->EnqueueRename(metadata_.KeyOf(*from), metadata_.KeyOf(*to));
  if (!sequence.ok()) return sequence.status();
  spdlog::debug("rename '{}' -> '{}': queued as #{} (open write: {})", *from, *to, *sequence,
                write != nullptr);
  if (write) {
    std::lock_guard lock(mu_);
    std::lock_guard write_lock(write->mu);
    write->path = *to;
    open_writes_.erase(*from);
    open_writes_[*to] = write;
  }
  inodes_.Rename(*from, *to);
  Changed(*from);
  Changed(*to);
  if (commit.owns_lock()) commit.unlock();
  guard.Unlock();
  return Await(sequence);
}

Result<uint64_t> Filesystem::RenameDirectory(const std::string& from, const std::string& to) {
  // Commit files being written under it, so that their data moves with the rest.
  std::vector<std::shared_ptr<OpenWrite>> writes;
  {
    std::lock_guard lock(mu_);
    for (const auto& [path, write] : open_writes_) {
      if (PathWithin(path, from)) writes.push_back(write);
    }
  }
  for (const std::shared_ptr<OpenWrite>& write : writes) {
    STRATA_RETURN_IF_ERROR(Commit(*write, /*await=*/false));
  }

  // Every key under it: S3's, with the queue's pending changes.
  const std::string from_key = metadata_.KeyOf(from) + "/";
  const std::string to_key = metadata_.KeyOf(to) + "/";
  std::set<std::string> keys;
  ListOptions options{.prefix = from_key};
  for (;;) {
    Result<ListPage> page = store_.List(options);
    if (!page.ok()) return page.status();
    for (const ObjectInfo& object : page->objects) keys.insert(object.key);
    if (!page->truncated) break;
    options.continuation_token = page->next_continuation_token;
  }
  for (const auto& [key, state] : writes_.queue->PendingUnder(from_key)) {
    if (state.kind == PendingState::Kind::kDeleted) {
      keys.erase(key);
    } else if (state.kind != PendingState::Kind::kNone) {
      keys.insert(key);
    }
  }
  for (const std::string& key : keys) {
    if (to_key.size() + key.size() - from_key.size() > kMaxKeyBytes) {
      return PosixError(ENAMETOOLONG, "'" + key + "' would be too long under '" + to + "'");
    }
  }
  Result<uint64_t> last = uint64_t{0};
  if (keys.find(from_key) == keys.end()) {
    // An implicit directory: give the new name a marker so that it exists even when empty.
    EntryInfo info = DirectoryInfo();
    info.mtime = Now();
    last = PutSmall(to_key, "", info);
    if (!last.ok()) return last.status();
  }
  for (const std::string& key : keys) {
    last = writes_.queue->EnqueueRename(key, to_key + key.substr(from_key.size()));
    if (!last.ok()) return last.status();
  }
  {
    std::lock_guard lock(mu_);
    for (const std::shared_ptr<OpenWrite>& write : writes) {
      std::lock_guard write_lock(write->mu);
      if (write->unlinked || !PathWithin(write->path, from)) continue;
      auto it = open_writes_.find(write->path);
      if (it != open_writes_.end() && it->second == write) open_writes_.erase(it);
      write->path = to + write->path.substr(from.size());
      open_writes_[write->path] = write;
    }
  }
  inodes_.Rename(from, to);
  metadata_.InvalidateAll();
  return last;
}

void Filesystem::OnUploaded(const QueueRecord& record) {
  const std::string& prefix = metadata_.options().prefix;
  auto path_of = [&prefix](std::string key) -> std::optional<std::string> {
    if (!key.starts_with(prefix)) return std::nullopt;
    key.erase(0, prefix.size());
    if (!key.empty() && key.back() == '/') key.pop_back();
    return key;
  };
  const std::optional<std::string> path = path_of(record.key);
  if (!path) return;
  // The object's Last-Modified falls between the enqueue and now; allow for clock skew.
  constexpr auto kSkew = std::chrono::seconds(5);
  const TimePoint not_before =
      TimePoint(std::chrono::milliseconds(record.enqueued_unix_ms)) - kSkew;
  const TimePoint not_after = Now() + kSkew;
  if (record.op == QueueOp::kPut) {
    EntryInfo info;
    info.type = record.key.ends_with('/') ? EntryType::kDirectory : EntryType::kFile;
    info.size = record.size;
    ApplyPosixMetadata(record.options.metadata, info);
    if (record.key.ends_with('/')) info.type = EntryType::kDirectory;
    metadata_.RememberAttributes(*path, info, not_before, not_after);
  } else if (record.op == QueueOp::kCopy) {
    if (std::optional<std::string> from = path_of(record.source)) {
      metadata_.RememberCopy(*from, *path, not_before, not_after);
    }
  }
  metadata_.InvalidateWithAncestors(*path);
}

std::string Filesystem::QueueText(uint64_t after, size_t max_bytes) {
  if (!writable()) return "read-only mount: no upload queue\n";
  std::string out = "SEQ\tSTATE\tOP\tKEY\tSIZE\tAGE_S\tATTEMPTS\tPARTS\tNEXT_S\tLAST_ERROR\n";
  const size_t header = out.size();
  constexpr size_t kBatch = 256;
  while (true) {
    const std::vector<QueueEntryView> batch = writes_.queue->List(after, kBatch);
    for (const QueueEntryView& entry : batch) {
      std::string key = entry.key;
      if (entry.op == QueueOp::kCopy) key = entry.source + " -> " + entry.key;
      char age[32];
      std::snprintf(age, sizeof age, "%.1f", entry.age.count() / 1000.0);
      char next[32] = "-";
      if (entry.next_attempt_in) {
        std::snprintf(next, sizeof next, "%.1f", entry.next_attempt_in->count() / 1000.0);
      }
      std::string line =
          std::to_string(entry.sequence) + "\t" + std::string(QueueEntryStateName(entry.state)) +
          "\t" + std::string(QueueOpName(entry.op)) + "\t" + key + "\t" +
          std::to_string(entry.size) + "\t" + age + "\t" + std::to_string(entry.attempts) + "\t" +
          std::to_string(entry.parts_done) + "\t" + next + "\t" + entry.last_error + "\n";
      if (out.size() > header && out.size() + line.size() > max_bytes) return out;
      out += line;
      after = entry.sequence;
    }
    if (batch.size() < kBatch) return out;
  }
}

Result<uint64_t> Filesystem::RetryQueue() {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  const uint64_t dead = writes_.queue->stats().dead_letters;
  STRATA_RETURN_IF_ERROR(writes_.queue->RetryDeadLetters());
  return dead;
}

}  // namespace strata
