#include "tests/support/memory_store.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <utility>

#include "backends/sigv4.h"

namespace strata {
namespace {

// The smallest string greater than every string starting with `prefix`, or nullopt when no
// such string exists (prefix empty or all 0xff bytes).
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

// Continuation tokens: 'k' + last key returned, or 'p' + last common prefix returned.
constexpr char kKeyToken = 'k';
constexpr char kPrefixToken = 'p';

std::string NewUploadId(std::mt19937_64& rng) {
  std::string raw;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    raw.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  return HexEncode(raw);
}

ObjectInfo ListingInfo(const ObjectInfo& full) {
  ObjectInfo info;
  info.key = full.key;
  info.size = full.size;
  info.etag = full.etag;
  info.last_modified = full.last_modified;
  return info;
}

}  // namespace

// ---- S3 rules ----

Status ValidatePartNumber(int part_number) {
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return Status::InvalidArgument("part number must be 1..10000, got " +
                                   std::to_string(part_number))
        .WithRemote(400, "InvalidArgument");
  }
  return Status::Ok();
}

std::string NormalizeContentType(std::string_view content_type) {
  return content_type.empty() ? std::string(kDefaultContentType) : std::string(content_type);
}

Metadata NormalizeMetadata(const Metadata& metadata) {
  Metadata out;
  for (const auto& [name, value] : metadata) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out[lower] = value;
  }
  return out;
}

std::string EtagOfBody(std::string_view body) { return Md5Hex(body); }

Status NoSuchKeyError(std::string_view key) {
  return Status::NotFound("no such key: " + std::string(key)).WithRemote(404, "NoSuchKey");
}

Status NoSuchUploadError(std::string_view upload_id) {
  return Status::NotFound("no such upload: " + std::string(upload_id))
      .WithRemote(404, "NoSuchUpload");
}

Status EtagMismatchError(std::string_view key) {
  return Status::PreconditionFailed("ETag of " + std::string(key) + " does not match")
      .WithRemote(412, "PreconditionFailed");
}

Status CheckWriteConditions(std::string_view key, const ObjectInfo* current,
                            const PutOptions& options) {
  if (options.if_none_match && current != nullptr) {
    return Status::PreconditionFailed(std::string(key) + " already exists")
        .WithRemote(412, "PreconditionFailed");
  }
  if (!options.if_match.empty()) {
    if (current == nullptr) return NoSuchKeyError(key);
    if (!EtagMatches(options.if_match, current->etag)) return EtagMismatchError(key);
  }
  return Status::Ok();
}

void SortUploads(std::vector<MultipartUpload>& uploads) {
  std::sort(uploads.begin(), uploads.end(), [](const auto& a, const auto& b) {
    return std::tie(a.key, a.initiated, a.upload_id) < std::tie(b.key, b.initiated, b.upload_id);
  });
}

Result<ResolvedRange> ResolveRange(uint64_t size, const std::optional<ByteRange>& range) {
  if (!range) return ResolvedRange{0, size};
  if (range->offset >= size) {
    return Status::InvalidArgument("range starts at " + std::to_string(range->offset) +
                                   ", object has " + std::to_string(size) + " bytes")
        .WithRemote(416, "InvalidRange");
  }
  if (range->length && *range->length == 0) {
    return Status::InvalidArgument("empty range").WithRemote(416, "InvalidRange");
  }
  uint64_t available = size - range->offset;
  uint64_t length = range->length ? std::min(*range->length, available) : available;
  return ResolvedRange{range->offset, length};
}

Status CheckCompleteParts(const std::vector<PartInfo>& requested,
                          const std::map<int, PartInfo>& uploaded, uint64_t min_part_size) {
  if (requested.empty()) {
    return Status::InvalidArgument("no parts to complete").WithRemote(400, "MalformedXML");
  }
  for (size_t i = 0; i < requested.size(); ++i) {
    const PartInfo& want = requested[i];
    if (i > 0 && want.part_number <= requested[i - 1].part_number) {
      return Status::InvalidArgument("part numbers not in ascending order")
          .WithRemote(400, "InvalidPartOrder");
    }
    auto it = uploaded.find(want.part_number);
    if (it == uploaded.end() || !EtagMatches(want.etag, it->second.etag)) {
      return Status::InvalidArgument("part " + std::to_string(want.part_number) +
                                     " was not uploaded with ETag " + want.etag)
          .WithRemote(400, "InvalidPart");
    }
    if (i + 1 < requested.size() && it->second.size < min_part_size) {
      return Status::InvalidArgument("part " + std::to_string(want.part_number) + " has " +
                                     std::to_string(it->second.size) +
                                     " bytes; all parts but the last need " +
                                     std::to_string(min_part_size))
          .WithRemote(400, "EntityTooSmall");
    }
  }
  return Status::Ok();
}

Result<ListPage> ListObjectsV2(const ListOptions& options, const IndexSeek& seek) {
  if (options.max_keys < 0) return Status::InvalidArgument("negative max_keys");
  const size_t max_keys = static_cast<size_t>(std::min(options.max_keys, kMaxListKeys));
  const std::string& prefix = options.prefix;
  const std::string& delimiter = options.delimiter;

  // `cursor` is the smallest key still to consider; nullopt once the keyspace is exhausted.
  std::optional<std::string> cursor = std::string();
  if (!options.continuation_token.empty()) {
    const std::string& token = options.continuation_token;
    std::string rest = token.substr(1);
    if (token[0] == kKeyToken) {
      cursor = rest + '\0';
    } else if (token[0] == kPrefixToken) {
      cursor = PrefixSuccessor(rest);
    } else {
      return Status::InvalidArgument("malformed continuation token")
          .WithRemote(400, "InvalidArgument");
    }
  } else if (!options.start_after.empty()) {
    cursor = options.start_after + '\0';
  }
  if (cursor && *cursor < prefix) cursor = prefix;

  ListPage page;
  if (max_keys == 0) return page;
  size_t count = 0;
  std::string last_token;
  while (cursor) {
    const ObjectInfo* entry = seek(*cursor);
    if (entry == nullptr || !std::string_view(entry->key).starts_with(prefix)) break;
    if (count == max_keys) {
      page.truncated = true;
      page.next_continuation_token = last_token;
      break;
    }
    ++count;
    size_t pos = delimiter.empty() ? std::string::npos : entry->key.find(delimiter, prefix.size());
    if (pos != std::string::npos) {
      std::string common = entry->key.substr(0, pos + delimiter.size());
      last_token = kPrefixToken + common;
      cursor = PrefixSuccessor(common);
      page.common_prefixes.push_back(std::move(common));
    } else {
      last_token = kKeyToken + entry->key;
      cursor = entry->key + '\0';
      page.objects.push_back(ListingInfo(*entry));
    }
  }
  return page;
}

// ---- MemoryStore ----

MemoryStore::MemoryStore() : MemoryStore(Options()) {}

MemoryStore::MemoryStore(Options options) : options_(options), rng_(std::random_device()()) {}

MemoryStore::Stats MemoryStore::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

std::string MemoryStore::Describe() const { return "memory store"; }

const ObjectInfo* MemoryStore::FindLocked(std::string_view key) const {
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : &it->second.info;
}

Result<ObjectInfo> MemoryStore::Head(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  ++stats_.head;
  auto it = objects_.find(key);
  if (it == objects_.end()) return NoSuchKeyError(key);
  return it->second.info;
}

Result<GetResult> MemoryStore::Get(std::string_view key, const GetOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  GetResult result;
  std::shared_ptr<const std::string> body;
  {
    MutexLock lock(mu_);
    ++stats_.get;
    auto it = objects_.find(key);
    if (it == objects_.end()) return NoSuchKeyError(key);
    if (!options.if_match.empty() && !EtagMatches(options.if_match, it->second.info.etag)) {
      return EtagMismatchError(key);
    }
    result.info = it->second.info;
    body = it->second.body;
  }
  Result<ResolvedRange> range = ResolveRange(body->size(), options.range);
  if (!range.ok()) return range.status();
  result.body = body->substr(range->offset, range->length);
  MutexLock lock(mu_);
  stats_.bytes_read += result.body.size();
  return result;
}

Result<PutResult> MemoryStore::Put(std::string_view key, std::string_view body,
                                   const PutOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  Object object;
  object.info.key = std::string(key);
  object.info.size = body.size();
  object.info.etag = EtagOfBody(body);
  object.info.content_type = NormalizeContentType(options.content_type);
  object.info.metadata = NormalizeMetadata(options.metadata);
  object.body = std::make_shared<const std::string>(body);
  PutResult result{object.info.etag};

  MutexLock lock(mu_);
  ++stats_.put;
  stats_.bytes_written += body.size();
  STRATA_RETURN_IF_ERROR(CheckWriteConditions(key, FindLocked(key), options));
  object.info.last_modified = std::chrono::system_clock::now();
  objects_.insert_or_assign(std::string(key), std::move(object));
  return result;
}

Result<std::string> MemoryStore::CreateMultipartUpload(std::string_view key,
                                                       const PutOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  ++stats_.create_multipart;
  std::string id = NewUploadId(rng_);
  Upload upload;
  upload.key = std::string(key);
  upload.options = options;
  upload.initiated = std::chrono::system_clock::now();
  uploads_.emplace(id, std::move(upload));
  return id;
}

Result<PartInfo> MemoryStore::UploadPart(std::string_view key, std::string_view upload_id,
                                         int part_number, std::string_view body) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  STRATA_RETURN_IF_ERROR(ValidatePartNumber(part_number));
  Part part;
  part.info = PartInfo{part_number, EtagOfBody(body), body.size()};
  part.body = std::make_shared<const std::string>(body);

  MutexLock lock(mu_);
  ++stats_.upload_part;
  stats_.bytes_written += body.size();
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
  PartInfo info = part.info;
  it->second.parts.insert_or_assign(part_number, std::move(part));
  return info;
}

Result<PutResult> MemoryStore::CompleteMultipartUpload(std::string_view key,
                                                       std::string_view upload_id,
                                                       const std::vector<PartInfo>& parts) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  std::vector<std::shared_ptr<const std::string>> bodies;
  PutOptions put_options;
  {
    MutexLock lock(mu_);
    ++stats_.complete_multipart;
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
    std::map<int, PartInfo> uploaded;
    for (const auto& [number, part] : it->second.parts) uploaded.emplace(number, part.info);
    STRATA_RETURN_IF_ERROR(CheckCompleteParts(parts, uploaded, options_.min_part_size));
    for (const PartInfo& part : parts) bodies.push_back(it->second.parts.at(part.part_number).body);
    put_options = it->second.options;
  }

  // Assemble without the lock: parts may be large.
  size_t total = 0;
  for (const auto& body : bodies) total += body->size();
  auto assembled = std::make_shared<std::string>();
  assembled->reserve(total);
  for (const auto& body : bodies) assembled->append(*body);

  Object object;
  object.info.key = std::string(key);
  object.info.size = assembled->size();
  object.info.etag = MultipartEtag(parts);
  object.info.content_type = NormalizeContentType(put_options.content_type);
  object.info.metadata = NormalizeMetadata(put_options.metadata);
  object.body = std::move(assembled);
  PutResult result{object.info.etag};

  MutexLock lock(mu_);
  // Completed or aborted by another caller while the body was assembled?
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) return NoSuchUploadError(upload_id);
  // A failed condition leaves the upload in progress, as on S3.
  STRATA_RETURN_IF_ERROR(CheckWriteConditions(key, FindLocked(key), put_options));
  uploads_.erase(it);
  object.info.last_modified = std::chrono::system_clock::now();
  objects_.insert_or_assign(std::string(key), std::move(object));
  return result;
}

Status MemoryStore::AbortMultipartUpload(std::string_view key, std::string_view upload_id) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  ++stats_.abort_multipart;
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
  uploads_.erase(it);
  return Status::Ok();
}

Result<std::vector<PartInfo>> MemoryStore::ListParts(std::string_view key,
                                                     std::string_view upload_id) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  ++stats_.list_parts;
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
  std::vector<PartInfo> parts;
  for (const auto& [number, part] : it->second.parts) parts.push_back(part.info);
  return parts;
}

Result<std::vector<MultipartUpload>> MemoryStore::ListMultipartUploads(std::string_view prefix) {
  std::vector<MultipartUpload> uploads;
  {
    MutexLock lock(mu_);
    ++stats_.list_multipart_uploads;
    for (const auto& [id, upload] : uploads_) {
      if (std::string_view(upload.key).starts_with(prefix)) {
        uploads.push_back(MultipartUpload{upload.key, id, upload.initiated});
      }
    }
  }
  SortUploads(uploads);
  return uploads;
}

Result<ListPage> MemoryStore::List(const ListOptions& options) {
  MutexLock lock(mu_);
  ++stats_.list;
  return ListObjectsV2(options, [this](std::string_view key) -> const ObjectInfo* {
    mu_.AssertHeld();  // ListObjectsV2 calls this before it returns, under `lock`
    auto it = objects_.lower_bound(key);
    return it == objects_.end() ? nullptr : &it->second.info;
  });
}

Result<PutResult> MemoryStore::Copy(std::string_view source_key, std::string_view dest_key,
                                    const CopyOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(source_key));
  STRATA_RETURN_IF_ERROR(ValidateKey(dest_key));
  if (source_key == dest_key && options.directive == MetadataDirective::kCopy) {
    return Status::InvalidArgument("copying an object to itself needs MetadataDirective::kReplace")
        .WithRemote(400, "InvalidRequest");
  }
  Object object;
  {
    MutexLock lock(mu_);
    ++stats_.copy;
    auto it = objects_.find(source_key);
    if (it == objects_.end()) return NoSuchKeyError(source_key);
    if (!options.if_match.empty() && !EtagMatches(options.if_match, it->second.info.etag)) {
      return EtagMismatchError(source_key);
    }
    object = it->second;
  }
  object.info.key = std::string(dest_key);
  // A server-side copy is a single-part write: its ETag is the MD5 of the body.
  object.info.etag = EtagOfBody(*object.body);
  if (options.directive == MetadataDirective::kReplace) {
    object.info.content_type = NormalizeContentType(options.content_type);
    object.info.metadata = NormalizeMetadata(options.metadata);
  }
  PutResult result{object.info.etag};
  MutexLock lock(mu_);
  object.info.last_modified = std::chrono::system_clock::now();
  objects_.insert_or_assign(std::string(dest_key), std::move(object));
  return result;
}

Status MemoryStore::Delete(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  ++stats_.del;
  auto it = objects_.find(key);
  if (it != objects_.end()) objects_.erase(it);
  return Status::Ok();
}

Result<std::vector<DeleteFailure>> MemoryStore::DeleteBatch(const std::vector<std::string>& keys) {
  if (keys.size() > kMaxDeleteBatch) {
    return Status::InvalidArgument("more than 1000 keys in one batch delete")
        .WithRemote(400, "MalformedXML");
  }
  std::vector<DeleteFailure> failures;
  MutexLock lock(mu_);
  ++stats_.delete_batch;
  for (const std::string& key : keys) {
    if (Status st = ValidateKey(key); !st.ok()) {
      failures.push_back(DeleteFailure{key, st});
      continue;
    }
    auto it = objects_.find(key);
    if (it != objects_.end()) objects_.erase(it);
  }
  return failures;
}

}  // namespace strata
