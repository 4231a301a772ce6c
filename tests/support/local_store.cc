#include "tests/support/local_store.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "backends/sigv4.h"
#include "base/posix_file.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kObjectMagic = "strata-local-object 1";
constexpr std::string_view kUploadMagic = "strata-local-upload 1";
constexpr std::string_view kUploadRecord = "upload.meta";
constexpr std::string_view kAbortedSuffix = ".aborted";
constexpr std::string_view kTmpSuffix = ".tmp";
constexpr size_t kCopyChunk = 1 << 20;
// A record holds a key (at most 1 KiB) and metadata (S3 allows 2 KiB), percent-encoded.
constexpr uint64_t kMaxRecordBytes = 1 << 20;
constexpr uint64_t kMaxPartBytes = 5ull << 30;  // S3's limit

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Reads exactly `length` bytes at `offset`; a file shorter than that is corrupt.
Status PreadAll(int fd, uint64_t offset, uint64_t length, const std::string& path,
                std::string* out) {
  out->resize(length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out->data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read " + path);
    }
    if (n == 0) return Status::Corrupt(path + " is shorter than its record says");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Creates `path` (which must not exist), writes `write_body` into it and fsyncs it. On failure
// the file is removed.
Status WriteFileDurably(const std::string& path, const std::function<Status(int)>& write_body) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return ErrnoStatus(errno, "create " + path);
  Status st = write_body(fd.get());
  if (st.ok() && ::fsync(fd.get()) != 0) st = ErrnoStatus(errno, "fsync " + path);
  if (st.ok()) st = fd.Close(path);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

Status WriteFileDurably(const std::string& path, std::string_view data) {
  return WriteFileDurably(path, [&](int fd) { return WriteAll(fd, data, path); });
}

Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir " + dir);
  }
  return Status::Ok();
}

// Reads a whole file of at most `max_size` bytes (a larger one is kCorrupt).
Result<std::string> ReadWholeFile(const std::string& path, uint64_t max_size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return Status::Corrupt(path + " has " + std::to_string(st.st_size) + " bytes, more than " +
                           std::to_string(max_size));
  }
  std::string data;
  STRATA_RETURN_IF_ERROR(PreadAll(fd.get(), 0, static_cast<uint64_t>(st.st_size), path, &data));
  return data;
}

void RemoveFile(const std::string& path, std::string_view why) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    IgnoreError(ErrnoStatus(errno, "unlink " + path), why);
  }
}

std::string KeyHash(std::string_view key) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits(key.data(), key.size()));
  return HexEncode(
      std::string_view(reinterpret_cast<const char*>(canonical.digest), sizeof canonical.digest));
}

std::string PartFileName(int part_number) {
  char name[32];
  std::snprintf(name, sizeof name, "part-%05d", part_number);
  return name;
}

// ---- records: "field value value..." lines, values percent-encoded ----

bool IsSafeByte(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/';
}

std::string PercentEncode(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    if (IsSafeByte(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out.push_back(encoded[i]);
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    int hi = hex(encoded[i + 1]);
    int lo = hex(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

class RecordWriter {
 public:
  explicit RecordWriter(std::string_view magic) : text_(magic) { text_ += '\n'; }
  RecordWriter& Add(std::string_view field, std::string_view value) {
    text_.append(field).append(" ").append(PercentEncode(value)).append("\n");
    return *this;
  }
  RecordWriter& Add(std::string_view field, std::string_view v1, std::string_view v2) {
    text_.append(field).append(" ").append(PercentEncode(v1)).append(" ");
    text_.append(PercentEncode(v2)).append("\n");
    return *this;
  }
  std::string Finish() { return text_ + "end\n"; }

 private:
  std::string text_;
};

// A parsed record: fields in file order, values decoded.
using Record = std::vector<std::pair<std::string, std::vector<std::string>>>;

Result<Record> ParseRecord(std::string_view text, std::string_view magic) {
  Record record;
  bool first = true;
  bool ended = false;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return Status::Corrupt("last line is unterminated");
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    if (ended) return Status::Corrupt("data after the end line");
    if (first) {
      if (line != magic) return Status::Corrupt("not a " + std::string(magic) + " record");
      first = false;
      continue;
    }
    if (line == "end") {
      ended = true;
      continue;
    }
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t space = line.find(' ', start);
      std::string_view token = line.substr(
          start, space == std::string_view::npos ? std::string_view::npos : space - start);
      std::optional<std::string> decoded = PercentDecode(token);
      if (!decoded) return Status::Corrupt("bad percent-encoding in '" + std::string(line) + "'");
      parts.push_back(std::move(*decoded));
      if (space == std::string_view::npos) break;
      start = space + 1;
    }
    std::string field = std::move(parts.front());
    parts.erase(parts.begin());
    record.emplace_back(std::move(field), std::move(parts));
  }
  if (first) return Status::Corrupt("empty file");
  if (!ended) return Status::Corrupt("no end line (truncated?)");
  return record;
}

// Reads the single-valued fields and the "meta" pairs of a record.
struct RecordFields {
  std::map<std::string, std::string> single;
  Metadata metadata;
};

Result<RecordFields> SplitFields(const Record& record) {
  RecordFields fields;
  for (const auto& [field, values] : record) {
    if (field == "meta") {
      if (values.size() != 2) return Status::Corrupt("meta line needs a name and a value");
      fields.metadata[values[0]] = values[1];
    } else {
      if (values.size() != 1) return Status::Corrupt("field " + field + " needs one value");
      if (!fields.single.emplace(field, values[0]).second) {
        return Status::Corrupt("field " + field + " repeated");
      }
    }
  }
  return fields;
}

Result<std::string> Required(const RecordFields& fields, const std::string& name) {
  auto it = fields.single.find(name);
  if (it == fields.single.end()) return Status::Corrupt("missing field " + name);
  return it->second;
}

Result<int64_t> RequiredNumber(const RecordFields& fields, const std::string& name) {
  Result<std::string> text = Required(fields, name);
  if (!text.ok()) return text.status();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < 0) {
    return Status::Corrupt("field " + name + " is not a number");
  }
  return value;
}

int64_t ToNanos(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint FromNanos(int64_t nanos) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(nanos)));
}

}  // namespace

// ---- opening and loading ----

Result<std::unique_ptr<LocalStore>> LocalStore::Open(std::string root) {
  return Open(std::move(root), Options());
}

Result<std::unique_ptr<LocalStore>> LocalStore::Open(std::string root, Options options) {
  if (root.empty()) return Status::InvalidArgument("LocalStore needs a root directory");
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  STRATA_RETURN_IF_ERROR(MakeDir(root));
  STRATA_RETURN_IF_ERROR(MakeDir(root + "/objects"));
  STRATA_RETURN_IF_ERROR(MakeDir(root + "/uploads"));
  std::string lock_path = root + "/LOCK";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return ErrnoStatus(errno, "open " + lock_path);
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd);
    if (err == EWOULDBLOCK) return Status::Io(root + " is already open by another LocalStore");
    return ErrnoStatus(err, "flock " + lock_path);
  }
  std::unique_ptr<LocalStore> store(new LocalStore(std::move(root), options, lock_fd));
  STRATA_RETURN_IF_ERROR(store->Load());
  return store;
}

LocalStore::LocalStore(std::string root, Options options, int lock_fd)
    : root_(std::move(root)), options_(options), lock_fd_(lock_fd), rng_(std::random_device()()) {}

LocalStore::~LocalStore() { ::close(lock_fd_); }

Status LocalStore::Load() {
  std::set<std::string> completed_uploads;
  STRATA_RETURN_IF_ERROR(LoadObjects(&completed_uploads));
  return LoadUploads(completed_uploads);
}

Status LocalStore::LoadObjects(std::set<std::string>* completed_uploads) {
  const std::string dir = ObjectsDir();
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return Status::Io("list " + dir + ": " + ec.message());

  std::map<std::string, uint64_t> data_sizes;  // data file name -> size
  for (const std::string& name : names) {
    std::string path = dir + "/" + name;
    if (name.ends_with(kTmpSuffix)) {
      RemoveFile(path, "record left half-written by a crash");
    } else if (name.ends_with(".data")) {
      struct stat st;
      if (::stat(path.c_str(), &st) == 0) data_sizes[name] = static_cast<uint64_t>(st.st_size);
    }
  }

  std::set<std::string> referenced;  // data files named by a valid record
  std::set<std::string> unreadable;  // key hashes whose record was skipped
  std::map<std::string, Entry, std::less<>> index;
  for (const std::string& name : names) {
    if (!name.ends_with(".meta")) continue;
    const std::string hash = name.substr(0, name.size() - 5);
    const std::string path = dir + "/" + name;
    auto load = [&]() -> Status {
      Result<std::string> text = ReadWholeFile(path, kMaxRecordBytes);
      if (!text.ok()) return text.status();
      Result<Record> record = ParseRecord(*text, kObjectMagic);
      if (!record.ok()) return record.status();
      Result<RecordFields> fields = SplitFields(*record);
      if (!fields.ok()) return fields.status();
      Entry entry;
      Result<std::string> key = Required(*fields, "key");
      Result<std::string> data = Required(*fields, "data");
      Result<int64_t> size = RequiredNumber(*fields, "size");
      Result<std::string> etag = Required(*fields, "etag");
      Result<int64_t> mtime = RequiredNumber(*fields, "mtime_ns");
      Result<std::string> content_type = Required(*fields, "content_type");
      for (const Status* st : {&key.status(), &data.status(), &size.status(), &etag.status(),
                               &mtime.status(), &content_type.status()}) {
        if (!st->ok()) return *st;
      }
      if (KeyHash(*key) != hash) return Status::Corrupt("key does not hash to the file name");
      auto data_it = data_sizes.find(*data);
      if (data_it == data_sizes.end()) return Status::Corrupt("data file " + *data + " missing");
      if (data_it->second != static_cast<uint64_t>(*size)) {
        return Status::Corrupt("data file " + *data + " has " + std::to_string(data_it->second) +
                               " bytes, record says " + std::to_string(*size));
      }
      entry.info.key = *key;
      entry.info.size = static_cast<uint64_t>(*size);
      entry.info.etag = *etag;
      entry.info.last_modified = FromNanos(*mtime);
      entry.info.content_type = *content_type;
      entry.info.metadata = fields->metadata;
      entry.data_file = *data;
      referenced.insert(*data);
      if (auto up = fields->single.find("upload"); up != fields->single.end()) {
        completed_uploads->insert(up->second);
      }
      index.insert_or_assign(*key, std::move(entry));
      return Status::Ok();
    };
    if (Status st = load(); !st.ok()) {
      unreadable.insert(hash);
      load_errors_.push_back(path + ": " + st.ToString());
      spdlog::warn("LocalStore: skipping unreadable object record {}: {}", path, st.ToString());
    }
  }

  // Bodies no record names were written by a Put that crashed before its commit.
  for (const auto& [name, size] : data_sizes) {
    if (referenced.count(name) != 0) continue;
    if (unreadable.count(name.substr(0, name.find('.'))) != 0) continue;  // kept for inspection
    RemoveFile(dir + "/" + name, "orphaned body of an uncommitted write");
  }

  MutexLock lock(mu_);
  index_ = std::move(index);
  return Status::Ok();
}

Status LocalStore::LoadUploads(const std::set<std::string>& completed_uploads) {
  const std::string dir = root_ + "/uploads";
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return Status::Io("list " + dir + ": " + ec.message());

  std::map<std::string, Upload, std::less<>> uploads;
  for (const std::string& id : names) {
    const std::string upload_dir = dir + "/" + id;
    // "<id>.aborted.<rand>" is an abort, and a completed upload's directory is leftover
    // cleanup, both interrupted by a crash.
    if (id.find('.') != std::string::npos || completed_uploads.count(id) != 0) {
      std::error_code remove_ec;
      fs::remove_all(upload_dir, remove_ec);
      continue;
    }
    auto load = [&]() -> Status {
      const std::string path = upload_dir + "/" + std::string(kUploadRecord);
      Result<std::string> text = ReadWholeFile(path, kMaxRecordBytes);
      if (!text.ok()) return text.status();
      Result<Record> record = ParseRecord(*text, kUploadMagic);
      if (!record.ok()) return record.status();
      Result<RecordFields> fields = SplitFields(*record);
      if (!fields.ok()) return fields.status();
      Upload upload;
      Result<std::string> key = Required(*fields, "key");
      Result<int64_t> initiated = RequiredNumber(*fields, "initiated_ns");
      Result<std::string> content_type = Required(*fields, "content_type");
      Result<std::string> if_match = Required(*fields, "if_match");
      Result<int64_t> if_none_match = RequiredNumber(*fields, "if_none_match");
      for (const Status* st : {&key.status(), &initiated.status(), &content_type.status(),
                               &if_match.status(), &if_none_match.status()}) {
        if (!st->ok()) return *st;
      }
      upload.key = *key;
      upload.initiated = FromNanos(*initiated);
      upload.options.content_type = *content_type;
      upload.options.metadata = fields->metadata;
      upload.options.if_match = *if_match;
      upload.options.if_none_match = *if_none_match != 0;

      std::error_code part_ec;
      for (auto it = fs::directory_iterator(upload_dir, part_ec);
           !part_ec && it != fs::directory_iterator(); it.increment(part_ec)) {
        std::string name = it->path().filename().string();
        std::string part_path = upload_dir + "/" + name;
        if (name.ends_with(kTmpSuffix)) {
          RemoveFile(part_path, "part left half-written by a crash");
          continue;
        }
        int number = 0;
        if (!name.starts_with("part-") || name.size() != 10) continue;
        auto [end, num_ec] = std::from_chars(name.data() + 5, name.data() + name.size(), number);
        if (num_ec != std::errc() || end != name.data() + name.size()) continue;
        Result<std::string> body = ReadWholeFile(part_path, kMaxPartBytes);
        if (!body.ok()) return body.status();
        upload.parts[number] = PartInfo{number, EtagOfBody(*body), body->size()};
      }
      if (part_ec) return Status::Io("list " + upload_dir + ": " + part_ec.message());
      uploads.emplace(id, std::move(upload));
      return Status::Ok();
    };
    if (Status st = load(); !st.ok()) {
      load_errors_.push_back(upload_dir + ": " + st.ToString());
      spdlog::warn("LocalStore: skipping unreadable multipart upload {}: {}", upload_dir,
                   st.ToString());
    }
  }

  MutexLock lock(mu_);
  uploads_ = std::move(uploads);
  return Status::Ok();
}

// ---- helpers ----

std::string LocalStore::ObjectsDir() const { return root_ + "/objects"; }

std::string LocalStore::UploadDir(std::string_view upload_id) const {
  return root_ + "/uploads/" + std::string(upload_id);
}

std::string LocalStore::RandomSuffix() {
  MutexLock lock(mu_);
  uint64_t v = rng_();
  return HexEncode(std::string_view(reinterpret_cast<const char*>(&v), sizeof v));
}

const ObjectInfo* LocalStore::FindLocked(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &it->second.info;
}

Result<LocalStore::StagedObject> LocalStore::StageRecord(Entry entry,
                                                         std::string_view completed_upload) {
  RecordWriter writer(kObjectMagic);
  writer.Add("key", entry.info.key)
      .Add("data", entry.data_file)
      .Add("size", std::to_string(entry.info.size))
      .Add("etag", entry.info.etag)
      .Add("mtime_ns", std::to_string(ToNanos(entry.info.last_modified)))
      .Add("content_type", entry.info.content_type);
  if (!completed_upload.empty()) writer.Add("upload", completed_upload);
  for (const auto& [name, value] : entry.info.metadata) writer.Add("meta", name, value);
  std::string tmp =
      ObjectsDir() + "/" + KeyHash(entry.info.key) + "." + RandomSuffix() + ".meta.tmp";
  STRATA_RETURN_IF_ERROR(WriteFileDurably(tmp, writer.Finish()));
  return StagedObject{std::move(entry), std::move(tmp)};
}

Result<LocalStore::StagedObject> LocalStore::StageObject(
    std::string_view key, uint64_t size, std::string etag, const PutOptions& options,
    const std::function<Status(int fd)>& write_body, std::string_view completed_upload) {
  Entry entry;
  entry.info.key = std::string(key);
  entry.info.size = size;
  entry.info.etag = std::move(etag);
  entry.info.content_type = NormalizeContentType(options.content_type);
  entry.info.metadata = NormalizeMetadata(options.metadata);
  entry.info.last_modified = std::chrono::system_clock::now();
  entry.data_file = KeyHash(key) + "." + RandomSuffix() + ".data";
  const std::string data_path = ObjectsDir() + "/" + entry.data_file;
  STRATA_RETURN_IF_ERROR(WriteFileDurably(data_path, write_body));
  Result<StagedObject> staged = StageRecord(std::move(entry), completed_upload);
  if (!staged.ok()) RemoveFile(data_path, "body of a failed write");
  return staged;
}

void LocalStore::DiscardStaged(const StagedObject& staged) {
  RemoveFile(staged.meta_tmp, "record of a write that did not commit");
  RemoveFile(ObjectsDir() + "/" + staged.entry.data_file, "body of a write that did not commit");
}

Result<PutResult> LocalStore::Commit(StagedObject staged, const PutOptions& options,
                                     std::string_view upload_id) {
  const std::string& key = staged.entry.info.key;
  const std::string record = ObjectsDir() + "/" + KeyHash(key) + ".meta";
  std::string old_data;
  {
    MutexLock commit_lock(commit_mu_);
    Status st;
    {
      MutexLock lock(mu_);
      if (!upload_id.empty()) {
        auto up = uploads_.find(upload_id);
        if (up == uploads_.end() || up->second.key != key) st = NoSuchUploadError(upload_id);
      }
      if (st.ok()) st = CheckWriteConditions(key, FindLocked(key), options);
      auto it = index_.find(key);
      if (it != index_.end()) old_data = it->second.data_file;
    }
    if (!st.ok()) {
      DiscardStaged(staged);
      return st;
    }
    if (::rename(staged.meta_tmp.c_str(), record.c_str()) != 0) {
      Status st = ErrnoStatus(errno, "rename " + staged.meta_tmp);
      DiscardStaged(staged);
      return st;
    }
    MutexLock lock(mu_);
    if (!upload_id.empty()) uploads_.erase(uploads_.find(upload_id));
    index_.insert_or_assign(key, staged.entry);
  }
  STRATA_RETURN_IF_ERROR(FsyncDir(ObjectsDir()));
  if (!upload_id.empty()) {
    std::string dir = UploadDir(upload_id);
    std::string doomed = dir + std::string(kAbortedSuffix) + "." + RandomSuffix();
    if (::rename(dir.c_str(), doomed.c_str()) == 0) {
      std::error_code ec;
      fs::remove_all(doomed, ec);
    }
  }
  if (!old_data.empty()) RemoveFile(ObjectsDir() + "/" + old_data, "body of a replaced object");
  return PutResult{staged.entry.info.etag};
}

Result<GetResult> LocalStore::Read(std::string_view key, const GetOptions& options) {
  std::string missing_data;  // a data file found missing on the previous attempt
  while (true) {
    Entry entry;
    {
      MutexLock lock(mu_);
      auto it = index_.find(key);
      if (it == index_.end()) return NoSuchKeyError(key);
      entry = it->second;
    }
    if (!options.if_match.empty() && !EtagMatches(options.if_match, entry.info.etag)) {
      return EtagMismatchError(key);
    }
    Result<ResolvedRange> range = ResolveRange(entry.info.size, options.range);
    if (!range.ok()) return range.status();
    const std::string path = ObjectsDir() + "/" + entry.data_file;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      int err = errno;
      if (err != ENOENT) return ErrnoStatus(err, "open " + path);
      // Replaced by a concurrent write between the lookup and the open: look again. The same
      // file missing twice means it is really gone.
      if (missing_data == entry.data_file) return Status::Corrupt(path + " is missing");
      missing_data = entry.data_file;
      continue;
    }
    GetResult result;
    STRATA_RETURN_IF_ERROR(PreadAll(fd.get(), range->offset, range->length, path, &result.body));
    result.info = std::move(entry.info);
    return result;
  }
}

// ---- ObjectStore ----

std::string LocalStore::Describe() const { return "local store at " + root_; }

Result<ObjectInfo> LocalStore::Head(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return NoSuchKeyError(key);
  return it->second.info;
}

Result<GetResult> LocalStore::Get(std::string_view key, const GetOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  return Read(key, options);
}

Result<PutResult> LocalStore::Put(std::string_view key, std::string_view body,
                                  const PutOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  {
    // Fail early on a condition that already does not hold; Commit checks again atomically.
    MutexLock lock(mu_);
    STRATA_RETURN_IF_ERROR(CheckWriteConditions(key, FindLocked(key), options));
  }
  Result<StagedObject> staged = StageObject(
      key, body.size(), EtagOfBody(body), options,
      [&](int fd) { return WriteAll(fd, body, "body of " + std::string(key)); }, "");
  if (!staged.ok()) return staged.status();
  return Commit(std::move(*staged), options, "");
}

Result<std::string> LocalStore::CreateMultipartUpload(std::string_view key,
                                                      const PutOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  std::string id = RandomSuffix() + RandomSuffix();
  Upload upload;
  upload.key = std::string(key);
  upload.options = options;
  upload.initiated = std::chrono::system_clock::now();

  const std::string dir = UploadDir(id);
  STRATA_RETURN_IF_ERROR(MakeDir(dir));
  RecordWriter writer(kUploadMagic);
  writer.Add("key", upload.key)
      .Add("initiated_ns", std::to_string(ToNanos(upload.initiated)))
      .Add("content_type", options.content_type)
      .Add("if_match", options.if_match)
      .Add("if_none_match", options.if_none_match ? "1" : "0");
  for (const auto& [name, value] : options.metadata) writer.Add("meta", name, value);
  const std::string record = dir + "/" + std::string(kUploadRecord);
  const std::string tmp = record + std::string(kTmpSuffix);
  Status st = WriteFileDurably(tmp, writer.Finish());
  if (st.ok() && ::rename(tmp.c_str(), record.c_str()) != 0)
    st = ErrnoStatus(errno, "rename " + tmp);
  if (st.ok()) st = FsyncDir(dir);
  if (st.ok()) st = FsyncDir(root_ + "/uploads");
  if (!st.ok()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return st;
  }
  MutexLock lock(mu_);
  uploads_.emplace(id, std::move(upload));
  return id;
}

Result<PartInfo> LocalStore::UploadPart(std::string_view key, std::string_view upload_id,
                                        int part_number, std::string_view body) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  STRATA_RETURN_IF_ERROR(ValidatePartNumber(part_number));
  auto upload_exists = [&]() REQUIRES(mu_) {
    auto it = uploads_.find(upload_id);
    return it != uploads_.end() && it->second.key == key;
  };
  {
    MutexLock lock(mu_);
    if (!upload_exists()) return NoSuchUploadError(upload_id);
  }
  PartInfo info{part_number, EtagOfBody(body), body.size()};
  const std::string dir = UploadDir(upload_id);
  const std::string path = dir + "/" + PartFileName(part_number);
  const std::string tmp = path + "." + RandomSuffix() + std::string(kTmpSuffix);
  Status st = WriteFileDurably(tmp, body);
  if (!st.ok()) {
    MutexLock lock(mu_);
    return upload_exists() ? st : NoSuchUploadError(upload_id);  // aborted meanwhile
  }
  {
    // Under commit_mu_ the index and the directory agree on which of two concurrent uploads
    // of one part number won, and the upload cannot be aborted or completed meanwhile.
    MutexLock commit_lock(commit_mu_);
    bool exists;
    {
      MutexLock lock(mu_);
      exists = upload_exists();
    }
    if (!exists) {
      RemoveFile(tmp, "part of an upload aborted meanwhile");
      return NoSuchUploadError(upload_id);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      st = ErrnoStatus(errno, "rename " + tmp);
      RemoveFile(tmp, "part that could not be renamed");
      return st;
    }
    MutexLock lock(mu_);
    uploads_.find(upload_id)->second.parts[part_number] = info;
  }
  STRATA_RETURN_IF_ERROR(FsyncDir(dir));
  return info;
}

Result<PutResult> LocalStore::CompleteMultipartUpload(std::string_view key,
                                                      std::string_view upload_id,
                                                      const std::vector<PartInfo>& parts) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  Upload upload;
  {
    MutexLock lock(mu_);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
    upload = it->second;
  }
  STRATA_RETURN_IF_ERROR(CheckCompleteParts(parts, upload.parts, options_.min_part_size));
  uint64_t total = 0;
  for (const PartInfo& part : parts) total += upload.parts.at(part.part_number).size;
  const std::string dir = UploadDir(upload_id);
  auto write_body = [&](int fd) -> Status {
    std::string buffer;
    for (const PartInfo& part : parts) {
      const std::string path = dir + "/" + PartFileName(part.part_number);
      Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (in.get() < 0) {
        if (errno == ENOENT) return NoSuchUploadError(upload_id);  // aborted meanwhile
        return ErrnoStatus(errno, "open " + path);
      }
      const uint64_t size = upload.parts.at(part.part_number).size;
      for (uint64_t done = 0; done < size; done += buffer.size()) {
        STRATA_RETURN_IF_ERROR(
            PreadAll(in.get(), done, std::min<uint64_t>(kCopyChunk, size - done), path, &buffer));
        STRATA_RETURN_IF_ERROR(WriteAll(fd, buffer, "assembled body of " + std::string(key)));
      }
    }
    return Status::Ok();
  };
  Result<StagedObject> staged =
      StageObject(key, total, MultipartEtag(parts), upload.options, write_body, upload_id);
  if (!staged.ok()) return staged.status();
  return Commit(std::move(*staged), upload.options, upload_id);
}

Status LocalStore::AbortMultipartUpload(std::string_view key, std::string_view upload_id) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  const std::string dir = UploadDir(upload_id);
  const std::string doomed = dir + std::string(kAbortedSuffix) + "." + RandomSuffix();
  {
    // Uploads leave the index only under commit_mu_, so the upload found here is still there
    // after the rename.
    MutexLock commit_lock(commit_mu_);
    {
      MutexLock lock(mu_);
      auto it = uploads_.find(upload_id);
      if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
    }
    // Renamed away first so that a crash during the removal cannot leave a half-deleted upload
    // that Open would load.
    if (::rename(dir.c_str(), doomed.c_str()) != 0) {
      return ErrnoStatus(errno, "rename " + dir);
    }
    MutexLock lock(mu_);
    uploads_.erase(uploads_.find(upload_id));
  }
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) IgnoreError(Status::Io(ec.message()), "Open removes aborted uploads it finds");
  return Status::Ok();
}

Result<std::vector<PartInfo>> LocalStore::ListParts(std::string_view key,
                                                    std::string_view upload_id) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.key != key) return NoSuchUploadError(upload_id);
  std::vector<PartInfo> parts;
  for (const auto& [number, part] : it->second.parts) parts.push_back(part);
  return parts;
}

Result<std::vector<MultipartUpload>> LocalStore::ListMultipartUploads(std::string_view prefix) {
  std::vector<MultipartUpload> uploads;
  {
    MutexLock lock(mu_);
    for (const auto& [id, upload] : uploads_) {
      if (std::string_view(upload.key).starts_with(prefix)) {
        uploads.push_back(MultipartUpload{upload.key, id, upload.initiated});
      }
    }
  }
  SortUploads(uploads);
  return uploads;
}

Result<ListPage> LocalStore::List(const ListOptions& options) {
  MutexLock lock(mu_);
  return ListObjectsV2(options, [this](std::string_view key) -> const ObjectInfo* {
    mu_.AssertHeld();  // ListObjectsV2 calls this before it returns, under `lock`
    auto it = index_.lower_bound(key);
    return it == index_.end() ? nullptr : &it->second.info;
  });
}

Result<PutResult> LocalStore::Copy(std::string_view source_key, std::string_view dest_key,
                                   const CopyOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateKey(source_key));
  STRATA_RETURN_IF_ERROR(ValidateKey(dest_key));
  if (source_key == dest_key && options.directive == MetadataDirective::kCopy) {
    return Status::InvalidArgument("copying an object to itself needs MetadataDirective::kReplace")
        .WithRemote(400, "InvalidRequest");
  }
  GetOptions get;
  get.if_match = options.if_match;
  Result<GetResult> source = Read(source_key, get);
  if (!source.ok()) return source.status();
  PutOptions put;
  if (options.directive == MetadataDirective::kCopy) {
    put.content_type = source->info.content_type;
    put.metadata = source->info.metadata;
  } else {
    put.content_type = options.content_type;
    put.metadata = options.metadata;
  }
  return Put(dest_key, source->body, put);
}

Result<std::string> LocalStore::DeleteLocked(std::string_view key) {
  std::string data_file;
  {
    MutexLock lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::string();
    data_file = it->second.data_file;
  }
  const std::string record = ObjectsDir() + "/" + KeyHash(key) + ".meta";
  if (::unlink(record.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "unlink " + record);
  }
  MutexLock lock(mu_);
  index_.erase(index_.find(key));
  return data_file;
}

Status LocalStore::Delete(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateKey(key));
  Result<std::string> data_file = [&] {
    MutexLock commit_lock(commit_mu_);
    return DeleteLocked(key);
  }();
  if (!data_file.ok()) return data_file.status();
  if (data_file->empty()) return Status::Ok();
  STRATA_RETURN_IF_ERROR(FsyncDir(ObjectsDir()));
  RemoveFile(ObjectsDir() + "/" + *data_file, "body of a deleted object");
  return Status::Ok();
}

Result<std::vector<DeleteFailure>> LocalStore::DeleteBatch(const std::vector<std::string>& keys) {
  if (keys.size() > kMaxDeleteBatch) {
    return Status::InvalidArgument("more than 1000 keys in one batch delete")
        .WithRemote(400, "MalformedXML");
  }
  std::vector<DeleteFailure> failures;
  std::vector<std::string> data_files;
  {
    MutexLock commit_lock(commit_mu_);
    for (const std::string& key : keys) {
      Status st = ValidateKey(key);
      if (st.ok()) {
        Result<std::string> data_file = DeleteLocked(key);
        if (data_file.ok() && !data_file->empty()) data_files.push_back(*data_file);
        if (!data_file.ok()) st = data_file.status();
      }
      if (!st.ok()) failures.push_back(DeleteFailure{key, st});
    }
  }
  if (!data_files.empty()) STRATA_RETURN_IF_ERROR(FsyncDir(ObjectsDir()));
  for (const std::string& name : data_files) {
    RemoveFile(ObjectsDir() + "/" + name, "body of a deleted object");
  }
  return failures;
}

}  // namespace strata
