#include "cache/sqlite_util.h"

#include <sqlite3.h>

namespace strata::sqlite {

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

StmtReset::~StmtReset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Result<Database> Database::Open(const std::string& path, const OpenOptions& options) {
  sqlite3* handle = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &handle,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open " + path + ": " + sqlite3_errstr(rc);
    sqlite3_close_v2(handle);
    if (options.rebuildable) return Status::Corrupt(std::move(message));
    return Status::Io(std::move(message));
  }
  // From here on `db` owns the handle and closes it on every return.
  Database db(handle, path);
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, 5000);
  Result<std::string> mode = QueryText(handle, "PRAGMA journal_mode = WAL");
  if (!mode.ok()) {
    const Status& st = mode.status();
    if (!options.rebuildable) return Status::Error(st.kind(), path + ": " + st.message());
    if (st.kind() == ErrorKind::kCorrupt) return st;
    return Status::Corrupt(path + ": " + st.message());
  }
  if (*mode != "wal") return Status::Io(path + ": cannot enable WAL (journal_mode " + *mode + ")");
  Status st =
      Exec(handle, options.synchronous == Synchronous::kFull ? "PRAGMA synchronous = FULL"
                                                             : "PRAGMA synchronous = NORMAL");
  if (st.ok()) {
    st = CreateOrCheckSchema(handle, options.schema, options.application_id, options.version,
                             options.what);
  }
  if (!st.ok()) {
    if (!options.rebuildable) return Status::Error(st.kind(), path + ": " + st.message());
    if (st.kind() == ErrorKind::kNoSpace || st.kind() == ErrorKind::kIo) return st;
    return Status::Corrupt(path + ": " + st.message());
  }
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

Result<Statement> Database::PrepareCached(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return Status::Corrupt(path_ + ": schema mismatch: " + sqlite3_errmsg(db_));
  }
  return Statement(stmt);
}

Result<Statement> Database::Prepare(const char* sql, const std::string& what) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, what);
  return Statement(stmt);
}

Status SqliteStatus(sqlite3* db, int rc, const std::string& what) {
  std::string message = what + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Status::NoSpace(std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corrupt(std::move(message));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return Status::Io(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

Status Exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, sql);
  return Status::Ok();
}

// Runs a statement that returns one row and gives its first column as text.
Result<std::string> QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, sql);
  rc = sqlite3_step(stmt);
  std::string out;
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) out = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return SqliteStatus(db, rc, sql);
  return out;
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, sql);
  rc = sqlite3_step(stmt);
  const int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return SqliteStatus(db, rc, sql);
  return value;
}

void BindBlob(sqlite3_stmt* stmt, int column, const std::string& value) {
  sqlite3_bind_blob(stmt, column, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
}

void BindText(sqlite3_stmt* stmt, int column, const std::string& value) {
  sqlite3_bind_text(stmt, column, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
}

void BindInt(sqlite3_stmt* stmt, int column, uint64_t value) {
  sqlite3_bind_int64(stmt, column, static_cast<int64_t>(value));
}

std::string ColumnBlob(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

uint64_t ColumnU64(sqlite3_stmt* stmt, int column) {
  return static_cast<uint64_t>(sqlite3_column_int64(stmt, column));
}

// Steps a statement that returns no rows.
Status StepDone(sqlite3* db, sqlite3_stmt* stmt, const char* what) {
  StmtReset reset(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqliteStatus(db, rc, what);
  return Status::Ok();
}

Status CreateOrCheckSchema(sqlite3* db, const char* schema, int64_t application_id, int64_t version,
                           const std::string& what) {
  STRATA_ASSIGN_OR_RETURN(const int64_t app, QueryInt(db, "PRAGMA application_id"));
  STRATA_ASSIGN_OR_RETURN(const int64_t user_version, QueryInt(db, "PRAGMA user_version"));
  STRATA_ASSIGN_OR_RETURN(const int64_t objects,
                          QueryInt(db, "SELECT count(*) FROM sqlite_master"));
  if (app == 0 && user_version == 0 && objects == 0) {
    const std::string create = std::string("BEGIN IMMEDIATE;") + schema +
                               "PRAGMA application_id = " + std::to_string(application_id) +
                               ";PRAGMA user_version = " + std::to_string(version) + ";COMMIT;";
    Status st = Exec(db, create.c_str());
    if (!st.ok()) IgnoreError(Exec(db, "ROLLBACK"), "the create already failed");
    return st;
  }
  if (app != application_id || user_version != version) {
    return Status::Corrupt("not a " + what + " database of this version: application_id " +
                           std::to_string(app) + ", user_version " + std::to_string(user_version));
  }
  STRATA_ASSIGN_OR_RETURN(const std::string check, QueryText(db, "PRAGMA quick_check"));
  if (check != "ok") return Status::Corrupt("quick_check: " + check);
  return Status::Ok();
}

}  // namespace strata::sqlite
