// Filesystem: the POSIX operations on one bucket prefix, independent of FUSE so that tests drive
// it without a kernel. FuseSession (fuse_adapter.h) translates kernel requests into these calls
// and Status into errno. Thread-safe: FUSE calls it from many threads at once. It composes:
//   MergedView (merged_view.h)        what the tree looks like: S3, queue and open writes;
//   OpenWrites (open_writes.h)        staging and committing files being written;
//   PathLocks (path_locks.h)          the names a namespace change decides on;
//   ControlSurface (control_surface.h) stats, queue listing and retry for the operator.
// It reaches S3 only through the MetadataCache and the read streams.
//
// Reads: attributes come from MetadataCache; file data from a ReadStream per open handle
// (memory tier, disk tier, then S3). An open handle reads the version (ETag) it opened: if the
// object changes meanwhile, reads fail instead of mixing bytes.
//
// Writes (when WriteServices has a staging area and a queue): a file open for writing is staged
// in a StagedFile shared by all handles of its path (an OpenWrite). flush (every close) and fsync
// commit it: the staged file is synced and handed to the UploadQueue, and only then does the
// call return; later writes restage it lazily from what was committed. Namespace operations
// (unlink, mkdir, rmdir, rename, symlink) are queued the same way. What the tree looks like is
// S3's listing with the queue's pending operations and the open writes laid over it
// (read-your-writes, also after a restart, since the queue is persistent). Attributes are
// stored in s3fs's headers (PosixMetadata).
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/mutex.h"
#include "base/posix_file.h"
#include "base/thread_annotations.h"
#include "cache/object_version.h"
#include "cache/read_stream.h"
#include "cache/staging_area.h"
#include "cache/upload_queue.h"
#include "fs/control_surface.h"
#include "fs/inode_table.h"
#include "fs/merged_view.h"
#include "fs/metadata_cache.h"
#include "fs/open_write.h"
#include "fs/open_writes.h"
#include "fs/path_locks.h"

namespace strata {

struct FilesystemOptions {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t umask = 0022;
  std::chrono::milliseconds attr_ttl{std::chrono::seconds(5)};
  uint32_t block_size = 4096;  // st_blksize and statfs
};

// What the upload side of a writable filesystem needs. Without `staging` and `queue` the
// filesystem is read-only: changes fail with EROFS.
struct WriteServices {
  std::shared_ptr<StagingArea> staging{};
  UploadQueue* queue = nullptr;  // must outlive the Filesystem
  // Synchronous mode: flush and fsync return once the object is in S3, not once it is queued.
  bool sync_upload = false;
  Clock::Duration sync_timeout = std::chrono::hours(1);
  // Keeps the disk cache from evicting the chunks of object `key` until the returned function
  // is called: the chunks read at unlink for readers still open. Null: no pinning.
  std::function<std::function<void()>(const std::string& key)> pin{};
};

// The process a request comes from: new files and directories belong to it.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct SetAttrRequest {
  std::optional<uint64_t> size{};
  std::optional<mode_t> mode{};
  std::optional<uid_t> uid{};
  std::optional<gid_t> gid{};
  std::optional<TimePoint> atime{};
  std::optional<TimePoint> mtime{};
  // Only the times change, to values the caller chose: ctime changes all the same, but a
  // change of times alone is not a content change.
  bool any() const { return size || mode || uid || gid || atime || mtime; }
};

struct EntryReply {
  uint64_t ino = 0;
  struct stat attr {};
};

struct DirEntryView {
  std::string name;
  EntryType type = EntryType::kFile;
  EntryInfo info;
  // False for an object version whose attributes are not known yet (see MetadataCache): its
  // type and mode may be wrong until a lookup HEADs it, so readdirplus leaves it to a lookup.
  bool attributes_known = true;
};

struct OpenReply {
  uint64_t handle = 0;
  bool keep_cache = false;  // the kernel may keep cached pages: same version as last open
};

class Filesystem {
 public:
  using StreamFactory = strata::StreamFactory;  // a reader of one object version
  // Extra lines for StatsText (cache and S3 counters), provided by the composition root.
  using StatsSource = ControlSurface::StatsSource;

  // `metadata` must outlive *this. fs/ reaches S3 only through it and `streams`.
  Filesystem(MetadataCache& metadata, StreamFactory streams, StatsSource stats,
             FilesystemOptions options, WriteServices writes = {});
  ~Filesystem();

  // Makes the filesystem writable. REQUIRES: before any request is served (the queue's workers
  // run in the serving process, which may be a fork of the one that built the Filesystem).
  void EnableWrites(WriteServices writes);
  bool writable() const { return writes_.staging != nullptr && writes_.queue != nullptr; }

  // The entry `name` in directory `parent`; raises its lookup count (libfuse contract).
  Result<EntryReply> Lookup(uint64_t parent, const std::string& name);
  void Forget(uint64_t ino, uint64_t nlookup);
  Result<struct stat> GetAttr(uint64_t ino);

  // Directory handles hold a snapshot of the listing taken at their first read, not at
  // opendir: opening a directory (the root, for a control ioctl) asks S3 nothing.
  Result<uint64_t> OpenDir(uint64_t ino);
  // At most `max` entries of the snapshot from index `offset` on ("." and ".." are left to the
  // adapter). An entry the listing did not know the attributes of is given with those a lookup
  // has learned since, when they are still fresh: readdirplus can then carry them.
  Result<std::vector<DirEntryView>> DirEntries(uint64_t handle, size_t offset,
                                               size_t max = SIZE_MAX);
  // For readdirplus: the entry's inode and attributes, raising its lookup count.
  EntryReply EntryForReaddir(uint64_t dir_handle, const DirEntryView& entry);
  // For a readdir entry given without attributes: its inode number if the kernel knows one,
  // else a stable stand-in (nonzero, above every real number) until a lookup assigns one.
  uint64_t InodeHint(uint64_t dir_handle, const DirEntryView& entry);
  void ReleaseDir(uint64_t handle);

  // `flags` as open(2) gives them: O_ACCMODE, O_TRUNC and O_APPEND matter.
  Result<OpenReply> Open(uint64_t ino, int flags = 0);
  Result<size_t> Read(uint64_t handle, uint64_t offset, std::span<char> out);
  // The same without copying: slices of cached chunks (see ReadStream::ReadSlices).
  Result<std::vector<ReadStream::Slice>> ReadSlices(uint64_t handle, uint64_t offset,
                                                    uint64_t size);
  // Commits a handle's unwritten changes if it is the last one open; errors are logged.
  void Release(uint64_t handle);

  // Writing (EROFS on a read-only filesystem).
  Result<std::pair<EntryReply, OpenReply>> Create(uint64_t parent, const std::string& name,
                                                  mode_t mode, int flags, Caller caller);
  Status Write(uint64_t handle, uint64_t offset, std::span<const char> data);
  // close(2) of one descriptor: commits the file's changes (see the top).
  Status Flush(uint64_t handle);
  Status Fsync(uint64_t handle);
  // chmod, chown, utimens, truncate; `handle` when the kernel names an open file (ftruncate).
  Result<struct stat> SetAttr(uint64_t ino, const SetAttrRequest& request,
                              std::optional<uint64_t> handle);
  Result<EntryReply> MkDir(uint64_t parent, const std::string& name, mode_t mode, Caller caller);
  Status Unlink(uint64_t parent, const std::string& name);
  Status RmDir(uint64_t parent, const std::string& name);
  // flags: RENAME_NOREPLACE is honoured; RENAME_EXCHANGE fails with EINVAL.
  Status Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                const std::string& new_name, unsigned flags);
  Result<EntryReply> Symlink(const std::string& target, uint64_t parent, const std::string& name,
                             Caller caller);
  // A FIFO, socket or device (`mode` carries the type): an empty object whose s3fs headers
  // carry the type and, for devices, `rdev`. Regular files go through Create.
  Result<EntryReply> MkNod(uint64_t parent, const std::string& name, mode_t mode, dev_t rdev,
                           Caller caller);

  // The queue's on_done: `record` took effect in S3, where the object written now has `etag`
  // (empty: none, or a metadata change not applied). Forgets the stale metadata of its key and
  // records what the object now is in the AttrStore (see MetadataCache::Learned).
  void OnUploaded(const QueueRecord& record, const std::string& etag);

  // Stats, queue listing and retry for the operator.
  ControlSurface& control() { return *control_; }

  // The target of a symlink (the object's body, as s3fs stores it).
  Result<std::string> ReadLink(uint64_t ino);

  struct statvfs StatFs();

  size_t inode_count() { return inodes_.size(); }

 private:
  struct DirSnapshot {
    std::shared_ptr<const DirListing> listing;
    std::vector<const std::pair<const std::string, EntryInfo>*> order;
  };
  struct DirHandle {
    std::string path;
    std::shared_ptr<const DirSnapshot> snapshot;  // null until the first read; set under mu_
  };
  struct FileHandle {
    uint64_t ino = 0;
    std::string path;
    std::unique_ptr<ReadStream> stream;  // a clean object in S3
    SourceReader source;                 // a pending upload (see SourceOf)
    uint64_t source_size = 0;
    std::shared_ptr<OpenWrite> write;  // a file being written (read through its staging)
    std::optional<EntryInfo> info;     // a reader's attributes at open (for fstat once unlinked)
    bool writer = false;
    bool append = false;
    // Set when the object was unlinked while this handle read it: releases the pin that keeps
    // its cached chunks (see KeepReadable). Called once, at release.
    std::function<void()> unpin;
  };
  // After a read found the object changed (kPreconditionFailed), forgets its metadata so that
  // the next open sees the new version instead of the one cached until the TTL.
  template <typename T>
  Result<T> ForgetIfChanged(const FileHandle& file, Result<T> result);

  struct stat ToStat(uint64_t ino, const EntryInfo& info) const;
  std::shared_ptr<FileHandle> FindFile(uint64_t handle);
  Result<EntryInfo> InfoOf(const InodeTable::Node& node);

  Status CheckWritable() const;
  // The target of a namespace change: `name` in `parent` and what is there now (nullopt:
  // nothing), decided under the locks of the name and its parent, which `guard` holds so that
  // it stays so until the change is queued.
  struct NamedEntry {
    std::string path;
    std::optional<EntryInfo> existing;
    PathLocks::Guard guard;
  };
  Result<NamedEntry> Target(uint64_t parent, const std::string& name);
  // Attributes of a new entry `path` made by `caller`, modified now. In a set-group-ID
  // directory it takes the directory's group (and a directory the set-group-ID bit), as on ext4.
  EntryInfo NewEntry(const std::string& path, EntryType type, mode_t mode, Caller caller);
  // A directory's contents changed now: its mtime and ctime show it (see dir_times_).
  void TouchDirectory(const std::string& dir);
  // The directory's times as this mount changed them, over what S3 holds.
  void ApplyDirectoryTimes(const std::string& dir, EntryInfo& info);
  // Reads an object open for reading elsewhere into the chunk cache before it is deleted, so
  // those handles can finish reading it (small objects only), and pins its chunks there until
  // the last of those handles is released.
  void KeepReadable(const std::string& path);
  Result<std::string> ChildPath(uint64_t parent, const std::string& name);
  void Changed(const std::string& path);
  // Queues the rename of every object under `from`; returns the last sequence number.
  // REQUIRES: `from` locked with its subtree.
  Result<uint64_t> RenameDirectory(const std::string& from, const std::string& to);
  // Reads through a handle without a stream: its open write, or a pending upload's data.
  Result<size_t> ReadLocal(FileHandle& file, uint64_t offset, std::span<char> out);
  MetadataCache& metadata_;
  StreamFactory streams_;
  StatsSource stats_;
  const FilesystemOptions options_;
  WriteServices writes_;  // set before serving; constant after
  InodeTable inodes_;
  const TimePoint mounted_at_ = std::chrono::system_clock::now();  // time of directories
  std::atomic<uint64_t> next_handle_{1};
  std::atomic<uint64_t> open_files_{0};

  // Lock order: names_ (PathLocks), then OpenWrite::commit_mu, then the OpenWriteTable's lock,
  // then OpenWrite::mu. mu_ is a leaf; never held across metadata or store calls.
  Mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> dirs_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files_ GUARDED_BY(mu_);
  // The ETag each inode was last opened at, to let the kernel keep its page cache.
  std::unordered_map<uint64_t, std::string> last_open_etag_ GUARDED_BY(mu_);
  // Directories whose entries this mount changed, and when: their mtime and ctime follow their
  // entries without a marker upload per change. Kept for the mount's life (bounded).
  struct DirTimes {
    TimePoint mtime{};
    TimePoint ctime{};
  };
  std::unordered_map<std::string, DirTimes> dir_times_ GUARDED_BY(mu_);
  // Paths being written, the merged view over them, and the machinery that commits them (null
  // on a read-only mount).
  OpenWriteTable open_writes_;
  std::unique_ptr<MergedView> view_;
  std::unique_ptr<OpenWrites> writer_;
  std::unique_ptr<ControlSurface> control_;
  // Namespace changes (create, unlink, mkdir, rmdir, rename, symlink, a directory's attributes)
  // lock the names they decide on, so that changes of the same names do not interleave while
  // other names proceed. Held around the decision and the enqueue, never across a wait for an
  // upload; taken before commit_mu and mu_.
  PathLocks names_;
};

}  // namespace strata
