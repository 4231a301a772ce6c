#include "fs/filesystem.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "backends/s3_keys.h"
#include "fs/paths.h"

namespace strata {
namespace {

timespec ToTimespec(TimePoint t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(ns.count() % 1000000000);
  return ts;
}

}  // namespace

Filesystem::Filesystem(MetadataCache& metadata, StreamFactory streams, StatsSource stats,
                       FilesystemOptions options, WriteServices writes)
    : metadata_(metadata),
      streams_(std::move(streams)),
      stats_(std::move(stats)),
      options_(options) {
  EnableWrites(std::move(writes));
}

void Filesystem::EnableWrites(WriteServices writes) {
  writes_ = std::move(writes);
  writer_.reset();
  control_ = std::make_unique<ControlSurface>(
      metadata_, writable() ? writes_.queue : nullptr, writable() ? writes_.staging.get() : nullptr,
      [this] {
        return ControlSurface::CoreCounters{.inodes = inodes_.size(),
                                            .open_files = open_files_.load(),
                                            .files_being_written = open_writes_.size()};
      },
      stats_);
  view_ = std::make_unique<MergedView>(metadata_, writes_.queue, open_writes_, streams_);
  if (!writable()) {
    view_ = std::make_unique<MergedView>(metadata_, nullptr, open_writes_, streams_);
    return;
  }
  writer_ = std::make_unique<OpenWrites>(
      open_writes_, *view_, metadata_, *writes_.staging, *writes_.queue,
      AttributeDefaults{.uid = options_.uid, .gid = options_.gid, .umask = options_.umask},
      writes_.sync_upload, writes_.sync_timeout);
}

Filesystem::~Filesystem() = default;

struct stat Filesystem::ToStat(uint64_t ino, const EntryInfo& info) const {
  struct stat st {};
  st.st_ino = ino;
  const mode_t default_perms =
      (info.type == EntryType::kDirectory || info.type == EntryType::kSymlink ? 0777 : 0666) &
      ~options_.umask & 07777;
  st.st_mode = FileTypeBits(info.type) | info.mode.value_or(default_perms);
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(info.size);
  if (info.type == EntryType::kDirectory) {
    st.st_nlink = 2;
    st.st_size = options_.block_size;
  } else if (info.type == EntryType::kCharDevice || info.type == EntryType::kBlockDevice) {
    st.st_rdev = static_cast<dev_t>(info.rdev);
    st.st_size = 0;
  } else if (info.type == EntryType::kFifo || info.type == EntryType::kSocket) {
    st.st_size = 0;
  }
  st.st_uid = info.uid.value_or(options_.uid);
  st.st_gid = info.gid.value_or(options_.gid);
  st.st_blksize = options_.block_size;
  st.st_blocks = (st.st_size + 511) / 512;
  // Implicit directories have no time of their own: show when the mount started.
  const TimePoint mtime = info.mtime == TimePoint{} ? mounted_at_ : info.mtime;
  st.st_mtim = ToTimespec(mtime);
  st.st_atim = ToTimespec(info.atime == TimePoint{} ? mtime : info.atime);
  st.st_ctim = ToTimespec(info.ctime == TimePoint{} ? mtime : info.ctime);
  return st;
}

Result<EntryInfo> Filesystem::InfoOf(const InodeTable::Node& node) {
  if (node.path.empty()) {
    EntryInfo root;
    root.type = EntryType::kDirectory;
    return root;
  }
  Result<std::optional<EntryInfo>> info = view_->Resolve(node.path);
  if (!info.ok()) return info.status();
  if (!*info || (*info)->type != node.type) {
    return Status::NotFound("'" + node.path + "' no longer exists");
  }
  ApplyDirectoryTimes(node.path, **info);
  return **info;
}

Result<EntryReply> Filesystem::Lookup(uint64_t parent, const std::string& name) {
  std::optional<InodeTable::Node> node = inodes_.Get(parent);
  if (!node || node->type != EntryType::kDirectory) {
    return Status::NotFound("no directory inode " + std::to_string(parent));
  }
  const std::string path = JoinPath(node->path, name);
  if (name.size() > 255 || metadata_.KeyOf(path).size() > kMaxKeyBytes) {
    return Status::NameTooLong("name too long for an S3 key: " + path);
  }
  Result<std::optional<EntryInfo>> info = view_->Resolve(path);
  if (!info.ok()) return info.status();
  if (!*info) return Status::NotFound("no such entry '" + path + "'");
  ApplyDirectoryTimes(path, **info);
  const uint64_t ino = inodes_.Lookup(path, (*info)->type);
  return EntryReply{ino, ToStat(ino, **info)};
}

void Filesystem::Forget(uint64_t ino, uint64_t nlookup) { inodes_.Forget(ino, nlookup); }

Result<struct stat> Filesystem::GetAttr(uint64_t ino) {
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node) return Status::NotFound("unknown inode " + std::to_string(ino));
  Result<EntryInfo> info = InfoOf(*node);
  if (!info.ok() && info.status().IsNotFound()) {
    // Unlinked while open: the kernel still asks for the attributes of the open file.
    std::shared_ptr<OpenWrite> write;
    std::optional<EntryInfo> read_info;
    {
      MutexLock lock(mu_);
      for (const auto& [handle, file] : files_) {
        if (file->ino != ino) continue;
        if (file->write) write = file->write;
        if (file->info) read_info = file->info;
      }
    }
    if (!write && read_info) {
      struct stat st = ToStat(ino, *read_info);
      st.st_nlink = 0;
      return st;
    }
    if (write) {
      EntryInfo open_info;
      {
        MutexLock lock(write->mu);
        open_info = write->info;
        if (write->staged) open_info.size = write->staged->size();
      }
      struct stat st = ToStat(ino, open_info);
      st.st_nlink = 0;
      return st;
    }
  }
  if (!info.ok()) return info.status();
  struct stat st = ToStat(ino, *info);
  if (info->type == EntryType::kDirectory) {
    // "." and the parent's entry, and each subdirectory's "..": from the listing readdir
    // uses too (cached for the attribute TTL). Lookup and readdirplus answer 2, the count of
    // an empty directory, rather than list every directory they name.
    if (Result<std::shared_ptr<const DirListing>> listing = view_->List(node->path); listing.ok()) {
      st.st_nlink = 2;
      for (const auto& [name, entry] : (*listing)->entries) {
        if (entry.type == EntryType::kDirectory) ++st.st_nlink;
      }
    }
  }
  return st;
}

Result<uint64_t> Filesystem::OpenDir(uint64_t ino) {
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node || node->type != EntryType::kDirectory) {
    return Status::NotFound("no directory inode " + std::to_string(ino));
  }
  auto handle = std::make_shared<DirHandle>();
  handle->path = node->path;
  const uint64_t id = next_handle_++;
  MutexLock lock(mu_);
  dirs_[id] = std::move(handle);
  return id;
}

Result<std::vector<DirEntryView>> Filesystem::DirEntries(uint64_t handle, size_t offset,
                                                         size_t max) {
  std::shared_ptr<DirHandle> dir;
  std::shared_ptr<const DirSnapshot> snapshot;
  {
    MutexLock lock(mu_);
    auto it = dirs_.find(handle);
    if (it == dirs_.end()) return Status::InvalidArgument("unknown directory handle");
    dir = it->second;
    snapshot = dir->snapshot;
  }
  if (snapshot == nullptr) {
    Result<std::shared_ptr<const DirListing>> listing = view_->List(dir->path);
    if (!listing.ok()) return listing.status();
    auto taken = std::make_shared<DirSnapshot>();
    taken->listing = *listing;
    for (const auto& entry : taken->listing->entries) taken->order.push_back(&entry);
    MutexLock lock(mu_);
    if (dir->snapshot == nullptr) dir->snapshot = std::move(taken);  // else a racing read won
    snapshot = dir->snapshot;
  }
  std::vector<DirEntryView> out;
  const size_t end =
      offset + std::min(max, snapshot->order.size() - std::min(offset, snapshot->order.size()));
  for (size_t i = offset; i < end; ++i) {
    const auto& [name, info] = *snapshot->order[i];
    if (!snapshot->listing->unknown.contains(name)) {
      out.push_back(DirEntryView{name, info.type, info, true});
      continue;
    }
    std::optional<EntryInfo> learned = metadata_.FreshEntry(JoinPath(dir->path, name));
    if (learned && learned->etag == info.etag) {  // the same version, now known
      out.push_back(DirEntryView{name, learned->type, *learned, true});
    } else {
      out.push_back(DirEntryView{name, info.type, info, false});
    }
  }
  return out;
}

EntryReply Filesystem::EntryForReaddir(uint64_t dir_handle, const DirEntryView& entry) {
  std::string dir_path;
  {
    MutexLock lock(mu_);
    if (auto it = dirs_.find(dir_handle); it != dirs_.end()) dir_path = it->second->path;
  }
  const std::string path = JoinPath(dir_path, entry.name);
  EntryInfo info = entry.info;
  ApplyDirectoryTimes(path, info);
  const uint64_t ino = inodes_.Lookup(path, entry.type);
  return EntryReply{ino, ToStat(ino, info)};
}

uint64_t Filesystem::InodeHint(uint64_t dir_handle, const DirEntryView& entry) {
  std::string dir_path;
  {
    MutexLock lock(mu_);
    if (auto it = dirs_.find(dir_handle); it != dirs_.end()) dir_path = it->second->path;
  }
  const std::string path = JoinPath(dir_path, entry.name);
  if (std::optional<uint64_t> known = inodes_.Find(path)) return *known;
  return (uint64_t{1} << 63) | (std::hash<std::string>{}(path) >> 1);
}

void Filesystem::ReleaseDir(uint64_t handle) {
  MutexLock lock(mu_);
  dirs_.erase(handle);
}

Result<OpenReply> Filesystem::Open(uint64_t ino, int flags) {
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node) return Status::NotFound("unknown inode " + std::to_string(ino));
  if (node->type != EntryType::kFile) {
    return Status::InvalidArgument("'" + node->path + "' is not a regular file");
  }
  auto file = std::make_shared<FileHandle>();
  file->ino = ino;
  file->path = node->path;
  const bool writer = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  OpenReply reply{next_handle_++, false};
  if (writer) {
    STRATA_RETURN_IF_ERROR(CheckWritable());
    Result<std::shared_ptr<OpenWrite>> write = writer_->GetOrMake(node->path);
    if (!write.ok()) return write.status();
    OpenWrite& w = **write;
    {
      MutexLock lock(w.mu);
      ++w.writers;
      spdlog::debug("open '{}' for writing{}: {} writer(s)", w.path,
                    (flags & O_TRUNC) ? " with O_TRUNC" : "", w.writers);
    }
    if (flags & O_TRUNC) {
      std::shared_lock commit(w.commit_mu);
      Status truncated = [&]() -> Status {
        Result<std::shared_ptr<StagedFile>> staged = writer_->Staged(w);
        if (!staged.ok()) return staged.status();
        return (*staged)->Truncate(0);
      }();
      MutexLock lock(w.mu);
      if (!truncated.ok()) {
        --w.writers;
        lock.Unlock();
        open_writes_.EraseIfIdle(*write);
        return truncated;
      }
      w.dirty = true;
      w.info.mtime = w.info.ctime = std::chrono::system_clock::now();
    }
    file->write = *write;
    file->writer = true;
    file->append = (flags & O_APPEND) != 0;
  } else if (std::shared_ptr<OpenWrite> write = open_writes_.Find(node->path)) {
    file->write = std::move(write);  // being written here: read what is staged
  } else {
    // What fstat shows should the name go away while this handle is open.
    if (Result<EntryInfo> info = InfoOf(*node); info.ok()) file->info = std::move(*info);
    std::optional<ObjectVersion> version;
    if (writable()) {
      const PendingState pending = writes_.queue->Pending(metadata_.KeyOf(node->path));
      if (pending.kind == PendingState::Kind::kDeleted) {
        return Status::NotFound("'" + node->path + "' was deleted");
      }
      if (pending.kind != PendingState::Kind::kNone &&
          pending.kind != PendingState::Kind::kMetadata) {  // only attributes pending: S3's body
        // Not in S3 yet (or under another key): read what the queue will upload.
        uint64_t size = 0;
        Result<SourceReader> source = view_->SourceOf(node->path, &size);
        if (!source.ok()) return source.status();
        if (!*source) return Status::NotFound("'" + node->path + "' no longer exists");
        file->source = std::move(*source);
        file->source_size = size;
      }
    }
    if (!file->source && !version) {
      Result<std::optional<EntryInfo>> info = metadata_.Revalidate(node->path);
      if (!info.ok()) return info.status();
      if (!*info) return Status::NotFound("'" + node->path + "' no longer exists");
      version = ObjectVersion{metadata_.options().bucket, metadata_.KeyOf(node->path),
                              (*info)->etag, (*info)->size};
    }
    if (version) {
      file->stream = streams_(*version);
      MutexLock lock(mu_);
      std::string& last = last_open_etag_[ino];
      reply.keep_cache = !last.empty() && last == version->etag;
      last = version->etag;
    }
  }
  if (!file->stream) {
    MutexLock lock(mu_);
    last_open_etag_.erase(ino);
  }
  {
    MutexLock lock(mu_);
    files_[reply.handle] = std::move(file);
  }
  open_files_++;
  return reply;
}

std::shared_ptr<Filesystem::FileHandle> Filesystem::FindFile(uint64_t handle) {
  MutexLock lock(mu_);
  auto it = files_.find(handle);
  return it == files_.end() ? nullptr : it->second;
}

Result<size_t> Filesystem::Read(uint64_t handle, uint64_t offset, std::span<char> out) {
  std::shared_ptr<FileHandle> file = FindFile(handle);
  if (!file) return Status::InvalidArgument("unknown file handle");
  if (file->stream) return ForgetIfChanged(*file, file->stream->Read(offset, out));
  return ReadLocal(*file, offset, out);
}

template <typename T>
Result<T> Filesystem::ForgetIfChanged(const FileHandle& file, Result<T> result) {
  if (!result.ok() && result.status().kind() == ErrorKind::kPreconditionFailed) {
    metadata_.Invalidate(file.path);
  }
  return result;
}

Result<std::vector<ReadStream::Slice>> Filesystem::ReadSlices(uint64_t handle, uint64_t offset,
                                                              uint64_t size) {
  std::shared_ptr<FileHandle> file = FindFile(handle);
  if (!file) return Status::InvalidArgument("unknown file handle");
  if (file->stream) return ForgetIfChanged(*file, file->stream->ReadSlices(offset, size));
  auto buffer = std::make_shared<AlignedBuffer>(size);
  Result<size_t> got = ReadLocal(*file, offset, std::span<char>(buffer->data(), size));
  if (!got.ok()) return got.status();
  std::vector<ReadStream::Slice> slices;
  if (*got > 0) slices.push_back(ReadStream::Slice{buffer, 0, *got});
  return slices;
}

void Filesystem::Release(uint64_t handle) {
  std::shared_ptr<FileHandle> file;
  std::function<void()> unpin;
  {
    MutexLock lock(mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return;
    file = std::move(it->second);
    files_.erase(it);
    unpin = std::move(file->unpin);
  }
  open_files_--;
  if (unpin) unpin();
  if (file->writer) writer_->ReleaseWriter(file->write);
}

Result<std::string> Filesystem::ReadLink(uint64_t ino) {
  constexpr uint64_t kMaxTarget = 4096;  // PATH_MAX
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node || node->type != EntryType::kSymlink) {
    return Status::InvalidArgument("inode " + std::to_string(ino) + " is not a symlink");
  }
  std::string key = metadata_.KeyOf(node->path);
  if (writable()) {
    PendingState pending = writes_.queue->Pending(key);
    if (pending.kind == PendingState::Kind::kDeleted) {
      return Status::NotFound("'" + node->path + "' was deleted");
    }
    if (pending.kind == PendingState::Kind::kCopy) key = pending.copy_source;
    if (pending.kind == PendingState::Kind::kPut) {
      Result<std::optional<UploadQueue::PendingContent>> content = writes_.queue->OpenPending(key);
      if (!content.ok()) return content.status();
      if (*content) {
        std::string target(std::min<uint64_t>((*content)->size, kMaxTarget), '\0');
        Result<size_t> got = LocalSource((*content)->fd)(0, std::span<char>(target));
        if (!got.ok()) return got.status();
        target.resize(*got);
        return target;
      }
    }
  }
  // Through the chunk cache, like any file's data: the target is the object's body, read once
  // per version and then remembered in the AttrStore.
  std::optional<ObjectVersion> version;
  if (key == metadata_.KeyOf(node->path)) {
    Result<std::optional<EntryInfo>> info = view_->Resolve(node->path);
    if (!info.ok()) return info.status();
    if (!*info || (*info)->type != EntryType::kSymlink) {
      return Status::NotFound("'" + node->path + "' is no longer a symlink");
    }
    if (std::optional<std::string> known = metadata_.KnownSymlinkTarget(key, (*info)->etag)) {
      return *known;
    }
    if (!(*info)->etag.empty()) {
      version = ObjectVersion{metadata_.options().bucket, key, (*info)->etag, (*info)->size};
    }
  }
  if (!version) {
    Result<ObjectInfo> head = metadata_.HeadKey(key);
    if (!head.ok()) return head.status();
    version = ObjectVersion{metadata_.options().bucket, key, head->etag, head->size};
  }
  std::string target(std::min<uint64_t>(version->size, kMaxTarget), '\0');
  if (target.empty()) return target;
  Result<size_t> got = streams_(*version)->Read(0, std::span<char>(target));
  if (!got.ok()) return got.status();
  target.resize(*got);
  metadata_.LearnedSymlinkTarget(key, version->etag, target);
  return target;
}

struct statvfs Filesystem::StatFs() {
  // S3 has no capacity to report: a large, constant size that tools like df can show.
  struct statvfs st {};
  st.f_bsize = options_.block_size;
  st.f_frsize = options_.block_size;
  st.f_blocks = (uint64_t{1} << 50) / options_.block_size;  // 1 PiB
  st.f_bfree = st.f_blocks;
  st.f_bavail = st.f_blocks;
  st.f_files = uint64_t{1} << 32;
  st.f_ffree = st.f_files;
  st.f_favail = st.f_files;
  st.f_namemax = 255;
  return st;
}

}  // namespace strata
