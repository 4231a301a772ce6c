#include "cache/attr_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "base/posix_file.h"

namespace strata {
namespace {

constexpr int kApplicationId = 0x53544154;  // "STAT"
constexpr int kSchemaVersion = 1;

// One row per key. The primary key (parent, key) makes Children one range scan and Get one
// lookup (the parent is a function of the key). `metadata` is EncodeMetadata's; a NULL
// symlink_target means "not known", not "not a symlink". `written` grows with every write and
// orders the rows for trimming.
constexpr const char* kSchema =
    "CREATE TABLE attrs ("
    " parent BLOB NOT NULL,"
    " key BLOB NOT NULL,"
    " etag BLOB NOT NULL,"
    " content_type BLOB NOT NULL,"
    " metadata BLOB NOT NULL,"
    " symlink_target BLOB,"
    " written INTEGER NOT NULL,"
    " PRIMARY KEY (parent, key)"
    ") WITHOUT ROWID;"
    "CREATE INDEX attrs_by_written ON attrs (written);";

constexpr auto kWarningInterval = std::chrono::minutes(1);

using namespace sqlite;  // the helpers of cache/sqlite_util.h

// Binds `value` as a blob; an empty view binds an empty blob, never NULL.
void BindView(sqlite3_stmt* stmt, int column, std::string_view value) {
  sqlite3_bind_blob(stmt, column, value.empty() ? "" : value.data(), static_cast<int>(value.size()),
                    SQLITE_STATIC);
}

void PutLength(std::string& out, size_t n) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

// Each name and value as a 4-byte little-endian length and its bytes, in name order.
std::string EncodeMetadata(const Metadata& metadata) {
  std::string out;
  for (const auto& [name, value] : metadata) {
    PutLength(out, name.size());
    out += name;
    PutLength(out, value.size());
    out += value;
  }
  return out;
}

// Takes one length-prefixed string from the front of `in`; false when `in` is too short.
bool TakeString(std::string_view& in, std::string& out) {
  if (in.size() < 4) return false;
  size_t n = 0;
  for (int i = 0; i < 4; ++i)
    n |= static_cast<size_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(4);
  if (in.size() < n) return false;
  out.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

std::optional<Metadata> DecodeMetadata(std::string_view in) {
  Metadata metadata;
  while (!in.empty()) {
    std::string name;
    std::string value;
    if (!TakeString(in, name) || !TakeString(in, value)) return std::nullopt;
    metadata.emplace(std::move(name), std::move(value));
  }
  return metadata;
}

// Reads etag, content_type, metadata and symlink_target from columns first..first+3.
std::optional<KnownVersion> ReadVersion(sqlite3_stmt* stmt, int first) {
  KnownVersion version;
  version.etag = ColumnBlob(stmt, first);
  version.content_type = ColumnBlob(stmt, first + 1);
  std::optional<Metadata> metadata = DecodeMetadata(ColumnBlob(stmt, first + 2));
  if (!metadata) return std::nullopt;
  version.metadata = std::move(*metadata);
  if (sqlite3_column_type(stmt, first + 3) != SQLITE_NULL) {
    version.symlink_target = ColumnBlob(stmt, first + 3);
  }
  return version;
}

void RemoveIfPresent(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("attribute cache: cannot remove {}: {}", path, std::strerror(errno));
  }
}

// Creates `path` mode 0600 when missing, so that SQLite (which creates files 0644 less the umask,
// and its -wal and -shm files with the mode of the database) never makes them readable by others.
// Failures are left for Database::Open to report.
void CreatePrivateFile(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    // A WAL without its database must not be applied to a new one.
    RemoveIfPresent(path + "-wal");
    RemoveIfPresent(path + "-shm");
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ::fchmod(fd, 0600);
  ::close(fd);
}

}  // namespace

std::string_view AttrStore::ParentOf(std::string_view key) {
  std::string_view name = key;
  if (name.ends_with('/')) name.remove_suffix(1);
  const size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(0, slash + 1);
}

Result<std::unique_ptr<AttrStore>> AttrStore::Open(AttrStoreOptions options) {
  std::unique_ptr<AttrStore> store(new AttrStore(std::move(options)));
  MutexLock lock(store->mu_);
  Status st = store->OpenFileLocked();
  if (st.kind() == ErrorKind::kCorrupt) {
    // A file that is missing even after CreatePrivateFile means the directory is unusable.
    if (::access(store->options_.path.c_str(), F_OK) == 0) {
      st = store->RebuildLocked(st);
    } else {
      st = Status::Io(st.message());
    }
  }
  if (!st.ok()) return st;
  return store;
}

AttrStore::AttrStore(AttrStoreOptions options)
    : options_(std::move(options)),
      owned_clock_(options_.clock == nullptr ? std::make_unique<SystemClock>() : nullptr),
      clock_(options_.clock == nullptr ? owned_clock_.get() : options_.clock) {}

AttrStore::~AttrStore() {
  MutexLock lock(mu_);
  CloseLocked();
}

Status AttrStore::OpenFileLocked() {
  CreatePrivateFile(options_.path);
  // NORMAL: losing the newest rows to a power loss costs only HEAD requests.
  STRATA_ASSIGN_OR_RETURN(Database db,
                          Database::Open(options_.path, {.synchronous = Synchronous::kNormal,
                                                         .schema = kSchema,
                                                         .application_id = kApplicationId,
                                                         .version = kSchemaVersion,
                                                         .what = "strata attribute cache",
                                                         .rebuildable = true}));
  db_.emplace(std::move(db));
  Status st = PrepareLocked();
  if (!st.ok()) CloseLocked();
  return st;
}

Status AttrStore::PrepareLocked() {
  STRATA_ASSIGN_OR_RETURN(
      select_, db_->PrepareCached("SELECT etag, content_type, metadata, symlink_target FROM attrs"
                                  " WHERE parent = ?1 AND key = ?2"));
  STRATA_ASSIGN_OR_RETURN(
      children_, db_->PrepareCached("SELECT key, etag, content_type, metadata, symlink_target"
                                    " FROM attrs WHERE parent = ?1"));
  STRATA_ASSIGN_OR_RETURN(
      insert_, db_->PrepareCached("INSERT OR IGNORE INTO attrs (parent, key, etag, content_type,"
                                  " metadata, symlink_target, written)"
                                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  STRATA_ASSIGN_OR_RETURN(
      update_, db_->PrepareCached("UPDATE attrs SET etag = ?3, content_type = ?4, metadata = ?5,"
                                  " symlink_target = ?6, written = ?7"
                                  " WHERE parent = ?1 AND key = ?2"));
  STRATA_ASSIGN_OR_RETURN(erase_,
                          db_->PrepareCached("DELETE FROM attrs WHERE parent = ?1 AND key = ?2"));
  STRATA_ASSIGN_OR_RETURN(
      trim_, db_->PrepareCached("DELETE FROM attrs WHERE written IN"
                                " (SELECT written FROM attrs ORDER BY written LIMIT ?1)"));
  STRATA_ASSIGN_OR_RETURN(const int64_t rows, QueryInt(db_->get(), "SELECT count(*) FROM attrs"));
  STRATA_ASSIGN_OR_RETURN(last_written_,
                          QueryInt(db_->get(), "SELECT coalesce(max(written), 0) FROM attrs"));
  rows_ = static_cast<uint64_t>(rows);
  return Status::Ok();
}

void AttrStore::CloseLocked() {
  select_ = Statement();
  children_ = Statement();
  insert_ = Statement();
  update_ = Statement();
  erase_ = Statement();
  trim_ = Statement();
  db_.reset();
  rows_ = 0;
}

Status AttrStore::RebuildLocked(const Status& why) {
  CloseLocked();
  ++counters_.rebuilds;
  const std::string aside = options_.path + ".corrupt";
  spdlog::warn("attribute cache: {} is unusable ({}); moving it to {} and starting afresh",
               options_.path, why.message(), aside);
  if (::rename(options_.path.c_str(), aside.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "rename " + options_.path);
  }
  RemoveIfPresent(options_.path + "-wal");
  RemoveIfPresent(options_.path + "-shm");
  Status st = OpenFileLocked();
  // A new file that SQLite cannot use is the directory's fault, not the file's.
  if (st.kind() == ErrorKind::kCorrupt) return Status::Io(st.message());
  return st;
}

void AttrStore::Failed(const Status& status, std::string_view what) {
  ++counters_.errors;
  if (status.kind() == ErrorKind::kCorrupt) {
    Status st = RebuildLocked(status);  // logs its own warning
    if (!st.ok()) {
      spdlog::warn("attribute cache: cannot rebuild ({}); not caching attributes until restart",
                   st.ToString());
    }
    return;
  }
  ++unlogged_errors_;
  const Clock::MonoTime now = clock_->Now();
  if (last_warning_ && now - *last_warning_ < kWarningInterval) return;
  spdlog::warn("attribute cache {}: {} failed: {} ({} failure(s) since the last warning)",
               options_.path, what, status.ToString(), unlogged_errors_);
  last_warning_ = now;
  unlogged_errors_ = 0;
}

Status AttrStore::WriteLocked(
    std::span<const std::pair<std::string_view, const KnownVersion*>> rows) {
  uint64_t count = rows_;
  int64_t written = last_written_;
  Status st = db_->InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under the caller's lock
    for (const auto& [key, version] : rows) {
      const std::string metadata = EncodeMetadata(version->metadata);
      ++written;
      bool inserted = false;
      for (sqlite3_stmt* stmt : {insert_.get(), update_.get()}) {
        BindView(stmt, 1, ParentOf(key));
        BindView(stmt, 2, key);
        BindView(stmt, 3, version->etag);
        BindView(stmt, 4, version->content_type);
        BindView(stmt, 5, metadata);
        if (version->symlink_target) {
          BindView(stmt, 6, *version->symlink_target);
        } else {
          sqlite3_bind_null(stmt, 6);
        }
        sqlite3_bind_int64(stmt, 7, written);
        STRATA_RETURN_IF_ERROR(StepDone(db_->get(), stmt, "write attributes"));
        // INSERT OR IGNORE changes nothing when the key has a row; the UPDATE replaces it.
        if (stmt == insert_.get()) {
          inserted = sqlite3_changes(db_->get()) == 1;
          if (inserted) break;
        }
      }
      if (inserted) ++count;
    }
    if (count > options_.max_entries) {
      const uint64_t keep = options_.max_entries - options_.max_entries / 10;
      sqlite3_bind_int64(trim_, 1, static_cast<int64_t>(count - keep));
      STRATA_RETURN_IF_ERROR(StepDone(db_->get(), trim_, "trim attributes"));
      count -= static_cast<uint64_t>(sqlite3_changes(db_->get()));
    }
    return Status::Ok();
  });
  last_written_ = written;  // skipping the numbers of a failed write is harmless
  if (st.ok()) {
    rows_ = count;
    counters_.writes += rows.size();
  }
  return st;
}

void AttrStore::Put(std::string_view key, const KnownVersion& version) {
  MutexLock lock(mu_);
  if (!db_) return;
  const std::pair<std::string_view, const KnownVersion*> row(key, &version);
  Status st = WriteLocked({&row, 1});
  if (!st.ok()) Failed(st, "put");
}

void AttrStore::PutMany(const std::vector<std::pair<std::string, KnownVersion>>& versions) {
  if (versions.empty()) return;
  std::vector<std::pair<std::string_view, const KnownVersion*>> rows;
  rows.reserve(versions.size());
  for (const auto& [key, version] : versions) rows.emplace_back(key, &version);
  MutexLock lock(mu_);
  if (!db_) return;
  Status st = WriteLocked(rows);
  if (!st.ok()) Failed(st, "put");
}

std::optional<KnownVersion> AttrStore::Get(std::string_view key, std::string_view etag) {
  return Find(key, &etag);
}

std::optional<KnownVersion> AttrStore::Latest(std::string_view key) { return Find(key, nullptr); }

std::optional<KnownVersion> AttrStore::Find(std::string_view key, const std::string_view* etag) {
  MutexLock lock(mu_);
  std::optional<KnownVersion> found;
  Status problem;
  if (db_) {
    StmtReset reset(select_);  // before Failed, which may finalize select_ by rebuilding
    BindView(select_, 1, ParentOf(key));
    BindView(select_, 2, key);
    const int rc = sqlite3_step(select_);
    if (rc == SQLITE_ROW) {
      found = ReadVersion(select_, 0);
      if (!found) problem = Status::Internal("malformed metadata of " + std::string(key));
    } else if (rc != SQLITE_DONE) {
      problem = SqliteStatus(db_->get(), rc, "get attributes");
    }
  }
  if (!problem.ok()) Failed(problem, "get");
  if (found && etag != nullptr && found->etag != *etag) found.reset();
  ++(found ? counters_.hits : counters_.misses);
  return found;
}

std::map<std::string, KnownVersion> AttrStore::Children(std::string_view dir_prefix) {
  MutexLock lock(mu_);
  std::map<std::string, KnownVersion> children;
  if (!db_) return children;
  Status problem;
  uint64_t malformed = 0;
  {
    StmtReset reset(children_);  // before Failed, which may finalize children_ by rebuilding
    BindView(children_, 1, dir_prefix);
    int rc;
    while ((rc = sqlite3_step(children_)) == SQLITE_ROW) {
      std::optional<KnownVersion> version = ReadVersion(children_, 1);
      if (!version) {
        ++malformed;
        continue;
      }
      children.emplace(ColumnBlob(children_, 0), std::move(*version));
    }
    if (rc != SQLITE_DONE) problem = SqliteStatus(db_->get(), rc, "list attributes");
  }
  if (!problem.ok()) {
    Failed(problem, "children");
    children.clear();
  } else if (malformed > 0) {
    Failed(Status::Internal(std::to_string(malformed) + " rows with malformed metadata under \"" +
                            std::string(dir_prefix) + "\""),
           "children");
  }
  return children;
}

void AttrStore::Erase(std::string_view key) {
  MutexLock lock(mu_);
  if (!db_) return;
  BindView(erase_, 1, ParentOf(key));
  BindView(erase_, 2, key);
  Status st = StepDone(db_->get(), erase_, "erase attributes");
  if (!st.ok()) {
    Failed(st, "erase");
    return;
  }
  rows_ -= static_cast<uint64_t>(sqlite3_changes(db_->get()));
}

size_t AttrStore::size() {
  MutexLock lock(mu_);
  return rows_;
}

AttrStore::Counters AttrStore::counters() {
  MutexLock lock(mu_);
  return counters_;
}

}  // namespace strata
