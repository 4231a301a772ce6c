// SQLite helpers shared by the cache's two databases (the chunk index and the upload queue):
// result codes as Status, one-shot queries, binding and reading columns, statement reset.
// Plain functions over sqlite3 handles; thread-safety is that of the handle passed in.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "base/status.h"

namespace strata::sqlite {

// SQLITE_FULL -> kNoSpace, CORRUPT/NOTADB -> kCorrupt, IOERR/CANTOPEN -> kIo, else kInternal.
Status SqliteStatus(sqlite3* db, int rc, const std::string& what);
Status Exec(sqlite3* db, const char* sql);
// Runs a statement that returns one row and gives its first column.
Result<std::string> QueryText(sqlite3* db, const char* sql);
Result<int64_t> QueryInt(sqlite3* db, const char* sql);
// The bound value must outlive the statement's next step (SQLITE_STATIC).
void BindBlob(sqlite3_stmt* stmt, int column, const std::string& value);
void BindText(sqlite3_stmt* stmt, int column, const std::string& value);
void BindInt(sqlite3_stmt* stmt, int column, uint64_t value);
std::string ColumnBlob(sqlite3_stmt* stmt, int column);
std::string ColumnText(sqlite3_stmt* stmt, int column);
uint64_t ColumnU64(sqlite3_stmt* stmt, int column);

// Resets a cached statement when the scope ends, so it can run again.
class StmtReset {
 public:
  explicit StmtReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtReset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtReset(const StmtReset&) = delete;
  StmtReset& operator=(const StmtReset&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Creates `schema` in a new, empty database and stamps it with `application_id` and `version`,
// or checks that an existing database carries them (kCorrupt when it does not, naming `what`)
// and passes PRAGMA quick_check.
Status CreateOrCheckSchema(sqlite3* db, const char* schema, int64_t application_id, int64_t version,
                           const std::string& what);

// Steps a statement that returns no rows.
Status StepDone(sqlite3* db, sqlite3_stmt* stmt, const char* what);

}  // namespace strata::sqlite
