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
  // NORMAL: losing the newest rows to a power loss is harmless (see the top of chunk_index.h).
  STRATA_ASSIGN_OR_RETURN(Database db, Database::Open(path, {.synchronous = Synchronous::kNormal,
                                                             .schema = kSchema,
                                                             .application_id = kApplicationId,
                                                             .version = kSchemaVersion,
                                                             .what = "chunk index",
                                                             .rebuildable = true}));
  std::unique_ptr<ChunkIndex> index(new ChunkIndex(std::move(db)));
  MutexLock lock(index->mu_);
  STRATA_RETURN_IF_ERROR(index->Prepare());
  return index;
}

ChunkIndex::ChunkIndex(Database db) : db_(std::move(db)) {}

ChunkIndex::~ChunkIndex() = default;

Status ChunkIndex::Prepare() {
  STRATA_ASSIGN_OR_RETURN(
      insert_, db_.PrepareCached(
                   "INSERT OR REPLACE INTO chunks (id, bucket, object_key, etag, chunk_size, idx,"
                   " size, checksum, last_access) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  STRATA_ASSIGN_OR_RETURN(remove_, db_.PrepareCached("DELETE FROM chunks WHERE id = ?1"));
  STRATA_ASSIGN_OR_RETURN(
      touch_,
      db_.PrepareCached("UPDATE chunks SET last_access = max(last_access, ?2) WHERE id = ?1"));
  return Status::Ok();
}

Result<std::vector<ChunkIndex::Row>> ChunkIndex::LoadAll() {
  MutexLock lock(mu_);
  static constexpr const char* kSql =
      "SELECT id, bucket, object_key, etag, chunk_size, idx, size, checksum, last_access"
      " FROM chunks ORDER BY last_access, id";
  STRATA_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare(kSql, "load index"));
  std::vector<Row> rows;
  int rc;
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
  if (rc != SQLITE_DONE) return SqliteStatus(db_.get(), rc, "load index");
  return rows;
}

Status ChunkIndex::Insert(const std::vector<Row>& rows) {
  if (rows.empty()) return Status::Ok();
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
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
      STRATA_RETURN_IF_ERROR(StepDone(db_.get(), insert_, "insert chunk row"));
    }
    return Status::Ok();
  });
}

Status ChunkIndex::Remove(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    for (const std::string& id : ids) {
      sqlite3_bind_text(remove_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      STRATA_RETURN_IF_ERROR(StepDone(db_.get(), remove_, "remove chunk row"));
    }
    return Status::Ok();
  });
}

Status ChunkIndex::UpdateAccess(const std::vector<std::pair<std::string, int64_t>>& ticks) {
  if (ticks.empty()) return Status::Ok();
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    for (const auto& [id, tick] : ticks) {
      sqlite3_bind_text(touch_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      sqlite3_bind_int64(touch_, 2, tick);
      STRATA_RETURN_IF_ERROR(StepDone(db_.get(), touch_, "update access time"));
    }
    return Status::Ok();
  });
}

uint64_t ChunkIndex::write_transactions() {
  MutexLock lock(mu_);
  return db_.commits();
}

}  // namespace strata
