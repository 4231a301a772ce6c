// Filesystem: the POSIX view of one bucket prefix, independent of FUSE so that tests drive it
// without a kernel. FuseAdapter translates kernel requests into these calls and Status into
// errno. Thread-safe: FUSE calls it from many threads at once.
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

#include "base/posix_file.h"
#include "base/thread_annotations.h"
#include "cache/object_version.h"
#include "cache/read_stream.h"
#include "cache/staging_area.h"
#include "cache/upload_queue.h"
#include "fs/inode_table.h"
#include "fs/metadata_cache.h"
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
};

// The process a request comes from: new files and directories belong to it.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

// An error with a POSIX errno of its own (EEXIST, ENOTEMPTY, ...), which the FUSE adapter
// returns as is. The kind is kInvalidArgument.
Status PosixError(int err, std::string message);
// The errno of a PosixError, else 0.
int PosixErrorNumber(const Status& status);

struct SetAttrRequest {
  std::optional<uint64_t> size{};
  std::optional<mode_t> mode{};
  std::optional<uid_t> uid{};
  std::optional<gid_t> gid{};
  std::optional<TimePoint> mtime{};
};

struct EntryReply {
  uint64_t ino = 0;
  struct stat attr {};
};

struct DirEntryView {
  std::string name;
  EntryType type = EntryType::kFile;
  EntryInfo info;
};

struct OpenReply {
  uint64_t handle = 0;
  bool keep_cache = false;  // the kernel may keep cached pages: same version as last open
};

class Filesystem {
 public:
  // Makes a reader of one object version for an open handle.
  using StreamFactory = std::function<std::unique_ptr<ReadStream>(const ObjectVersion&)>;
  // Extra lines for StatsText (cache and S3 counters), provided by the composition root.
  using StatsSource = std::function<std::string()>;

  // `metadata` and `store` must outlive *this.
  Filesystem(MetadataCache& metadata, ObjectStore& store, StreamFactory streams, StatsSource stats,
             FilesystemOptions options, WriteServices writes = {});
  ~Filesystem();

  // Makes the filesystem writable. REQUIRES: before any request is served (the queue's workers
  // run in the serving process, which may be a fork of the one that built the Filesystem).
  void EnableWrites(WriteServices writes) { writes_ = std::move(writes); }
  bool writable() const { return writes_.staging != nullptr && writes_.queue != nullptr; }

  // The entry `name` in directory `parent`; raises its lookup count (libfuse contract).
  Result<EntryReply> Lookup(uint64_t parent, const std::string& name);
  void Forget(uint64_t ino, uint64_t nlookup);
  Result<struct stat> GetAttr(uint64_t ino);

  // Directory handles hold a snapshot of the listing taken at opendir.
  Result<uint64_t> OpenDir(uint64_t ino);
  // Entries of the snapshot from index `offset` on ("." and ".." are left to the adapter).
  Result<std::vector<DirEntryView>> DirEntries(uint64_t handle, size_t offset);
  // For readdirplus: the entry's inode and attributes, raising its lookup count.
  EntryReply EntryForReaddir(uint64_t dir_handle, const DirEntryView& entry);
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

  // The queue's on_done: `record` took effect in S3. Forgets the stale metadata of its key and
  // remembers the attributes it stored (see MetadataCache::RememberAttributes).
  void OnUploaded(const QueueRecord& record);

  // One page of the upload queue for `strata queue`: a header line, then one line per entry
  // with a sequence number above `after`, as many as fit in `max_bytes` (at least one). An
  // empty page (the header alone) is the end.
  std::string QueueText(uint64_t after = 0, size_t max_bytes = kQueuePageBytes);
  static constexpr size_t kQueuePageBytes = 60 * 1024;  // under the 64 KiB xattr limit
  // Requeues dead letters; returns how many there were.
  Result<uint64_t> RetryQueue();

  // The target of a symlink (the object's body, as s3fs stores it).
  Result<std::string> ReadLink(uint64_t ino);

  struct statvfs StatFs();
  // Counters as "name value" lines, for `strata stats`.
  std::string StatsText();

  size_t inode_count() { return inodes_.size(); }

 private:
  struct DirHandle {
    std::string path;
    std::shared_ptr<const DirListing> listing;
    std::vector<const std::pair<const std::string, EntryInfo>*> order;
  };
  // A path being written: staged data and attributes shared by every handle of the path.
  struct OpenWrite {
    // Held shared by calls that use `staged`, exclusively by a commit (which detaches it).
    std::shared_mutex commit_mu;
    std::mutex mu;  // guards the fields below; held for Create of `staged`, not across I/O
    std::string path GUARDED_BY(mu);
    EntryInfo info GUARDED_BY(mu);  // type, mode, uid, gid, mtime; size when `staged` is null
    std::shared_ptr<StagedFile> staged GUARDED_BY(mu);
    // What was committed last, kept open to restage from without asking the queue or S3.
    std::shared_ptr<Fd> base GUARDED_BY(mu);
    bool dirty GUARDED_BY(mu) = false;     // changes not committed
    bool unlinked GUARDED_BY(mu) = false;  // its name is gone: nothing more is committed
    int writers GUARDED_BY(mu) = 0;        // handles open for writing
  };
  struct FileHandle {
    uint64_t ino = 0;
    std::string path;
    std::unique_ptr<ReadStream> stream;  // a clean object in S3
    SourceReader source;                 // a pending upload (see SourceOf)
    uint64_t source_size = 0;
    std::shared_ptr<OpenWrite> write;  // a file being written (read through its staging)
    bool writer = false;
    bool append = false;
  };
  // After a read found the object changed (kPreconditionFailed), forgets its metadata so that
  // the next open sees the new version instead of the one cached until the TTL.
  template <typename T>
  Result<T> ForgetIfChanged(const FileHandle& file, Result<T> result);

  struct stat ToStat(uint64_t ino, const EntryInfo& info) const;
  std::shared_ptr<FileHandle> FindFile(uint64_t handle);
  Result<EntryInfo> InfoOf(const InodeTable::Node& node);

  // What `path` is now: an open write, else the queue's pending state, else S3.
  Result<std::optional<EntryInfo>> Resolve(const std::string& path);
  // S3's listing of `dir` with the queue and open writes laid over it.
  // `check_self`: when S3 does not know `dir`, check that the queue makes it exist (else an
  // empty listing).
  Result<std::shared_ptr<const DirListing>> MergedListing(const std::string& dir,
                                                          bool check_self = true);
  Result<std::optional<EntryInfo>> InfoFromPending(const PendingState& pending);
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
  // Attributes of a new entry made by `caller`, modified now.
  static EntryInfo NewEntry(EntryType type, mode_t mode, Caller caller);
  // Reads an object open for reading elsewhere into the chunk cache before it is deleted, so
  // those handles can finish reading it (small objects only).
  void KeepReadable(const std::string& path);
  Result<std::string> ChildPath(uint64_t parent, const std::string& name);
  std::shared_ptr<OpenWrite> FindWrite(const std::string& path);
  // The open write of `path`, made from what the path holds now when there is none.
  Result<std::shared_ptr<OpenWrite>> GetOrMakeWrite(const std::string& path);
  // Its staged file, restaged from the committed content when it has none. REQUIRES: commit_mu
  // held (shared or exclusive).
  Result<std::shared_ptr<StagedFile>> Staged(OpenWrite& write);
  // Reads the current committed content of `path` (pending upload or S3) for staging.
  Result<SourceReader> SourceOf(const std::string& path, uint64_t* size);
  // Hands the file's changes to the queue (see the top). No-op when clean or unlinked. With
  // `await` and --sync-upload, waits for the upload too.
  Status Commit(OpenWrite& write, bool await = true);
  // The write's path as a key, with its attributes as s3fs headers.
  PutOptions PutOptionsFor(const EntryInfo& info) const;
  // Queues a put of `content` (a directory marker, a symlink) with `info`'s attributes; returns
  // its sequence number (for Await, once the name locks are released).
  Result<uint64_t> PutSmall(const std::string& key, const std::string& content,
                            const EntryInfo& info);
  Status Await(Result<uint64_t> sequence);
  // Forgets `write` when no handle uses it any more.
  void DropWriteIfIdle(const std::shared_ptr<OpenWrite>& write);
  void Changed(const std::string& path);
  // Queues the rename of every object under `from`; returns the last sequence number.
  // REQUIRES: `from` locked with its subtree.
  Result<uint64_t> RenameDirectory(const std::string& from, const std::string& to);
  // Reads through a handle without a stream: its open write, or a pending upload's data.
  Result<size_t> ReadLocal(FileHandle& file, uint64_t offset, std::span<char> out);
  // A writer handle closed: commits what is left once no writer remains.
  void ReleaseWriter(const std::shared_ptr<OpenWrite>& write);
  // REQUIRES: write.commit_mu held exclusively.
  Status CommitLocked(OpenWrite& write, bool await = true);
  MetadataCache& metadata_;
  ObjectStore& store_;
  StreamFactory streams_;
  StatsSource stats_;
  const FilesystemOptions options_;
  WriteServices writes_;  // set before serving; constant after
  InodeTable inodes_;
  const TimePoint mounted_at_ = std::chrono::system_clock::now();  // time of directories
  std::atomic<uint64_t> next_handle_{1};
  std::atomic<uint64_t> open_files_{0};

  // Lock order: mu_ is a leaf; never held across metadata or store calls.
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> dirs_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files_ GUARDED_BY(mu_);
  // The ETag each inode was last opened at, to let the kernel keep its page cache.
  std::unordered_map<uint64_t, std::string> last_open_etag_ GUARDED_BY(mu_);
  // Paths being written (OpenWrite::path), see the top.
  std::unordered_map<std::string, std::shared_ptr<OpenWrite>> open_writes_ GUARDED_BY(mu_);
  // Namespace changes (create, unlink, mkdir, rmdir, rename, symlink, a directory's attributes)
  // lock the names they decide on, so that changes of the same names do not interleave while
  // other names proceed. Held around the decision and the enqueue, never across a wait for an
  // upload; taken before commit_mu and mu_.
  PathLocks names_;
};

}  // namespace strata
