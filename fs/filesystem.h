// Filesystem: the POSIX view of one bucket prefix, independent of FUSE so that tests drive it
// without a kernel. FuseAdapter translates kernel requests into these calls and Status into
// errno. Thread-safe: FUSE calls it from many threads at once.
//
// Read-only for now (the write path comes later). Attributes come from MetadataCache; file data
// from a ReadStream per open handle (memory tier, disk tier, then S3). An open handle reads the
// version (ETag) it opened: if the object changes meanwhile, reads fail instead of mixing bytes.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/thread_annotations.h"
#include "cache/object_version.h"
#include "cache/read_stream.h"
#include "fs/inode_table.h"
#include "fs/metadata_cache.h"

namespace strata {

struct FilesystemOptions {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t umask = 0022;
  std::chrono::milliseconds attr_ttl{std::chrono::seconds(5)};
  uint32_t block_size = 4096;  // st_blksize and statfs
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
             FilesystemOptions options);

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

  // REQUIRES: read-only access was asked for (the adapter refuses writes with EROFS).
  Result<OpenReply> Open(uint64_t ino);
  Result<size_t> Read(uint64_t handle, uint64_t offset, std::span<char> out);
  // The same without copying: slices of cached chunks (see ReadStream::ReadSlices).
  Result<std::vector<ReadStream::Slice>> ReadSlices(uint64_t handle, uint64_t offset,
                                                    uint64_t size);
  void Release(uint64_t handle);

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
  struct FileHandle {
    uint64_t ino = 0;
    std::string path;
    std::unique_ptr<ReadStream> stream;
  };
  // After a read found the object changed (kPreconditionFailed), forgets its metadata so that
  // the next open sees the new version instead of the one cached until the TTL.
  template <typename T>
  Result<T> ForgetIfChanged(const FileHandle& file, Result<T> result);

  struct stat ToStat(uint64_t ino, const EntryInfo& info) const;
  std::shared_ptr<FileHandle> FindFile(uint64_t handle);
  Result<EntryInfo> InfoOf(const InodeTable::Node& node);

  MetadataCache& metadata_;
  ObjectStore& store_;
  StreamFactory streams_;
  StatsSource stats_;
  const FilesystemOptions options_;
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
};

}  // namespace strata
