// ObjectStore: one bucket of an S3-like object store, the only way the layers above reach
// remote data. Implementations: S3Store (libcurl + SigV4) and FaultyStore (wraps any store and
// injects failures); tests/support holds MemoryStore and LocalStore, small real stores for tests.
//
// Keys are raw bytes relative to the bucket (no leading slash, no percent-encoding). ETags are
// kept without the surrounding double quotes S3 puts on them. Every method is thread-safe: many
// threads may call one store at once. Errors come back as Status values with a kind callers
// branch on (see status.h); a missing key is ErrorKind::kNotFound.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace strata {

using TimePoint = std::chrono::system_clock::time_point;

// User metadata, names lower-case without the "x-amz-meta-" prefix ("mode" -> "33188").
using Metadata = std::map<std::string, std::string>;

struct ObjectInfo {
  std::string key{};
  uint64_t size = 0;
  std::string etag{};  // without quotes; multipart ETags end in "-N"
  TimePoint last_modified{};
  std::string content_type{};  // empty when unknown (listings do not carry it)
  Metadata metadata{};         // empty from listings; filled by Head and Get
};

// A byte range [offset, offset + length). length == nullopt means "to the end".
struct ByteRange {
  uint64_t offset = 0;
  std::optional<uint64_t> length{};
};

struct GetOptions {
  std::optional<ByteRange> range{};
  std::string if_match{};  // ETag the object must still have, or empty
};

struct GetResult {
  ObjectInfo info;  // size is the whole object's size, not the range's
  std::string body{};
};

struct GetIntoResult {
  ObjectInfo info{};   // size is the whole object's size, not the range's
  uint64_t bytes = 0;  // body bytes written to the caller's buffer
};

struct PutOptions {
  std::string content_type{};  // empty: binary/octet-stream
  Metadata metadata{};
  std::string if_match{};      // only replace this ETag (empty: unconditional)
  bool if_none_match = false;  // only create: fail with kPreconditionFailed if the key exists
};

struct PutResult {
  std::string etag{};
};

struct ListOptions {
  std::string prefix{};
  std::string delimiter{};           // usually "/" or empty for a flat listing
  std::string continuation_token{};  // from the previous page's next_continuation_token
  std::string start_after{};
  int max_keys = 1000;  // the server may return fewer; S3 caps it at 1000
};

struct ListPage {
  std::vector<ObjectInfo> objects{};           // sorted by key (bytewise)
  std::vector<std::string> common_prefixes{};  // each ends with the delimiter
  bool truncated = false;
  std::string next_continuation_token{};  // set when truncated
};

struct PartInfo {
  int part_number = 0;
  std::string etag{};
  uint64_t size = 0;
};

struct MultipartUpload {
  std::string key{};
  std::string upload_id{};
  TimePoint initiated{};
};

enum class MetadataDirective { kCopy, kReplace };

struct CopyOptions {
  MetadataDirective directive = MetadataDirective::kCopy;
  std::string content_type{};  // used with kReplace
  Metadata metadata{};         // used with kReplace
  std::string if_match{};      // source must still have this ETag
};

struct DeleteFailure {
  std::string key{};
  Status status;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // A short description for logs, e.g. "s3://bucket at http://127.0.0.1:7480".
  virtual std::string Describe() const = 0;

  virtual Result<ObjectInfo> Head(std::string_view key) = 0;

  // A range past the end of the object is kInvalidArgument. A range running past the end is cut
  // at the end of the object. The body is complete or the call fails (never silently short).
  virtual Result<GetResult> Get(std::string_view key, const GetOptions& options) = 0;

  // Like Get, but writes the body into `dest` instead of a new string, so a caller can reuse
  // its buffers (no page faults on fresh memory for every read). A body longer than `dest` fails
  // with kInvalidArgument. The default copies from Get; S3Store writes straight into `dest`.
  virtual Result<GetIntoResult> GetInto(std::string_view key, const GetOptions& options,
                                        std::span<char> dest);

  virtual Result<PutResult> Put(std::string_view key, std::string_view body,
                                const PutOptions& options) = 0;

  // Multipart upload. Parts are numbered from 1; all but the last must be at least 5 MiB on S3.
  virtual Result<std::string> CreateMultipartUpload(std::string_view key,
                                                    const PutOptions& options) = 0;
  virtual Result<PartInfo> UploadPart(std::string_view key, std::string_view upload_id,
                                      int part_number, std::string_view body) = 0;
  // `parts` in ascending part number order, each with the ETag UploadPart returned.
  virtual Result<PutResult> CompleteMultipartUpload(std::string_view key,
                                                    std::string_view upload_id,
                                                    const std::vector<PartInfo>& parts) = 0;
  virtual Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) = 0;
  // All parts uploaded so far (follows pagination).
  virtual Result<std::vector<PartInfo>> ListParts(std::string_view key,
                                                  std::string_view upload_id) = 0;
  // In-progress uploads whose key starts with `prefix` (follows pagination).
  virtual Result<std::vector<MultipartUpload>> ListMultipartUploads(std::string_view prefix) = 0;

  // One page of a ListObjectsV2 listing.
  virtual Result<ListPage> List(const ListOptions& options) = 0;

  virtual Result<PutResult> Copy(std::string_view source_key, std::string_view dest_key,
                                 const CopyOptions& options) = 0;

  // Deleting a key that does not exist succeeds, as on S3.
  virtual Status Delete(std::string_view key) = 0;

  // Deletes up to 1000 keys in one request. Returns the keys that could not be deleted; an
  // error Status only when the request as a whole failed.
  virtual Result<std::vector<DeleteFailure>> DeleteBatch(const std::vector<std::string>& keys) = 0;
};

}  // namespace strata
