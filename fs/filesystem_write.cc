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

#include "backends/s3_keys.h"
#include "backends/s3_multipart.h"
#include "fs/filesystem.h"
#include "fs/paths.h"

namespace strata {
namespace {

TimePoint Now() { return std::chrono::system_clock::now(); }

}  // namespace

Result<Filesystem::NamedEntry> Filesystem::Target(uint64_t parent, const std::string& name) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  Result<std::string> path = ChildPath(parent, name);
  if (!path.ok()) return path.status();
  // Asked first without a lock, so that what S3 says is in the metadata cache and the decision
  // under the locks rarely waits for S3 (it does when the entry expired in between).
  if (Result<std::optional<EntryInfo>> ahead = view_->Resolve(*path); !ahead.ok())
    return ahead.status();
  PathLocks::Guard guard = names_.Lock({{ParentPath(*path)}, {*path}});
  Result<std::optional<EntryInfo>> existing = view_->Resolve(*path);
  if (!existing.ok()) return existing.status();
  return NamedEntry{std::move(*path), std::move(*existing), std::move(guard)};
}

EntryInfo Filesystem::NewEntry(const std::string& path, EntryType type, mode_t mode,
                               Caller caller) {
  EntryInfo info;
  info.type = type;
  info.mode = mode & 07777;
  info.uid = caller.uid;
  info.gid = caller.gid;
  info.mtime = info.ctime = info.atime = Now();
  // The parent was resolved just before (Target): this answer comes from the caches.
  if (Result<std::optional<EntryInfo>> parent = view_->Resolve(ParentPath(path));
      parent.ok() && *parent && (*parent)->mode && (*(*parent)->mode & S_ISGID)) {
    info.gid = (*parent)->gid.value_or(options_.gid);
    if (type == EntryType::kDirectory) *info.mode |= S_ISGID;
  }
  return info;
}

void Filesystem::TouchDirectory(const std::string& dir) {
  constexpr size_t kMaxDirectories = 100000;
  const TimePoint now = Now();
  MutexLock lock(mu_);
  if (dir_times_.size() >= kMaxDirectories) dir_times_.clear();
  dir_times_[dir] = DirTimes{now, now};
}

void Filesystem::ApplyDirectoryTimes(const std::string& dir, EntryInfo& info) {
  if (info.type != EntryType::kDirectory) return;
  MutexLock lock(mu_);
  auto it = dir_times_.find(dir);
  if (it == dir_times_.end()) return;
  info.mtime = it->second.mtime;
  info.ctime = it->second.ctime;
}

Status Filesystem::CheckWritable() const {
  if (!writable()) return Status::ReadOnly("the filesystem is mounted read-only");
  return Status::Ok();
}

Result<std::string> Filesystem::ChildPath(uint64_t parent, const std::string& name) {
  std::optional<InodeTable::Node> node = inodes_.Get(parent);
  if (!node || node->type != EntryType::kDirectory) {
    return Status::NotFound("no directory inode " + std::to_string(parent));
  }
  const std::string path = JoinPath(node->path, name);
  // One rule: an object's key, a file's or a directory marker's ("dir/"), has at most
  // kMaxKeyBytes bytes. MkDir and rename of directories check the marker's.
  if (name.size() > 255 || metadata_.KeyOf(path).size() > kMaxKeyBytes) {
    return Status::NameTooLong("name too long for an S3 key: " + path);
  }
  if (!ValidFileName(name)) return Status::InvalidArgument("invalid file name '" + name + "'");
  return path;
}

void Filesystem::Changed(const std::string& path) { metadata_.Invalidate(path); }

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
    MutexLock lock(write.mu);
    if (!write.staged) base = write.base;
  }
  if (base) {
    struct stat st {};
    if (::fstat(base->get(), &st) != 0) return ErrnoStatus(errno, "fstat");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (offset >= size) return size_t{0};
    return LocalSource(base)(offset, out.first(std::min<uint64_t>(out.size(), size - offset)));
  }
  Result<std::shared_ptr<StagedFile>> staged = writer_->Staged(write);
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
    if (flags & O_EXCL) return Status::AlreadyExists("'" + path + "' exists");
    if (existing->type == EntryType::kDirectory) {
      return Status::IsDirectory("'" + path + "' is a directory");
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
  const EntryInfo info = NewEntry(path, EntryType::kFile, mode, caller);
  {
    MutexLock lock(write->mu);
    write->path = path;
    write->info = info;
    write->staged = *staged;
    write->dirty = true;
    write->writers = 1;
  }
  open_writes_.Put(path, write);  // any earlier one was unlinked (else Resolve found it)
  TouchDirectory(ParentPath(path));
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
    MutexLock lock(mu_);
    files_[handle] = std::move(file);
    last_open_etag_.erase(ino);
  }
  open_files_++;
  return std::make_pair(EntryReply{ino, ToStat(ino, info)}, OpenReply{handle, false});
}

Status Filesystem::Write(uint64_t handle, uint64_t offset, std::span<const char> data) {
  std::shared_ptr<FileHandle> file = FindFile(handle);
  if (!file) return Status::InvalidArgument("unknown file handle");
  if (!file->writer) return Status::BadHandle("the file is not open for writing");
  OpenWrite& write = *file->write;
  std::shared_lock commit(write.commit_mu);
  Result<std::shared_ptr<StagedFile>> staged = writer_->Staged(write);
  if (!staged.ok()) return staged.status();
  if (file->append) offset = (*staged)->size();
  STRATA_RETURN_IF_ERROR((*staged)->Write(offset, data));
  MutexLock lock(write.mu);
  write.dirty = true;
  write.info.mtime = write.info.ctime = Now();
  return Status::Ok();
}

Status Filesystem::Flush(uint64_t handle) {
  std::shared_ptr<FileHandle> file = FindFile(handle);
  if (!file) return Status::InvalidArgument("unknown file handle");
  if (!file->writer) return Status::Ok();
  return writer_->Commit(*file->write);
}

Status Filesystem::Fsync(uint64_t handle) { return Flush(handle); }

Result<struct stat> Filesystem::SetAttr(uint64_t ino, const SetAttrRequest& request,
                                        std::optional<uint64_t> handle) {
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node) return Status::NotFound("unknown inode " + std::to_string(ino));
  if (!request.any()) return GetAttr(ino);
  STRATA_RETURN_IF_ERROR(CheckWritable());
  // S3 holds objects up to 5 TiB.
  constexpr uint64_t kMaxObjectBytes = 5ull << 40;
  if (request.size && *request.size > kMaxObjectBytes) {
    return Status::TooLarge("'" + node->path + "' cannot grow beyond 5 TiB (S3's limit)");
  }
  Result<std::optional<EntryInfo>> current = view_->Resolve(node->path);
  if (!current.ok()) return current.status();
  if (!*current) return Status::NotFound("'" + node->path + "' no longer exists");
  const TimePoint now = Now();
  auto apply = [&](EntryInfo& info) {
    if (info.atime == TimePoint{}) info.atime = info.mtime;
    if (request.mode) info.mode = *request.mode & 07777;
    if (request.uid) info.uid = *request.uid;
    if (request.gid) info.gid = *request.gid;
    if (request.atime) info.atime = *request.atime;
    if (request.mtime) info.mtime = *request.mtime;
    info.ctime = now;
  };
  if ((*current)->type == EntryType::kDirectory) {
    if (request.size) return Status::IsDirectory("'" + node->path + "' is a directory");
    EntryInfo info = **current;
    ApplyDirectoryTimes(node->path, info);
    if (info.mtime == TimePoint{}) info.mtime = mounted_at_;
    apply(info);
    {
      MutexLock lock(mu_);
      dir_times_[node->path] = DirTimes{info.mtime, info.ctime};
    }
    if (node->path.empty()) return ToStat(ino, info);  // the root has no marker to hold them
    PathLocks::Guard guard = names_.Lock({{node->path}});
    Result<uint64_t> sequence = writer_->PutSmall(metadata_.KeyOf(node->path) + "/", "", info);
    Changed(node->path);
    guard.Unlock();
    STRATA_RETURN_IF_ERROR(writer_->Await(sequence));
    return ToStat(ino, info);
  }
  std::shared_ptr<OpenWrite> write;
  if (handle) {
    if (std::shared_ptr<FileHandle> file = FindFile(*handle); file && file->writer) {
      write = file->write;
    }
  }
  if (!request.size && !write && (*current)->size <= kMaxCopyObjectBytes) {
    // Attributes only of a file whose content is S3's: one server-side copy, no body upload.
    PathLocks::Guard guard = names_.Lock({{node->path}});
    const PendingState::Kind pending = writes_.queue->Pending(metadata_.KeyOf(node->path)).kind;
    Result<std::optional<EntryInfo>> resolved = view_->Resolve(node->path);  // under the lock
    if (!open_writes_.Find(node->path) && resolved.ok() && *resolved &&
        !(*resolved)->etag.empty() &&
        (pending == PendingState::Kind::kNone || pending == PendingState::Kind::kMetadata)) {
      EntryInfo info = **resolved;
      apply(info);
      Result<uint64_t> sequence = writer_->SetMetadata(node->path, info, (*resolved)->etag);
      guard.Unlock();
      STRATA_RETURN_IF_ERROR(writer_->Await(sequence));
      return ToStat(ino, info);
    }
  }
  if (!write) {
    Result<std::shared_ptr<OpenWrite>> made = writer_->GetOrMake(node->path);
    if (!made.ok()) return made.status();
    write = *made;
  }
  bool idle = false;
  {
    MutexLock lock(write->mu);
    idle = write->writers == 0;
  }
  Status changed = [&]() -> Status {
    std::shared_lock commit(write->commit_mu);
    if (request.size) {
      Result<std::shared_ptr<StagedFile>> staged = writer_->Staged(*write);
      if (!staged.ok()) return staged.status();
      STRATA_RETURN_IF_ERROR((*staged)->Truncate(*request.size));
    }
    MutexLock lock(write->mu);
    apply(write->info);
    if (request.size && !request.mtime) write->info.mtime = now;
    write->dirty = true;
    return Status::Ok();
  }();
  Status committed = !changed.ok() ? changed : idle ? writer_->Commit(*write) : Status::Ok();
  if (!committed.ok() && idle) {
    // Not open anywhere: the change failed as a whole, and what is committed stays as it was.
    {
      MutexLock lock(write->mu);
      write->dirty = false;
    }
    open_writes_.EraseIfIdle(write);
    return committed;
  }
  EntryInfo info;
  {
    MutexLock lock(write->mu);
    info = write->info;
    if (write->staged) info.size = write->staged->size();
  }
  if (idle) open_writes_.EraseIfIdle(write);
  if (!committed.ok()) return committed;
  return ToStat(ino, info);
}

Result<EntryReply> Filesystem::MkDir(uint64_t parent, const std::string& name, mode_t mode,
                                     Caller caller) {
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (existing) return Status::AlreadyExists("'" + path + "' exists");
  if (metadata_.KeyOf(path).size() + 1 > kMaxKeyBytes) {
    return Status::NameTooLong("a directory marker for '" + path + "' would be too long a key");
  }
  const EntryInfo info = NewEntry(path, EntryType::kDirectory, mode, caller);
  Result<uint64_t> sequence = writer_->PutSmall(metadata_.KeyOf(path) + "/", "", info);
  if (!sequence.ok()) return sequence.status();
  Changed(path);
  TouchDirectory(ParentPath(path));
  {
    MutexLock lock(mu_);
    dir_times_.erase(path);  // a new directory: its own times, not an earlier one's of its name
  }
  const uint64_t ino = inodes_.Lookup(path, EntryType::kDirectory);
  target_entry->guard.Unlock();
  STRATA_RETURN_IF_ERROR(writer_->Await(sequence));
  return EntryReply{ino, ToStat(ino, info)};
}

Result<EntryReply> Filesystem::Symlink(const std::string& target, uint64_t parent,
                                       const std::string& name, Caller caller) {
  if (target.empty() || target.size() >= 4096) {
    return Status::NameTooLong("symlink target too long");
  }
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (existing) return Status::AlreadyExists("'" + path + "' exists");
  EntryInfo info = NewEntry(path, EntryType::kSymlink, 0777, caller);
  info.size = target.size();
  Result<uint64_t> sequence = writer_->PutSmall(metadata_.KeyOf(path), target, info);
  if (!sequence.ok()) return sequence.status();
  Changed(path);
  TouchDirectory(ParentPath(path));
  const uint64_t ino = inodes_.Lookup(path, EntryType::kSymlink);
  target_entry->guard.Unlock();
  STRATA_RETURN_IF_ERROR(writer_->Await(sequence));
  return EntryReply{ino, ToStat(ino, info)};
}

Result<EntryReply> Filesystem::MkNod(uint64_t parent, const std::string& name, mode_t mode,
                                     dev_t rdev, Caller caller) {
  const EntryType type = EntryTypeOf(mode);
  if (type == EntryType::kFile || type == EntryType::kDirectory || type == EntryType::kSymlink) {
    return Status::InvalidArgument("mknod makes FIFOs, sockets and devices only");
  }
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  if (target_entry->existing) return Status::AlreadyExists("'" + path + "' exists");
  EntryInfo info = NewEntry(path, type, mode, caller);
  if (type == EntryType::kCharDevice || type == EntryType::kBlockDevice) info.rdev = rdev;
  Result<uint64_t> sequence = writer_->PutSmall(metadata_.KeyOf(path), "", info);
  if (!sequence.ok()) return sequence.status();
  Changed(path);
  TouchDirectory(ParentPath(path));
  const uint64_t ino = inodes_.Lookup(path, type);
  target_entry->guard.Unlock();
  STRATA_RETURN_IF_ERROR(writer_->Await(sequence));
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
    return Status::IsDirectory("'" + path + "' is a directory");
  }
  if (std::shared_ptr<OpenWrite> write = open_writes_.Find(path)) {
    // Open handles keep reading and writing the staged data; nothing more is uploaded.
    std::unique_lock commit(write->commit_mu);
    open_writes_.Unlink(write);
  }
  Result<uint64_t> sequence = writes_.queue->EnqueueDelete(metadata_.KeyOf(path));
  if (sequence.ok()) spdlog::debug("unlink '{}': delete queued as #{}", path, *sequence);
  inodes_.Unlink(path);
  Changed(path);
  TouchDirectory(ParentPath(path));
  target_entry->guard.Unlock();
  return writer_->Await(sequence);
}

void Filesystem::KeepReadable(const std::string& path) {
  constexpr uint64_t kMaxBytes = 64ull << 20;
  std::vector<std::shared_ptr<FileHandle>> readers;
  {
    MutexLock lock(mu_);
    for (const auto& [handle, file] : files_) {
      if (file->stream && file->path == path && !file->unpin) readers.push_back(file);
    }
  }
  std::string scratch;
  for (const std::shared_ptr<FileHandle>& file : readers) {
    const uint64_t size = file->stream->object().size;
    if (size > kMaxBytes) continue;
    if (writes_.pin) {
      std::function<void()> unpin = writes_.pin(file->stream->object().key);
      MutexLock lock(mu_);
      const bool open = std::any_of(files_.begin(), files_.end(),
                                    [&](const auto& entry) { return entry.second == file; });
      if (!open) {  // released meanwhile: nobody is left to read it
        lock.Unlock();
        unpin();
        continue;
      }
      file->unpin = std::move(unpin);
    }
    scratch.resize(1 << 20);
    for (uint64_t offset = 0; offset < size; offset += scratch.size()) {
      if (!file->stream->Read(offset, std::span<char>(scratch.data(), scratch.size())).ok()) break;
    }
  }
}

Status Filesystem::RmDir(uint64_t parent, const std::string& name) {
  if (Result<std::string> path = ChildPath(parent, name); path.ok()) {
    IgnoreError(view_->List(*path).status(), "only warms the cache for the check below");
  }
  Result<NamedEntry> target_entry = Target(parent, name);
  if (!target_entry.ok()) return target_entry.status();
  const std::string& path = target_entry->path;
  const std::optional<EntryInfo>& existing = target_entry->existing;
  if (!existing) return Status::NotFound("no such entry '" + path + "'");
  if (existing->type != EntryType::kDirectory) {
    return Status::NotDirectory("'" + path + "' is not a directory");
  }
  Result<std::shared_ptr<const DirListing>> listing = view_->List(path);
  if (!listing.ok() && !listing.status().IsNotFound()) return listing.status();
  if (listing.ok() && !(*listing)->entries.empty()) {
    return Status::NotEmpty("'" + path + "' is not empty");
  }
  Result<uint64_t> sequence = writes_.queue->EnqueueDelete(metadata_.KeyOf(path) + "/");
  inodes_.Unlink(path);
  Changed(path);
  TouchDirectory(ParentPath(path));
  {
    MutexLock lock(mu_);
    dir_times_.erase(path);
  }
  target_entry->guard.Unlock();
  return writer_->Await(sequence);
}

Status Filesystem::Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                          const std::string& new_name, unsigned flags) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) {
    return Status::InvalidArgument("rename flags other than RENAME_NOREPLACE are not supported");
  }
  Result<std::string> from = ChildPath(parent, name);
  if (!from.ok()) return from.status();
  Result<std::string> to = ChildPath(new_parent, new_name);
  if (!to.ok()) return to.status();
  // Asked first without locks (see Target); a directory is locked with its whole subtree.
  Result<std::optional<EntryInfo>> ahead = view_->Resolve(*from);
  if (!ahead.ok()) return ahead.status();
  IgnoreError(view_->Resolve(*to).status(), "only warms the cache for the decision below");
  bool subtree = *ahead && (*ahead)->type == EntryType::kDirectory;
  PathLocks::Guard guard;
  Result<std::optional<EntryInfo>> source = Status::Internal("unset");
  for (int attempt = 1;; ++attempt) {
    guard = names_.Lock({{ParentPath(*from)}, {*from, subtree}, {ParentPath(*to)}, {*to}});
    source = view_->Resolve(*from);
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
    return Status::InvalidArgument("cannot move '" + *from + "' into itself");
  }
  if (is_dir && metadata_.KeyOf(*to).size() + 1 > kMaxKeyBytes) {
    return Status::NameTooLong("a directory marker for '" + *to + "' would be too long a key");
  }
  Result<std::optional<EntryInfo>> target = view_->Resolve(*to);
  if (!target.ok()) return target.status();
  if (*target) {
    if (flags & RENAME_NOREPLACE) return Status::AlreadyExists("'" + *to + "' exists");
    const bool target_dir = (*target)->type == EntryType::kDirectory;
    if (is_dir && !target_dir) return Status::NotDirectory("'" + *to + "' is not a directory");
    if (!is_dir && target_dir) return Status::IsDirectory("'" + *to + "' is a directory");
    if (target_dir) {
      Result<std::shared_ptr<const DirListing>> listing = view_->List(*to);
      if (!listing.ok()) return listing.status();
      if (!(*listing)->entries.empty()) return Status::NotEmpty("'" + *to + "' is not empty");
      Result<uint64_t> removed = writes_.queue->EnqueueDelete(metadata_.KeyOf(*to) + "/");
      if (!removed.ok()) return removed.status();
    }
  }
  TouchDirectory(ParentPath(*from));
  TouchDirectory(ParentPath(*to));
  if (is_dir) {
    Result<uint64_t> last = RenameDirectory(*from, *to);
    guard.Unlock();
    if (!last.ok()) return last.status();
    return writer_->Await(last);
  }

  std::shared_ptr<OpenWrite> write = open_writes_.Find(*from);
  std::unique_lock<std::shared_mutex> commit;
  if (write) {
    // Its changes go to the old name first; the rename then carries them over.
    commit = std::unique_lock(write->commit_mu);
    STRATA_RETURN_IF_ERROR(writer_->CommitLocked(*write, /*await=*/false));
  }
  if (std::shared_ptr<OpenWrite> replaced = open_writes_.Find(*to)) {
    std::unique_lock replaced_commit(replaced->commit_mu);
    open_writes_.Unlink(replaced);
  }
  Result<uint64_t> sequence =
      writes_.queue->EnqueueRename(metadata_.KeyOf(*from), metadata_.KeyOf(*to));
  if (!sequence.ok()) return sequence.status();
  spdlog::debug("rename '{}' -> '{}': queued as #{} (open write: {})", *from, *to, *sequence,
                write != nullptr);
  if (write) open_writes_.Move(write, *to);
  inodes_.Rename(*from, *to);
  Changed(*from);
  Changed(*to);
  if (commit.owns_lock()) commit.unlock();
  guard.Unlock();
  return writer_->Await(sequence);
}

Result<uint64_t> Filesystem::RenameDirectory(const std::string& from, const std::string& to) {
  // Commit files being written under it, so that their data moves with the rest.
  const std::vector<std::shared_ptr<OpenWrite>> writes = open_writes_.Within(from);
  for (const std::shared_ptr<OpenWrite>& write : writes) {
    STRATA_RETURN_IF_ERROR(writer_->Commit(*write, /*await=*/false));
  }

  // Every key under it: S3's, with the queue's pending changes.
  const std::string from_key = metadata_.KeyOf(from) + "/";
  const std::string to_key = metadata_.KeyOf(to) + "/";
  Result<std::vector<std::string>> listed = metadata_.KeysUnder(from_key);
  if (!listed.ok()) return listed.status();
  std::set<std::string> keys(listed->begin(), listed->end());
  for (const auto& [key, state] : writes_.queue->PendingUnder(from_key)) {
    if (state.kind == PendingState::Kind::kDeleted) {
      keys.erase(key);
    } else if (state.kind != PendingState::Kind::kNone) {
      keys.insert(key);
    }
  }
  for (const std::string& key : keys) {
    if (to_key.size() + key.size() - from_key.size() > kMaxKeyBytes) {
      return Status::NameTooLong("'" + key + "' would be too long under '" + to + "'");
    }
  }
  Result<uint64_t> last = uint64_t{0};
  if (keys.find(from_key) == keys.end()) {
    // An implicit directory: give the new name a marker so that it exists even when empty.
    EntryInfo info = DirectoryEntry();
    info.mtime = Now();
    last = writer_->PutSmall(to_key, "", info);
    if (!last.ok()) return last.status();
  }
  for (const std::string& key : keys) {
    last = writes_.queue->EnqueueRename(key, to_key + key.substr(from_key.size()));
    if (!last.ok()) return last.status();
  }
  for (const std::shared_ptr<OpenWrite>& write : writes) {
    std::string path;
    {
      MutexLock lock(write->mu);
      if (write->unlinked || !PathWithin(write->path, from)) continue;
      path = write->path;
    }
    open_writes_.Move(write, to + path.substr(from.size()));
  }
  inodes_.Rename(from, to);
  {
    // The times of the directories moved go with them, as their inodes do.
    MutexLock lock(mu_);
    std::vector<std::pair<std::string, DirTimes>> moved;
    for (auto it = dir_times_.begin(); it != dir_times_.end();) {
      if (PathWithin(it->first, from) || PathWithin(it->first, to)) {
        if (PathWithin(it->first, from)) {
          moved.emplace_back(to + it->first.substr(from.size()), it->second);
        }
        it = dir_times_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [path, times] : moved) dir_times_[path] = times;
  }
  metadata_.InvalidateAll();
  return last;
}

void Filesystem::OnUploaded(const QueueRecord& record, const std::string& etag) {
  const std::string& prefix = metadata_.options().prefix;
  auto path_of = [&prefix](std::string key) -> std::optional<std::string> {
    if (!key.starts_with(prefix)) return std::nullopt;
    key.erase(0, prefix.size());
    if (!key.empty() && key.back() == '/') key.pop_back();
    return key;
  };
  // What the object is now, so that listings show its attributes without a HEAD, also after a
  // restart (the AttrStore persists).
  switch (record.op) {
    case QueueOp::kPut:
      if (!etag.empty()) {
        metadata_.Learned(record.key, KnownVersion{.etag = etag,
                                                   .metadata = record.options.metadata,
                                                   .content_type = record.options.content_type});
      }
      break;
    case QueueOp::kCopy:
      if (!etag.empty()) metadata_.LearnedCopy(record.source, record.key, etag);
      break;
    case QueueOp::kSetMetadata:
      if (!etag.empty()) metadata_.LearnedMetadata(record.key, etag, record.options.metadata);
      break;
    case QueueOp::kDelete:
      metadata_.Forgotten(record.key);
      break;
  }
  if (const std::optional<std::string> path = path_of(record.key)) {
    metadata_.InvalidateWithAncestors(*path);
  }
}

}  // namespace strata
