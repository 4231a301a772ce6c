#include "cache/chunk_index.h"

#include <sqlite3.h>

#include <utility>

#include "cache/sqlite_util.h"

namespace strata {
namespace {

constexpr int kApplicationId = 0x53544348;  // "STCH"
constexpr int kSchemaVersion = 1;

constexpr const char* kSchema =
    "CREATE TABLE chunks ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " bucket BLOB NOT NULL,"
    " object_key BLOB NOT NULL,"
    " etag BLOB NOT NULL,"
    " chunk_size INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " checksum INTEGER NOT NULL,"
    " last_access INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX chunks_by_object ON chunks (bucket, object_key);";

using namespace sqlite;  // the helpers of cache/sqlite_util.h

}  // namespace

Result<std::unique_ptr<ChunkIndex>> ChunkIndex::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = Status::Corrupt("cannot open " + path + ": " + sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return st;
  }
  // From here on *index owns db and closes it on every return.
  std::unique_ptr<ChunkIndex> index(new ChunkIndex(db));
  std::lock_guard lock(index->mu_);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  Result<std::string> mode = QueryText(db, "PRAGMA journal_mode = WAL");
  if (!mode.ok()) {
    const Status& st = mode.status();
    if (st.kind() == ErrorKind::kCorrupt) return st;
    return Status::Corrupt(path + ": " + st.message());
  }
  if (*mode != "wal") return Status::Io(path + ": cannot enable WAL (journal_mode " + *mode + ")");
  Status st = Exec(db, "PRAGMA synchronous = NORMAL");
  if (st.ok()) st = CreateOrCheckSchema(db, kSchema, kApplicationId, kSchemaVersion, "chunk index");
  if (st.ok()) st = index->Prepare();
  if (!st.ok()) {
    if (st.kind() == ErrorKind::kNoSpace || st.kind() == ErrorKind::kIo) return st;
    return Status::Corrupt(path + ": " + st.message());
  }
  return index;
}

ChunkIndex::ChunkIndex(sqlite3* db) : db_(db) {}

ChunkIndex::~ChunkIndex() {
  std::lock_guard lock(mu_);
  for (sqlite3_stmt* stmt : {insert_, remove_, touch_}) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status ChunkIndex::Prepare() {
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } const statements[] = {
      {&insert_,
       "INSERT OR REPLACE INTO chunks (id, bucket, object_key, etag, chunk_size, idx, size,"
       " checksum, last_access) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
      {&remove_, "DELETE FROM chunks WHERE id = ?1"},
      {&touch_, "UPDATE chunks SET last_access = max(last_access, ?2) WHERE id = ?1"},
  };
  for (const auto& s : statements) {
    const int rc = sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt, nullptr);
    if (rc != SQLITE_OK)
      return Status::Corrupt(std::string("schema mismatch: ") + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

template <typename Body>
Status ChunkIndex::InTransaction(const Body& body) {
  STRATA_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  Status st = body();
  if (st.ok()) st = Exec(db_, "COMMIT");
  if (!st.ok()) {
    IgnoreError(Exec(db_, "ROLLBACK"), "the transaction already failed; nothing was committed");
    return st;
  }
  ++write_transactions_;
  return Status::Ok();
}

Result<std::vector<ChunkIndex::Row>> ChunkIndex::LoadAll() {
  std::lock_guard lock(mu_);
  static constexpr const char* kSql =
      "SELECT id, bucket, object_key, etag, chunk_size, idx, size, checksum, last_access"
      " FROM chunks ORDER BY last_access, id";
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, kSql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "load index");
  std::vector<Row> rows;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Row row;
    row.id = ColumnText(stmt, 0);
    row.key.bucket = ColumnBlob(stmt, 1);
    row.key.object_key = ColumnBlob(stmt, 2);
    row.key.etag = ColumnBlob(stmt, 3);
    row.key.chunk_size = static_cast<uint32_t>(sqlite3_column_int64(stmt, 4));
    row.key.index = static_cast<uint64_t>(sqlite3_column_int64(stmt, 5));
    row.size = static_cast<uint64_t>(sqlite3_column_int64(stmt, 6));
    row.checksum = static_cast<uint64_t>(sqlite3_column_int64(stmt, 7));
    row.last_access = sqlite3_column_int64(stmt, 8);
    rows.push_back(std::move(row));
  }
  Status st = rc == SQLITE_DONE ? Status::Ok() : SqliteStatus(db_, rc, "load index");
  sqlite3_finalize(stmt);
  if (!st.ok()) return st;
  return rows;
}

Status ChunkIndex::Insert(const std::vector<Row>& rows) {
  if (rows.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> Status {
    for (const Row& row : rows) {
      sqlite3_bind_text(insert_, 1, row.id.data(), static_cast<int>(row.id.size()), SQLITE_STATIC);
      BindBlob(insert_, 2, row.key.bucket);
      BindBlob(insert_, 3, row.key.object_key);
      BindBlob(insert_, 4, row.key.etag);
      sqlite3_bind_int64(insert_, 5, row.key.chunk_size);
      sqlite3_bind_int64(insert_, 6, static_cast<int64_t>(row.key.index));
      sqlite3_bind_int64(insert_, 7, static_cast<int64_t>(row.size));
      sqlite3_bind_int64(insert_, 8, static_cast<int64_t>(row.checksum));
      sqlite3_bind_int64(insert_, 9, row.last_access);
      STRATA_RETURN_IF_ERROR(StepDone(db_, insert_, "insert chunk row"));
    }
    return Status::Ok();
  });
}

Status ChunkIndex::Remove(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> Status {
    for (const std::string& id : ids) {
      sqlite3_bind_text(remove_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      STRATA_RETURN_IF_ERROR(StepDone(db_, remove_, "remove chunk row"));
    }
    return Status::Ok();
  });
}

Status ChunkIndex::UpdateAccess(const std::vector<std::pair<std::string, int64_t>>& ticks) {
  if (ticks.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> Status {
    for (const auto& [id, tick] : ticks) {
      sqlite3_bind_text(touch_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      sqlite3_bind_int64(touch_, 2, tick);
      STRATA_RETURN_IF_ERROR(StepDone(db_, touch_, "update access time"));
    }
    return Status::Ok();
  });
}

uint64_t ChunkIndex::write_transactions() {
  std::lock_guard lock(mu_);
  return write_transactions_;
}

}  // namespace strata
