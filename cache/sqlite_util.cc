#include "cache/sqlite_util.h"

namespace strata::sqlite {

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
  Result<int64_t> app = QueryInt(db, "PRAGMA application_id");
  if (!app.ok()) return app.status();
  Result<int64_t> user_version = QueryInt(db, "PRAGMA user_version");
  if (!user_version.ok()) return user_version.status();
  Result<int64_t> objects = QueryInt(db, "SELECT count(*) FROM sqlite_master");
  if (!objects.ok()) return objects.status();
  if (*app == 0 && *user_version == 0 && *objects == 0) {
    const std::string create = std::string("BEGIN IMMEDIATE;") + schema +
                               "PRAGMA application_id = " + std::to_string(application_id) +
                               ";PRAGMA user_version = " + std::to_string(version) + ";COMMIT;";
    Status st = Exec(db, create.c_str());
    if (!st.ok()) IgnoreError(Exec(db, "ROLLBACK"), "the create already failed");
    return st;
  }
  if (*app != application_id || *user_version != version) {
    return Status::Corrupt("not a " + what + " database of this version: application_id " +
                           std::to_string(*app) + ", user_version " +
                           std::to_string(*user_version));
  }
  Result<std::string> check = QueryText(db, "PRAGMA quick_check");
  if (!check.ok()) return check.status();
  if (*check != "ok") return Status::Corrupt("quick_check: " + *check);
  return Status::Ok();
}

}  // namespace strata::sqlite
