#include "fs/metadata_cache.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "fs/paths.h"

namespace strata {
namespace {

EntryInfo FileFromObject(const ObjectInfo& object) {
  EntryInfo info;
  info.type = EntryType::kFile;
  info.size = object.size;
  info.mtime = object.last_modified;
  info.etag = object.etag;
  return info;
}

}  // namespace

bool ValidFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.size() <= 255 &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

mode_t FileTypeBits(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return S_IFREG;
    case EntryType::kDirectory:
      return S_IFDIR;
    case EntryType::kSymlink:
      return S_IFLNK;
    case EntryType::kFifo:
      return S_IFIFO;
    case EntryType::kSocket:
      return S_IFSOCK;
    case EntryType::kCharDevice:
      return S_IFCHR;
    case EntryType::kBlockDevice:
      return S_IFBLK;
  }
  return S_IFREG;
}

EntryType EntryTypeOf(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return EntryType::kDirectory;
    case S_IFLNK:
      return EntryType::kSymlink;
    case S_IFIFO:
      return EntryType::kFifo;
    case S_IFSOCK:
      return EntryType::kSocket;
    case S_IFCHR:
      return EntryType::kCharDevice;
    case S_IFBLK:
      return EntryType::kBlockDevice;
    default:
      return EntryType::kFile;
  }
}

std::optional<TimePoint> ParsePosixTime(std::string_view text) {
  int64_t seconds = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  bool negative = false;
  if (p != end && *p == '-') {
    negative = true;
    ++p;
  }
  const char* digits = p;
  while (p != end && *p >= '0' && *p <= '9' && p - digits < 18)
    seconds = seconds * 10 + (*p++ - '0');
  if (p == digits) return std::nullopt;
  int64_t nanos = 0;
  if (p != end && *p == '.') {
    ++p;
    int places = 0;
    for (; p != end && *p >= '0' && *p <= '9'; ++p) {
      if (places < 9) {
        nanos = nanos * 10 + (*p - '0');
        ++places;
      }
    }
    for (; places < 9; ++places) nanos *= 10;
  }
  if (p != end) return std::nullopt;
  const auto total = std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(negative ? -total : total));
}

std::string FormatPosixTime(TimePoint time) {
  const int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  int64_t seconds = ns / 1000000000;
  int64_t nanos = ns % 1000000000;
  if (nanos < 0) {
    --seconds;
    nanos += 1000000000;
  }
  char text[48];
  std::snprintf(text, sizeof text, "%lld.%09lld", static_cast<long long>(seconds),
                static_cast<long long>(nanos));
  return text;
}

void ApplyPosixMetadata(const Metadata& user_metadata, EntryInfo& info) {
  auto number = [&](const char* name) -> std::optional<uint64_t> {
    auto it = user_metadata.find(name);
    if (it == user_metadata.end() || it->second.empty()) return std::nullopt;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(it->second.c_str(), &end, 10);
    if (end == it->second.c_str()) return std::nullopt;
    return value;
  };
  auto time = [&](const char* name) -> std::optional<TimePoint> {
    auto it = user_metadata.find(name);
    if (it == user_metadata.end()) return std::nullopt;
    return ParsePosixTime(it->second);
  };
  if (auto mode = number("mode")) {
    info.mode = static_cast<mode_t>(*mode & 07777);
    // The type of an object; a directory stays one (its marker may carry any mode).
    const mode_t type = static_cast<mode_t>(*mode) & S_IFMT;
    if (info.type != EntryType::kDirectory && type != 0 && type != S_IFDIR) {
      info.type = EntryTypeOf(type);
    }
  }
  if (auto uid = number("uid")) info.uid = static_cast<uid_t>(*uid);
  if (auto gid = number("gid")) info.gid = static_cast<gid_t>(*gid);
  if (auto rdev = number("rdev")) info.rdev = *rdev;
  if (auto mtime = time("mtime")) info.mtime = *mtime;
  if (auto atime = time("atime")) info.atime = *atime;
  if (auto ctime = time("ctime")) info.ctime = *ctime;
}

MetadataCache::MetadataCache(ObjectStore& store, Clock& clock, MetadataOptions options,
                             AttrStore* attrs)
    : store_(store), clock_(clock), options_(std::move(options)), attrs_(attrs) {}

namespace {

// What a request that needs S3 gets while S3 is failing and nothing is cached for it.
Status Unavailable(const std::string& what) {
  return Status::Transient("S3 is failing and nothing is cached for '" + what +
                           "' (stale-if-error)")
      .WithRemote(0, "Unavailable");
}

}  // namespace

bool MetadataCache::Fresh(Clock::MonoTime fetched, std::chrono::milliseconds ttl) {
  return clock_.Now() - fetched < ttl;
}

MetadataCache::~MetadataCache() {
  std::thread prober;
  {
    MutexLock lock(mu_);
    prober = std::move(prober_);
  }
  if (prober.joinable()) prober.join();
}

MetadataCache::Ask MetadataCache::MayAskS3(bool have_stale) {
  std::thread finished;  // an earlier probe's thread, joined outside the lock
  {
    MutexLock lock(mu_);
    if (!counters_.degraded) return Ask::kS3;
    if (!probing_ && clock_.Now() - last_probe_ >= kProbeInterval) {
      probing_ = true;
      finished = std::move(prober_);
      prober_ = std::thread([this] { Probe(); });
    }
    if (have_stale) counters_.stale_answers++;
  }
  if (finished.joinable()) finished.join();  // it has ended (probing_ was false)
  return have_stale ? Ask::kStale : Ask::kUnavailable;
}

void MetadataCache::Probe() {
  ListOptions options{.prefix = options_.prefix, .delimiter = "/", .max_keys = 1};
  const Status st = store_.List(options).status();
  if (st.ok()) {
    S3Answered();
  } else {
    spdlog::debug("probe of S3: {}", st.ToString());
  }
  MutexLock lock(mu_);
  probing_ = false;
  last_probe_ = clock_.Now();
}

bool MetadataCache::ServeStale(const Status& status, bool have_stale, const std::string& what) {
  MutexLock lock(mu_);
  if (status.kind() != ErrorKind::kTransient) return false;
  if (!counters_.degraded) {
    spdlog::warn("S3 is failing ({}): serving cached metadata past --attr-ttl (stale-if-error)",
                 status.ToString());
  }
  counters_.degraded = true;
  if (!have_stale) return false;
  counters_.stale_answers++;
  spdlog::debug("stale answer for {}", what);
  return true;
}

void MetadataCache::S3Answered() {
  MutexLock lock(mu_);
  if (!counters_.degraded) return;
  counters_.degraded = false;
  spdlog::warn("S3 answers again: metadata is fetched afresh ({} stale answers so far)",
               counters_.stale_answers);
}

MetadataCounters MetadataCache::counters() {
  MutexLock lock(mu_);
  return counters_;
}

Result<std::optional<EntryInfo>> MetadataCache::Lookup(const std::string& dir,
                                                       const std::string& name) {
  if (!ValidFileName(name)) return std::optional<EntryInfo>();
  const std::string path = JoinPath(dir, name);
  uint64_t epoch = 0;
  std::optional<EntryInfo> listed;  // from a fresh listing, attributes not known yet
  // The last answer known, however old, for stale-if-error.
  std::optional<std::optional<EntryInfo>> stale;
  {
    MutexLock lock(mu_);
    if (auto it = entries_.find(path); it != entries_.end()) {
      const auto ttl = it->second.info ? options_.attr_ttl : options_.negative_ttl;
      if (Fresh(it->second.fetched, ttl)) return it->second.info;
      stale = it->second.info;
    }
    if (auto it = listings_.find(dir); it != listings_.end()) {
      auto entry = it->second->entries.find(name);
      if (Fresh(it->second->fetched, options_.attr_ttl)) {
        if (entry == it->second->entries.end()) return std::optional<EntryInfo>();
        if (!it->second->unknown.contains(name)) return std::optional<EntryInfo>(entry->second);
        listed = entry->second;
      } else if (!stale) {
        stale = entry == it->second->entries.end() ? std::optional<EntryInfo>()
                                                   : std::optional<EntryInfo>(entry->second);
      }
    }
    epoch = epoch_;
  }
  Result<std::optional<EntryInfo>> fetched = std::optional<EntryInfo>();
  if (listed) {
    CompleteEntry(path, *listed);
    fetched = std::move(listed);
  } else {
    switch (MayAskS3(stale.has_value())) {
      case Ask::kS3:
        break;
      case Ask::kStale:
        return *stale;
      case Ask::kUnavailable:
        return Unavailable(path);
    }
    fetched = FetchEntry(path);
    if (!fetched.ok()) {
      if (ServeStale(fetched.status(), stale.has_value(), path)) return *stale;
      return fetched.status();
    }
    S3Answered();
  }
  MutexLock lock(mu_);
  if (epoch == epoch_) entries_[path] = CachedEntry{*fetched, clock_.Now()};
  return fetched;
}

std::optional<EntryInfo> MetadataCache::FreshEntry(const std::string& path) {
  MutexLock lock(mu_);
  auto it = entries_.find(path);
  if (it == entries_.end() || !Fresh(it->second.fetched, options_.attr_ttl)) return std::nullopt;
  return it->second.info;
}

Result<std::shared_ptr<const DirListing>> MetadataCache::List(const std::string& dir) {
  uint64_t epoch = 0;
  {
    MutexLock lock(mu_);
    if (auto it = listings_.find(dir);
        it != listings_.end() && Fresh(it->second->fetched, options_.attr_ttl)) {
      return it->second;
    }
    epoch = epoch_;
  }
  std::shared_ptr<const DirListing> stale;
  {
    MutexLock lock(mu_);
    if (auto it = listings_.find(dir); it != listings_.end()) stale = it->second;
  }
  switch (MayAskS3(stale != nullptr)) {
    case Ask::kS3:
      break;
    case Ask::kStale:
      return stale;
    case Ask::kUnavailable:
      return Unavailable(dir + "/");
  }
  Result<std::shared_ptr<const DirListing>> listing = FetchListing(dir);
  if (!listing.ok()) {
    if (ServeStale(listing.status(), stale != nullptr, dir + "/")) return stale;
    return listing.status();
  }
  S3Answered();
  MutexLock lock(mu_);
  if (epoch == epoch_) listings_[dir] = *listing;
  return listing;
}

Result<std::optional<EntryInfo>> MetadataCache::Revalidate(const std::string& path) {
  uint64_t epoch = 0;
  {
    MutexLock lock(mu_);
    if (auto it = entries_.find(path);
        it != entries_.end() && it->second.info && Fresh(it->second.fetched, options_.attr_ttl)) {
      return it->second.info;
    }
    epoch = epoch_;
  }
  std::optional<std::optional<EntryInfo>> stale;
  {
    MutexLock lock(mu_);
    if (auto it = entries_.find(path); it != entries_.end()) stale = it->second.info;
  }
  switch (MayAskS3(stale.has_value())) {
    case Ask::kS3:
      break;
    case Ask::kStale:
      return *stale;
    case Ask::kUnavailable:
      return Unavailable(path);
  }
  Result<std::optional<EntryInfo>> head = HeadFile(path);
  if (!head.ok()) {
    if (ServeStale(head.status(), stale.has_value(), path)) return *stale;
    return head.status();
  }
  S3Answered();
  MutexLock lock(mu_);
  if (epoch == epoch_) entries_[path] = CachedEntry{*head, clock_.Now()};
  return head;
}

void MetadataCache::Invalidate(const std::string& path) {
  MutexLock lock(mu_);
  ++epoch_;
  entries_.erase(path);
  listings_.erase(path);
  listings_.erase(ParentPath(path));
}

void MetadataCache::Learned(const std::string& key, const KnownVersion& version) {
  if (attrs_ == nullptr) return;
  if (key.ends_with('/')) {
    KnownVersion marker = version;
    marker.etag.clear();  // every empty marker has the same ETag: not compared
    attrs_->Put(key, marker);
    return;
  }
  attrs_->Put(key, version);
}

void MetadataCache::LearnedCopy(const std::string& from, const std::string& to,
                                const std::string& etag) {
  if (attrs_ == nullptr) return;
  std::optional<KnownVersion> known = attrs_->Latest(from);
  if (!known) return;
  known->etag = etag;
  attrs_->Put(to, *known);
}

void MetadataCache::LearnedMetadata(const std::string& key, const std::string& etag,
                                    const Metadata& metadata) {
  if (attrs_ == nullptr) return;
  KnownVersion known = attrs_->Latest(key).value_or(KnownVersion{});
  known.etag = etag;
  for (const auto& [name, value] : metadata) known.metadata[name] = value;
  attrs_->Put(key, known);
}

std::optional<std::string> MetadataCache::KnownSymlinkTarget(const std::string& key,
                                                             const std::string& etag) {
  if (attrs_ == nullptr || etag.empty()) return std::nullopt;
  std::optional<KnownVersion> known = attrs_->Get(key, etag);
  if (!known) return std::nullopt;
  return known->symlink_target;
}

void MetadataCache::LearnedSymlinkTarget(const std::string& key, const std::string& etag,
                                         const std::string& target) {
  if (attrs_ == nullptr || etag.empty()) return;
  std::optional<KnownVersion> known = attrs_->Get(key, etag);
  if (!known) return;  // only alongside the metadata, never instead of it
  known->symlink_target = target;
  attrs_->Put(key, *known);
}

void MetadataCache::Forgotten(const std::string& key) {
  if (attrs_ != nullptr) attrs_->Erase(key);
}

bool MetadataCache::ApplyKnown(const std::optional<KnownVersion>& known, EntryInfo& info) {
  if (!known) return false;
  ApplyPosixMetadata(known->metadata, info);
  return true;
}

Result<std::optional<ObjectInfo>> MetadataCache::HeadAndLearn(const std::string& key) {
  {
    MutexLock lock(mu_);
    counters_.head_requests++;
  }
  Result<ObjectInfo> head = store_.Head(key);
  if (!head.ok()) {
    if (!head.status().IsNotFound()) return head.status();
    // A directory without a marker (implicit) has nothing more to learn; remember that too.
    if (key.ends_with('/')) Learned(key, KnownVersion{});
    return std::optional<ObjectInfo>();
  }
  Learned(key,
          KnownVersion{
              .etag = head->etag, .metadata = head->metadata, .content_type = head->content_type});
  return std::optional<ObjectInfo>(std::move(*head));
}

void MetadataCache::CompleteEntry(const std::string& path, EntryInfo& info) {
  const bool dir = info.type == EntryType::kDirectory;
  const std::string key = dir ? KeyOf(path) + "/" : KeyOf(path);
  if (attrs_ != nullptr &&
      ApplyKnown(dir ? attrs_->Latest(key) : attrs_->Get(key, info.etag), info)) {
    MutexLock lock(mu_);
    counters_.attributes_known++;
    return;
  }
  Result<std::optional<ObjectInfo>> head = HeadAndLearn(key);
  if (!head.ok() || !*head) return;  // keeps the listing's values
  if (!dir) {
    info = FileFromObject(**head);
  }
  ApplyPosixMetadata((*head)->metadata, info);
}

void MetadataCache::InvalidateWithAncestors(const std::string& path) {
  MutexLock lock(mu_);
  ++epoch_;
  entries_.erase(path);
  listings_.erase(path);
  std::string dir = path;
  while (!dir.empty()) {
    dir = ParentPath(dir);
    entries_.erase(dir);
    listings_.erase(dir);
  }
}

void MetadataCache::InvalidateAll() {
  MutexLock lock(mu_);
  ++epoch_;
  entries_.clear();
  listings_.clear();
}

Metadata PosixMetadata(const EntryInfo& info, mode_t default_mode, uid_t default_uid,
                       gid_t default_gid) {
  const mode_t mode = FileTypeBits(info.type) | (info.mode.value_or(default_mode) & 07777);
  Metadata metadata{
      {"mode", std::to_string(mode)},
      {"uid", std::to_string(info.uid.value_or(default_uid))},
      {"gid", std::to_string(info.gid.value_or(default_gid))},
      {"mtime", FormatPosixTime(info.mtime)},
      {"ctime", FormatPosixTime(info.ctime == TimePoint{} ? info.mtime : info.ctime)},
      {"atime", FormatPosixTime(info.atime == TimePoint{} ? info.mtime : info.atime)}};
  if (info.type == EntryType::kCharDevice || info.type == EntryType::kBlockDevice) {
    metadata["rdev"] = std::to_string(info.rdev);
  }
  return metadata;
}

Result<ObjectInfo> MetadataCache::HeadKey(const std::string& key) {
  {
    MutexLock lock(mu_);
    counters_.head_requests++;
  }
  return store_.Head(key);
}

Result<std::vector<std::string>> MetadataCache::KeysUnder(const std::string& key_prefix) {
  std::vector<std::string> keys;
  ListOptions options{.prefix = key_prefix};
  for (;;) {
    {
      MutexLock lock(mu_);
      counters_.list_requests++;
    }
    Result<ListPage> page = store_.List(options);
    if (!page.ok()) return page.status();
    for (const ObjectInfo& object : page->objects) keys.push_back(object.key);
    if (!page->truncated) return keys;
    options.continuation_token = page->next_continuation_token;
  }
}

Result<std::optional<EntryInfo>> MetadataCache::HeadFile(const std::string& path) {
  Result<std::optional<ObjectInfo>> head = HeadAndLearn(KeyOf(path));
  if (!head.ok()) return head.status();
  if (!*head) return std::optional<EntryInfo>();
  EntryInfo info = FileFromObject(**head);
  ApplyPosixMetadata((*head)->metadata, info);
  return std::optional<EntryInfo>(std::move(info));
}

Result<std::optional<EntryInfo>> MetadataCache::FetchEntry(const std::string& path) {
  // One LIST with the path as prefix finds both the object "path" and the prefix "path/":
  // keys sort bytewise, and only names continuing with a byte below '/' fall between them.
  const std::string key = KeyOf(path);
  const std::string dir_prefix = key + "/";
  ListOptions options{.prefix = key, .delimiter = "/", .max_keys = 64};
  std::optional<EntryInfo> file;
  for (;;) {
    {
      MutexLock lock(mu_);
      counters_.list_requests++;
    }
    Result<ListPage> page = store_.List(options);
    if (!page.ok()) return page.status();
    for (const std::string& prefix : page->common_prefixes) {
      if (prefix == dir_prefix) {
        EntryInfo dir = DirectoryEntry();
        CompleteEntry(path, dir);
        return std::optional<EntryInfo>(dir);
      }
    }
    bool past = false;
    for (const ObjectInfo& object : page->objects) {
      if (object.key == key) file = FileFromObject(object);
      if (object.key > dir_prefix) past = true;
    }
    if (!page->common_prefixes.empty() && page->common_prefixes.back() > dir_prefix) past = true;
    if (past || !page->truncated) break;
    options.continuation_token = page->next_continuation_token;
  }
  if (file) CompleteEntry(path, *file);
  return file;
}

Result<std::shared_ptr<const DirListing>> MetadataCache::FetchListing(const std::string& dir) {
  const std::string prefix = dir.empty() ? options_.prefix : KeyOf(dir) + "/";
  auto listing = std::make_shared<DirListing>();
  bool marker = false;
  ListOptions options{.prefix = prefix, .delimiter = "/"};
  std::vector<std::string> skipped;
  for (;;) {
    {
      MutexLock lock(mu_);
      counters_.list_requests++;
    }
    Result<ListPage> page = store_.List(options);
    if (!page.ok()) return page.status();
    for (const ObjectInfo& object : page->objects) {
      const std::string name = object.key.substr(prefix.size());
      if (name.empty()) {
        marker = true;  // the "dir/" marker of this directory itself
        continue;
      }
      if (!ValidFileName(name)) {
        skipped.push_back(object.key);
        continue;
      }
      // A directory of the same name wins; it may already be there from an earlier page.
      listing->entries.emplace(name, FileFromObject(object));
    }
    for (const std::string& common : page->common_prefixes) {
      const std::string name = common.substr(prefix.size(), common.size() - prefix.size() - 1);
      if (!ValidFileName(name)) {
        skipped.push_back(common);
        continue;
      }
      auto [it, inserted] = listing->entries.emplace(name, DirectoryEntry());
      if (!inserted && it->second.type != EntryType::kDirectory) {
        spdlog::warn("'{}' is both a file and a directory; showing the directory", common);
        it->second = DirectoryEntry();
      }
    }
    if (!page->truncated) break;
    options.continuation_token = page->next_continuation_token;
  }
  if (!skipped.empty()) {
    spdlog::warn("skipped {} key(s) under '{}' that cannot be file names, e.g. '{}'",
                 skipped.size(), prefix, skipped.front());
  }
  listing->marker = marker;
  if (!dir.empty() && !marker && listing->entries.empty() && skipped.empty()) {
    return Status::NotFound("directory '" + dir + "' does not exist");
  }
  // Attributes: what the AttrStore knows of each version, else (with head_every_entry) one
  // HEAD per entry, in bounded parallel; else the listing's values until a Lookup.
  std::map<std::string, KnownVersion> known;
  if (attrs_ != nullptr) known = attrs_->Children(prefix);
  std::vector<std::pair<std::string, EntryInfo*>> unknown;
  for (auto& [name, info] : listing->entries) {
    const bool is_dir = info.type == EntryType::kDirectory;
    auto it = known.find(prefix + name + (is_dir ? "/" : ""));
    if (it != known.end() && (is_dir || it->second.etag == info.etag)) {
      ApplyPosixMetadata(it->second.metadata, info);
    } else {
      unknown.emplace_back(name, &info);
    }
  }
  {
    MutexLock lock(mu_);
    counters_.attributes_known += listing->entries.size() - unknown.size();
    counters_.attributes_unknown += unknown.size();
  }
  if (options_.head_every_entry && !unknown.empty()) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    const size_t count = std::min<size_t>(
        unknown.size(), static_cast<size_t>(std::max(1, options_.head_parallelism)));
    for (size_t w = 0; w < count; ++w) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < unknown.size(); i = next++) {
          CompleteEntry(JoinPath(dir, unknown[i].first), *unknown[i].second);
        }
      });
    }
    for (std::thread& worker : workers) worker.join();
    unknown.clear();
  }
  for (const auto& [name, info] : unknown) listing->unknown.insert(name);
  listing->fetched = clock_.Now();
  return std::shared_ptr<const DirListing>(std::move(listing));
}

}  // namespace strata
