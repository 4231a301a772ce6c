// MetadataCache: what the tree looks like, from S3 listings, with attribute, listing and negative
// caches. Paths are relative to the mount root ("" is the root, "a/b" a nested entry); the
// bucket prefix is added here and nowhere else. Thread-safe; no lock is held across a request.
//
// A directory is a common prefix or a "dir/" marker object; when both a file "x" and a
// directory "x/" exist, the directory wins (the file is hidden, with one warning). Keys that
// cannot be file names (empty segments, "." or "..", names over 255 bytes) are skipped with one
// warning. File attributes come from the listing (size, mtime = Last-Modified); the POSIX
// attributes stored in s3fs's headers (x-amz-meta-mode/uid/gid/mtime/atime/ctime/rdev) come
// from the AttrStore, which holds the user metadata of every object version this mount (or an
// earlier one) learned or wrote, keyed by key and ETag. Listings take them from there without a
// request. A version the store has not seen costs one HEAD, ever: at Lookup of its name, or for
// every listed entry (bounded parallel HEADs) when `head_every_entry` is set. A directory's
// attributes are its "dir/" marker's, learned the same way (a marker's ETag is not compared:
// every empty marker has the same one).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "backends/object_store.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "cache/attr_store.h"

namespace strata {

// The file types POSIX knows. Everything but a directory is one object; FIFOs, sockets and
// devices are empty objects whose x-amz-meta-mode carries the type, as s3fs stores them.
enum class EntryType { kFile, kDirectory, kSymlink, kFifo, kSocket, kCharDevice, kBlockDevice };

// The S_IFMT bits of `type`, and the type of st_mode bits (a regular file for unknown bits).
mode_t FileTypeBits(EntryType type);
EntryType EntryTypeOf(mode_t mode);

struct EntryInfo {
  EntryType type = EntryType::kFile;
  uint64_t size = 0;
  TimePoint mtime{};
  std::string etag{};  // files only
  // From s3fs headers when known; nullopt means "use the mount default".
  std::optional<mode_t> mode{};  // permission bits only
  std::optional<uid_t> uid{};
  std::optional<gid_t> gid{};
  // Access and status change times (x-amz-meta-atime, -ctime); the epoch: unknown, shown as
  // mtime.
  TimePoint atime{};
  TimePoint ctime{};
  uint64_t rdev = 0;  // devices: the device number (x-amz-meta-rdev)
};

// A directory's entry (modified at `mtime`; none: implicit, shown with the mount's time).
inline EntryInfo DirectoryEntry(TimePoint mtime = {}) {
  EntryInfo info;
  info.type = EntryType::kDirectory;
  info.mtime = mtime;
  return info;
}

// A snapshot of one directory's entries, sorted by name.
struct DirListing {
  std::map<std::string, EntryInfo> entries;
  Clock::MonoTime fetched{};
  bool marker = false;  // S3 holds the directory's own "dir/" marker object
  // Entries whose object version the AttrStore did not know: shown with the listing's values
  // (defaults for mode and owner) until a Lookup of the name HEADs them.
  std::set<std::string> unknown;
};

struct MetadataOptions {
  std::string bucket{};
  std::string prefix{};  // "" or ending with '/'
  std::chrono::milliseconds attr_ttl{std::chrono::seconds(5)};
  std::chrono::milliseconds negative_ttl{std::chrono::seconds(2)};
  bool head_every_entry = false;  // fetch s3fs attributes with a HEAD per listed file
  int head_parallelism = 16;
};

struct MetadataCounters {
  uint64_t list_requests = 0;
  uint64_t head_requests = 0;
  uint64_t attributes_known = 0;    // entries whose attributes the AttrStore knew
  uint64_t attributes_unknown = 0;  // entries listed with an ETag it had not seen
  // Stale-if-error: answers from expired entries and listings because S3 failed transiently
  // (unreachable, timed out, 5xx), and whether the last request to S3 failed that way.
  uint64_t stale_answers = 0;
  bool degraded = false;
};

class MetadataCache {
 public:
  // `store`, `clock` and `attrs` must outlive *this. Without `attrs` nothing is remembered
  // of user metadata beyond the attribute TTL (every lookup of a file HEADs it).
  MetadataCache(ObjectStore& store, Clock& clock, MetadataOptions options,
                AttrStore* attrs = nullptr);
  // Waits for a probe of S3 in flight (at most the store's request deadline).
  ~MetadataCache();
  // While S3 fails (stale-if-error, see MayAskS3), a probe starts at most this often.
  static constexpr std::chrono::seconds kProbeInterval{1};
  MetadataCache(const MetadataCache&) = delete;
  MetadataCache& operator=(const MetadataCache&) = delete;

  // Sets the AttrStore. REQUIRES: before any request is served (the mount opens its database
  // in the serving process, which is a fork of the one that built *this).
  void AttachAttrStore(AttrStore* attrs) { attrs_ = attrs; }

  // The entry `name` in directory `dir`, or nullopt when there is none. Answers from a fresh
  // listing of `dir` when there is one, else asks S3 (HEAD, then a one-key LIST for a
  // directory) and remembers the answer (negative answers for negative_ttl).
  Result<std::optional<EntryInfo>> Lookup(const std::string& dir, const std::string& name);

  // What a Lookup of `path` found within attr_ttl (attributes HEADed since the listing), without
  // asking S3; nullopt when nothing fresh is cached or the name was absent.
  std::optional<EntryInfo> FreshEntry(const std::string& path);

  // The whole directory, from cache when younger than attr_ttl. kNotFound when `dir` has no
  // entries and no marker (it does not exist, or no longer does).
  Result<std::shared_ptr<const DirListing>> List(const std::string& dir);

  // Fresh attributes of a file for open(): HEADs it when the cached ones are older than
  // attr_ttl. nullopt when the object is gone.
  Result<std::optional<EntryInfo>> Revalidate(const std::string& path);

  // Uncached: the object at `key` as S3 has it now (a pending rename's source, which is not at
  // a path of the mount). kNotFound when there is none.
  Result<ObjectInfo> HeadKey(const std::string& key);
  // Uncached: every key under `key_prefix`, recursively (all pages), for a directory rename.
  Result<std::vector<std::string>> KeysUnder(const std::string& key_prefix);

  // Forgets what is known about `path` and its parent's listing.
  // Results of requests that started before an Invalidate are returned but not kept, so a
  // listing fetched just before a change cannot outlive it.
  void Invalidate(const std::string& path);
  // Invalidate, and also the listings of every ancestor: an object written or deleted can make
  // implicit directories above it appear or vanish.
  void InvalidateWithAncestors(const std::string& path);
  // Forgets everything (e.g. after a directory was renamed).
  void InvalidateAll();

  // What the object at `key` is now (an upload, a copy or a metadata change of this mount took
  // effect with `etag`): remembered in the AttrStore, so listings show its attributes.
  void Learned(const std::string& key, const KnownVersion& version);
  // A server-side copy `from` -> `to` made `etag`: `to` has what is known of `from`.
  void LearnedCopy(const std::string& from, const std::string& to, const std::string& etag);
  // A metadata change (a copy onto itself) laid `metadata` over the object's and made `etag`.
  void LearnedMetadata(const std::string& key, const std::string& etag, const Metadata& metadata);
  // The target of the symlink object `key` at `etag`, when the AttrStore knows it; and
  // remembering it once read.
  std::optional<std::string> KnownSymlinkTarget(const std::string& key, const std::string& etag);
  void LearnedSymlinkTarget(const std::string& key, const std::string& etag,
                            const std::string& target);
  // The object at `key` was deleted.
  void Forgotten(const std::string& key);

  // The object key of a path ("a/b" -> prefix + "a/b").
  std::string KeyOf(const std::string& path) const { return options_.prefix + path; }

  MetadataCounters counters();
  const MetadataOptions& options() const { return options_; }

 private:
  bool probing_ GUARDED_BY(mu_) = false;          // a degraded-mode probe is in flight
  Clock::MonoTime last_probe_ GUARDED_BY(mu_){};  // when the last probe ended
  std::thread prober_ GUARDED_BY(mu_);            // the last probe's thread
  struct CachedEntry {
    std::optional<EntryInfo> info;  // nullopt: known not to exist
    Clock::MonoTime fetched;
  };

  Result<std::shared_ptr<const DirListing>> FetchListing(const std::string& dir);
  // Stale-if-error. When `status` is a transient failure of S3 and `stale` holds an expired
  // answer, counts it, logs the change to degraded once and returns true: the caller serves
  // the stale answer. Otherwise false.
  bool ServeStale(const Status& status, bool have_stale, const std::string& what);
  // A request to S3 succeeded: logs the end of a degraded period once.
  void S3Answered();
  // Whether a request that needs S3 asks it. While degraded, none does: each gets the stale
  // answer when there is one (counted), else kUnavailable, without waiting; meanwhile one probe
  // at a time (a LIST of one key, in a thread of its own, started at most once per
  // kProbeInterval by these calls) finds out when S3 answers again.
  enum class Ask { kS3, kStale, kUnavailable };
  Ask MayAskS3(bool have_stale);
  void Probe();
  Result<std::optional<EntryInfo>> FetchEntry(const std::string& path);
  Result<std::optional<EntryInfo>> HeadFile(const std::string& path);
  bool Fresh(Clock::MonoTime fetched, std::chrono::milliseconds ttl);
  // HEADs `key` (a file, or a directory's marker "dir/") and records what it says in the
  // AttrStore. nullopt when there is no such object.
  Result<std::optional<ObjectInfo>> HeadAndLearn(const std::string& key);
  // A listed entry with what the AttrStore knows of it; false when it does not know it.
  static bool ApplyKnown(const std::optional<KnownVersion>& known, EntryInfo& info);
  // `info` (from a listing) with the attributes of its version: from the AttrStore, else from
  // one HEAD. Errors leave the listing's values.
  void CompleteEntry(const std::string& path, EntryInfo& info);

  ObjectStore& store_;
  Clock& clock_;
  const MetadataOptions options_;

  // Lock order: mu_ is a leaf; never held across a store call.
  Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const DirListing>> listings_ GUARDED_BY(mu_);
  std::unordered_map<std::string, CachedEntry> entries_ GUARDED_BY(mu_);
  MetadataCounters counters_ GUARDED_BY(mu_);
  uint64_t epoch_ GUARDED_BY(mu_) = 0;  // Invalidate calls so far
  AttrStore* attrs_;                    // may be null; set before serving, constant after
};

// s3fs-compatible attributes from user metadata ("mode", "uid", "gid", "mtime", "atime",
// "ctime", "rdev"). The file type in "mode" applies to objects (not directories).
void ApplyPosixMetadata(const Metadata& user_metadata, EntryInfo& info);

// A time as s3fs writes it: "seconds" or "seconds.fraction" (up to nanoseconds, parsed exactly).
std::optional<TimePoint> ParsePosixTime(std::string_view text);
std::string FormatPosixTime(TimePoint time);

// The s3fs headers (without "x-amz-meta-") for `info`: mode (decimal, with the file type),
// uid, gid, mtime, ctime and atime ("seconds.nanoseconds"), and rdev for devices. Unset fields
// take the defaults; unknown ctime and atime take mtime.
Metadata PosixMetadata(const EntryInfo& info, mode_t default_mode, uid_t default_uid,
                       gid_t default_gid);

// True when `name` can be a file name: not empty, not "." or "..", at most 255 bytes, no '/'
// and no NUL.
bool ValidFileName(std::string_view name);

}  // namespace strata
