#include "fs/filesystem.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "fs/paths.h"

namespace strata {
namespace {

constexpr size_t kMaxKeyBytes = 1024;  // S3's limit on a key

timespec ToTimespec(TimePoint t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(ns.count() % 1000000000);
  return ts;
}

}  // namespace

Status PosixError(int err, std::string message) {
  return Status::InvalidArgument(std::move(message)).WithRemote(0, "errno:" + std::to_string(err));
}

int PosixErrorNumber(const Status& status) {
  if (!status.code().starts_with("errno:")) return 0;
  return std::atoi(status.code().c_str() + 6);
}

Filesystem::Filesystem(MetadataCache& metadata, ObjectStore& store, StreamFactory streams,
                       StatsSource stats, FilesystemOptions options, WriteServices writes)
    : metadata_(metadata),
      store_(store),
      streams_(std::move(streams)),
      stats_(std::move(stats)),
      options_(options),
      writes_(std::move(writes)) {}

Filesystem::~Filesystem() = default;

struct stat Filesystem::ToStat(uint64_t ino, const EntryInfo& info) const {
  struct stat st {};
  st.st_ino = ino;
  const mode_t default_perms =
      (info.type == EntryType::kFile ? 0666 : 0777) & ~options_.umask & 07777;
  const mode_t perms = info.mode.value_or(default_perms);
  switch (info.type) {
    case EntryType::kDirectory:
      st.st_mode = S_IFDIR | perms;
      st.st_nlink = 2;
      st.st_size = options_.block_size;
      break;
    case EntryType::kSymlink:
      st.st_mode = S_IFLNK | perms;
      st.st_nlink = 1;
      st.st_size = static_cast<off_t>(info.size);
      break;
    case EntryType::kFile:
      st.st_mode = S_IFREG | perms;
      st.st_nlink = 1;
      st.st_size = static_cast<off_t>(info.size);
      break;
  }
  st.st_uid = info.uid.value_or(options_.uid);
  st.st_gid = info.gid.value_or(options_.gid);
  st.st_blksize = options_.block_size;
  st.st_blocks = (st.st_size + 511) / 512;
  // Implicit directories have no time of their own: show when the mount started.
  const bool no_time = info.mtime == TimePoint{};
  st.st_mtim = st.st_ctim = st.st_atim = ToTimespec(no_time ? mounted_at_ : info.mtime);
  return st;
}

Result<EntryInfo> Filesystem::InfoOf(const InodeTable::Node& node) {
  if (node.path.empty()) {
    EntryInfo root;
    root.type = EntryType::kDirectory;
    return root;
  }
  Result<std::optional<EntryInfo>> info = Resolve(node.path);
  if (!info.ok()) return info.status();
  if (!*info || (*info)->type != node.type) {
    return Status::NotFound("'" + node.path + "' no longer exists");
  }
  return **info;
}

Result<EntryReply> Filesystem::Lookup(uint64_t parent, const std::string& name) {
  std::optional<InodeTable::Node> node = inodes_.Get(parent);
  if (!node || node->type != EntryType::kDirectory) {
    return Status::NotFound("no directory inode " + std::to_string(parent));
  }
  const std::string path = JoinPath(node->path, name);
  if (name.size() > 255 || metadata_.KeyOf(path).size() > kMaxKeyBytes) {
    return Status::InvalidArgument("name too long for an S3 key: " + path)
        .WithRemote(0, "NameTooLong");
  }
  Result<std::optional<EntryInfo>> info = Resolve(path);
  if (!info.ok()) return info.status();
  if (!*info) return Status::NotFound("no such entry '" + path + "'");
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
    {
      std::lock_guard lock(mu_);
      for (const auto& [handle, file] : files_) {
        if (file->ino == ino && file->write) write = file->write;
      }
    }
    if (write) {
      EntryInfo open_info;
      {
        std::lock_guard lock(write->mu);
        open_info = write->info;
        if (write->staged) open_info.size = write->staged->size();
      }
      struct stat st = ToStat(ino, open_info);
      st.st_nlink = 0;
      return st;
    }
  }
  if (!info.ok()) return info.status();
  return ToStat(ino, *info);
}

Result<uint64_t> Filesystem::OpenDir(uint64_t ino) {
  std::optional<InodeTable::Node> node = inodes_.Get(ino);
  if (!node || node->type != EntryType::kDirectory) {
    return Status::NotFound("no directory inode " + std::to_string(ino));
  }
  Result<std::shared_ptr<const DirListing>> listing = MergedListing(node->path);
  if (!listing.ok()) return listing.status();
  auto handle = std::make_shared<DirHandle>();
  handle->path = node->path;
  handle->listing = *listing;
  for (const auto& entry : handle->listing->entries) handle->order.push_back(&entry);
  const uint64_t id = next_handle_++;
  std::lock_guard lock(mu_);
  dirs_[id] = std::move(handle);
  return id;
}

Result<std::vector<DirEntryView>> Filesystem::DirEntries(uint64_t handle, size_t offset) {
  std::shared_ptr<DirHandle> dir;
  {
    std::lock_guard lock(mu_);
    auto it = dirs_.find(handle);
    if (it == dirs_.end()) return Status::InvalidArgument("unknown directory handle");
    dir = it->second;
  }
  std::vector<DirEntryView> out;
  for (size_t i = offset; i < dir->order.size(); ++i) {
    const auto& [name, info] = *dir->order[i];
    out.push_back(DirEntryView{name, info.type, info});
  }
  return out;
}

EntryReply Filesystem::EntryForReaddir(uint64_t dir_handle, const DirEntryView& entry) {
  std::string dir_path;
  {
    std::lock_guard lock(mu_);
    if (auto it = dirs_.find(dir_handle); it != dirs_.end()) dir_path = it->second->path;
  }
  const uint64_t ino = inodes_.Lookup(JoinPath(dir_path, entry.name), entry.type);
  return EntryReply{ino, ToStat(ino, entry.info)};
}

void Filesystem::ReleaseDir(uint64_t handle) {
  std::lock_guard lock(mu_);
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
    Result<std::shared_ptr<OpenWrite>> write = GetOrMakeWrite(node->path);
    if (!write.ok()) return write.status();
    OpenWrite& w = **write;
    {
      std::lock_guard lock(w.mu);
      ++w.writers;
      spdlog::debug("open '{}' for writing{}: {} writer(s)", w.path,
                    (flags & O_TRUNC) ? " with O_TRUNC" : "", w.writers);
    }
    if (flags & O_TRUNC) {
      std::shared_lock commit(w.commit_mu);
      Status truncated = [&]() -> Status {
        Result<std::shared_ptr<StagedFile>> staged = Staged(w);
        if (!staged.ok()) return staged.status();
        return (*staged)->Truncate(0);
      }();
      std::unique_lock lock(w.mu);
      if (!truncated.ok()) {
        --w.writers;
        lock.unlock();
        DropWriteIfIdle(*write);
        return truncated;
      }
      w.dirty = true;
      w.info.mtime = std::chrono::system_clock::now();
    }
    file->write = *write;
    file->writer = true;
    file->append = (flags & O_APPEND) != 0;
  } else if (std::shared_ptr<OpenWrite> write = FindWrite(node->path)) {
    file->write = std::move(write);  // being written here: read what is staged
  } else {
    std::optional<ObjectVersion> version;
    if (writable()) {
      const PendingState pending = writes_.queue->Pending(metadata_.KeyOf(node->path));
      if (pending.kind == PendingState::Kind::kDeleted) {
        return Status::NotFound("'" + node->path + "' was deleted");
      }
      if (pending.kind != PendingState::Kind::kNone) {
        // Not in S3 yet (or under another key): read what the queue will upload.
        uint64_t size = 0;
        Result<SourceReader> source = SourceOf(node->path, &size);
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
      std::lock_guard lock(mu_);
      std::string& last = last_open_etag_[ino];
      reply.keep_cache = !last.empty() && last == version->etag;
      last = version->etag;
    }
  }
  if (!file->stream) {
    std::lock_guard lock(mu_);
    last_open_etag_.erase(ino);
  }
  {
    std::lock_guard lock(mu_);
    files_[reply.handle] = std::move(file);
  }
  open_files_++;
  return reply;
}

std::shared_ptr<Filesystem::FileHandle> Filesystem::FindFile(uint64_t handle) {
  std::lock_guard lock(mu_);
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
  auto buffer = std::make_shared<std::string>(size, '\0');
  Result<size_t> got = ReadLocal(*file, offset, std::span<char>(buffer->data(), size));
  if (!got.ok()) return got.status();
  std::vector<ReadStream::Slice> slices;
  if (*got > 0) slices.push_back(ReadStream::Slice{buffer, 0, *got});
  return slices;
}

void Filesystem::Release(uint64_t handle) {
  std::shared_ptr<FileHandle> file;
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return;
    file = std::move(it->second);
    files_.erase(it);
  }
  open_files_--;
  if (file->writer) ReleaseWriter(file->write);
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
      const int fd = ::open(pending.put.staged_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        Fd file(fd);
        std::string target(std::min<uint64_t>(pending.put.size, kMaxTarget), '\0');
        const ssize_t n = ::pread(fd, target.data(), target.size(), 0);
        if (n < 0) return ErrnoStatus(errno, "read " + pending.put.staged_path);
        target.resize(static_cast<size_t>(n));
        return target;
      }
    }
  }
  Result<GetResult> got = store_.Get(key, GetOptions{.range = ByteRange{0, kMaxTarget}});
  if (!got.ok()) return got.status();
  return std::move(got->body);
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

std::string Filesystem::StatsText() {
  const MetadataCounters meta = metadata_.counters();
  std::string out;
  out += "inodes " + std::to_string(inodes_.size()) + "\n";
  out += "open_files " + std::to_string(open_files_.load()) + "\n";
  out += "metadata_list_requests " + std::to_string(meta.list_requests) + "\n";
  out += "metadata_head_requests " + std::to_string(meta.head_requests) + "\n";
  if (writable()) {
    const UploadQueueStats queue = writes_.queue->stats();
    out += "queue_depth " + std::to_string(queue.depth) + "\n";
    out += "queue_dead_letters " + std::to_string(queue.dead_letters) + "\n";
    out += "queue_staged_bytes " + std::to_string(queue.staged_bytes) + "\n";
    out += "queue_bytes_uploaded " + std::to_string(queue.bytes_uploaded) + "\n";
    out += "queue_uploads_done " + std::to_string(queue.uploads_done) + "\n";
    out += "queue_retries " + std::to_string(queue.retries) + "\n";
    out += "queue_backoff " + std::to_string(queue.backoff) + "\n";
    out += "queue_stuck " + std::to_string(queue.stuck) + "\n";
    out += "queue_dropped " + std::to_string(queue.dropped) + "\n";
    out += "staging_bytes " + std::to_string(writes_.staging->used_bytes()) + "\n";
    std::lock_guard lock(mu_);
    out += "files_being_written " + std::to_string(open_writes_.size()) + "\n";
  }
  if (stats_) out += stats_();
  return out;
}

}  // namespace strata
