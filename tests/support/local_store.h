// LocalStore: an ObjectStore kept in a local directory, surviving process restarts, with the
// same S3 semantics as MemoryStore (it shares MemoryStore's rule functions). A test double for
// tests that need persistence; it lives in the test-support library, never in the product.
// Thread-safe: any method from any thread. One LocalStore per directory at a time (Open takes an
// exclusive flock on <root>/LOCK).
//
// Layout under root (directories 0700, files 0600):
//   objects/<h>.meta           the committed record of the object whose key hashes to <h>
//                              (XXH3-128 hex): key, data file name, size, ETag, mtime, content
//                              type, metadata; values percent-encoded so any byte survives.
//   objects/<h>.<rand>.data    the body named by that record; written once, never modified.
//   objects/*.tmp              records being written; removed at Open.
//   uploads/<id>/upload.meta   an in-progress multipart upload (key, content type, metadata).
//   uploads/<id>/part-NNNNN    its parts; their ETags are recomputed at Open.
// Keys never become paths, so "a" and "a/b" coexist and any byte may appear in a key.
//
// Durability: a write returns only after the body and the record are fsynced, the record is
// renamed over the previous one (the commit point: a reader sees the old object or the new one,
// never a mix) and the objects directory is fsynced. Bodies no record names (left by a crash
// between the two writes) are deleted at Open. An unreadable or inconsistent record is skipped
// with a warning and listed in load_errors(); its files are left for inspection.
//
// An in-memory index of all records is loaded at Open and serves Head and List. Lock order:
// commit_mu_ before mu_. commit_mu_ serializes the renames that commit or remove records, so
// conditional writes are atomic; mu_ guards the index and is never held across file I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backends/object_store.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"

namespace strata {

class LocalStore final : public ObjectStore {
 public:
  struct Options {
    // All parts of a multipart upload but the last must be at least this big (S3: 5 MiB).
    uint64_t min_part_size = 5 * 1024 * 1024;
  };

  // Opens the store under `root`, creating the directory if needed, and loads the index.
  static Result<std::unique_ptr<LocalStore>> Open(std::string root);
  static Result<std::unique_ptr<LocalStore>> Open(std::string root, Options options);

  ~LocalStore() override;
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  // What Open skipped: one line per unreadable record or upload, naming the file and the reason.
  const std::vector<std::string>& load_errors() const { return load_errors_; }

  std::string Describe() const override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<GetResult> Get(std::string_view key, const GetOptions& options) override;
  Result<PutResult> Put(std::string_view key, std::string_view body,
                        const PutOptions& options) override;
  Result<std::string> CreateMultipartUpload(std::string_view key,
                                            const PutOptions& options) override;
  Result<PartInfo> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                              std::string_view body) override;
  Result<PutResult> CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                            const std::vector<PartInfo>& parts) override;
  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) override;
  Result<std::vector<PartInfo>> ListParts(std::string_view key,
                                          std::string_view upload_id) override;
  Result<std::vector<MultipartUpload>> ListMultipartUploads(std::string_view prefix) override;
  Result<ListPage> List(const ListOptions& options) override;
  Result<PutResult> Copy(std::string_view source_key, std::string_view dest_key,
                         const CopyOptions& options) override;
  Status Delete(std::string_view key) override;
  Result<std::vector<DeleteFailure>> DeleteBatch(const std::vector<std::string>& keys) override;

 private:
  struct Entry {
    ObjectInfo info;        // complete: content type and metadata included
    std::string data_file;  // file name under objects/
  };
  struct Upload {
    std::string key;
    PutOptions options;
    TimePoint initiated;
    std::map<int, PartInfo> parts;
  };
  // A body written to objects/ but not yet named by a committed record.
  struct StagedObject {
    Entry entry;
    std::string meta_tmp;  // path of the fsynced record, ready to be renamed into place
  };

  LocalStore(std::string root, Options options, int lock_fd);

  Status Load();
  // Loads the records into index_; collects the uploads that committed records name.
  Status LoadObjects(std::set<std::string>* completed_uploads);
  // Loads in-progress uploads, removing those that completed or were aborted before a crash.
  Status LoadUploads(const std::set<std::string>& completed_uploads);

  std::string ObjectsDir() const;
  std::string UploadDir(std::string_view upload_id) const;
  std::string RandomSuffix();

  // Writes `entry`'s record next to its (already durable) data file and fsyncs it.
  Result<StagedObject> StageRecord(Entry entry, std::string_view completed_upload);
  // Writes a body fed by `write_body` to a new data file, fsyncs it and stages its record.
  Result<StagedObject> StageObject(std::string_view key, uint64_t size, std::string etag,
                                   const PutOptions& options,
                                   const std::function<Status(int fd)>& write_body,
                                   std::string_view completed_upload);
  // Makes `staged` the current object unless `options`' conditions fail; when `upload_id` is
  // non-empty the upload must still exist and is removed in the same step. Cleans up on failure.
  Result<PutResult> Commit(StagedObject staged, const PutOptions& options,
                           std::string_view upload_id);
  void DiscardStaged(const StagedObject& staged);

  // REQUIRES: mu_ held. The current object `key`, or nullptr.
  const ObjectInfo* FindLocked(std::string_view key) const REQUIRES(mu_);
  // Removes the record of `key`; returns its data file to remove once the removal is durable,
  // or "" when there was no such key.
  Result<std::string> DeleteLocked(std::string_view key) REQUIRES(commit_mu_);
  // Reads [offset, offset + length) of the current object `key`, retrying when a concurrent
  // overwrite removes the data file between the index lookup and the open.
  Result<GetResult> Read(std::string_view key, const GetOptions& options);

  const std::string root_;
  const Options options_;
  const int lock_fd_;
  std::vector<std::string> load_errors_;  // written only during Open

  Mutex commit_mu_;  // lock order: commit_mu_, then mu_
  mutable Mutex mu_;
  std::map<std::string, Entry, std::less<>> index_ GUARDED_BY(mu_);
  std::map<std::string, Upload, std::less<>> uploads_ GUARDED_BY(mu_);  // by upload id
  std::mt19937_64 rng_ GUARDED_BY(mu_);
};

}  // namespace strata
