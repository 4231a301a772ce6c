// MemoryStore: an ObjectStore that keeps every object of one bucket in process memory, with the
// S3 semantics the upper layers rely on: MD5 ETags ("-N" for multipart), conditional reads and
// writes, ranged reads, ListObjectsV2 paging with delimiters, copies with a metadata directive,
// multipart uploads with S3's part checks. Nothing survives the process. Thread-safe: every
// method may be called from any thread; one mutex guards all state and is never held while a
// body is hashed.
//
// A test double: it lives in the test-support library, never in the product. The free functions
// below the class are the S3 rules themselves (range resolution, ETags, part validation,
// ListObjectsV2 paging; key limits, part numbers and multipart ETags come from backends/s3_keys.h
// and backends/s3_multipart.h). LocalStore keeps the same kind of index and uses them too, so
// the two stores answer identically.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "backends/object_store.h"
#include "backends/s3_keys.h"
#include "backends/s3_multipart.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"

namespace strata {

class MemoryStore final : public ObjectStore {
 public:
  struct Options {
    // All parts of a multipart upload but the last must be at least this big (S3: 5 MiB).
    // Tests of upload logic may lower it to keep parts small.
    uint64_t min_part_size = 5 * 1024 * 1024;
  };

  // Calls per operation since construction, and body bytes moved.
  struct Stats {
    uint64_t head = 0;
    uint64_t get = 0;
    uint64_t put = 0;
    uint64_t create_multipart = 0;
    uint64_t upload_part = 0;
    uint64_t complete_multipart = 0;
    uint64_t abort_multipart = 0;
    uint64_t list_parts = 0;
    uint64_t list_multipart_uploads = 0;
    uint64_t list = 0;
    uint64_t copy = 0;
    uint64_t del = 0;
    uint64_t delete_batch = 0;
    uint64_t bytes_read = 0;     // body bytes returned by Get
    uint64_t bytes_written = 0;  // body bytes received by Put and UploadPart
  };

  MemoryStore();
  explicit MemoryStore(Options options);
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  Stats stats() const;

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
  struct Object {
    ObjectInfo info;  // complete: content type and metadata included
    std::shared_ptr<const std::string> body;
  };
  struct Part {
    PartInfo info;
    std::shared_ptr<const std::string> body;
  };
  struct Upload {
    std::string key;
    PutOptions options;
    TimePoint initiated;
    std::map<int, Part> parts;
  };

  // REQUIRES: mu_ held. The current object `key`, or nullptr.
  const ObjectInfo* FindLocked(std::string_view key) const REQUIRES(mu_);

  const Options options_;
  mutable Mutex mu_;
  std::map<std::string, Object, std::less<>> objects_ GUARDED_BY(mu_);
  std::map<std::string, Upload, std::less<>> uploads_ GUARDED_BY(mu_);  // by upload id
  std::mt19937_64 rng_ GUARDED_BY(mu_);                                 // upload ids
  Stats stats_ GUARDED_BY(mu_);
};

// ---- S3 rules shared by MemoryStore and LocalStore ----

// The content type S3 reports for objects stored without one.
inline constexpr std::string_view kDefaultContentType = "binary/octet-stream";
inline constexpr int kMaxListKeys = 1000;
inline constexpr size_t kMaxDeleteBatch = 1000;

// 1..10000, else kInvalidArgument.
Status ValidatePartNumber(int part_number);

// `content_type`, or kDefaultContentType when it is empty.
std::string NormalizeContentType(std::string_view content_type);

// `metadata` with lower-case names, as S3 stores them.
Metadata NormalizeMetadata(const Metadata& metadata);

// Hex MD5 of `body`: the ETag S3 gives a single-part object.
std::string EtagOfBody(std::string_view body);

// The errors S3 answers with: NoSuchKey (404), NoSuchUpload (404), PreconditionFailed (412).
Status NoSuchKeyError(std::string_view key);
Status NoSuchUploadError(std::string_view upload_id);
Status EtagMismatchError(std::string_view key);

// Whether a write of `key` with `options` may replace `current` (nullptr: no such object):
// if_none_match needs no object, if_match needs one with that ETag (kNotFound without one,
// kPreconditionFailed with another).
Status CheckWriteConditions(std::string_view key, const ObjectInfo* current,
                            const PutOptions& options);

// Orders uploads as ListMultipartUploads returns them: by key, then by initiation time.
void SortUploads(std::vector<MultipartUpload>& uploads);

// The part of an object of `size` bytes a Get with `range` returns: the whole object without a
// range; a range starting at or past the end (any range on an empty object) or of length 0 is
// kInvalidArgument (S3 answers 416); a range running past the end is cut at the end.
struct ResolvedRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};
Result<ResolvedRange> ResolveRange(uint64_t size, const std::optional<ByteRange>& range);

// Checks the part list of CompleteMultipartUpload against the uploaded parts as S3 does:
// non-empty, strictly ascending part numbers, each uploaded with that ETag, every part but the
// last at least `min_part_size` bytes. Any violation is kInvalidArgument.
Status CheckCompleteParts(const std::vector<PartInfo>& requested,
                          const std::map<int, PartInfo>& uploaded, uint64_t min_part_size);

// One ListObjectsV2 page over an index sorted bytewise. `seek(k)` returns the first object whose
// key is >= k, or nullptr; it is called only while ListObjectsV2 runs, so the caller may hold the
// lock protecting the index. Objects in the page carry key, size, ETag and last_modified only.
// Continuation tokens are opaque; they name the last key or common prefix returned.
using IndexSeek = std::function<const ObjectInfo*(std::string_view key)>;
Result<ListPage> ListObjectsV2(const ListOptions& options, const IndexSeek& seek);

}  // namespace strata
