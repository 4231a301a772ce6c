// SQLite helpers shared by the cache's two databases (the chunk index and the upload queue):
// one way to open a database (Database: WAL, busy timeout, synchronous level, schema check),
// prepared statements that finalize themselves (Statement), transactions, result codes as Status,
// one-shot queries, binding and reading columns, statement reset.
// Not thread-safe: the owner of a Database serializes its use (one connection,
// SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace strata::sqlite {

// A prepared statement, finalized when destroyed. Converts to sqlite3_stmt* so that it passes
// straight to sqlite3_* calls and the helpers below.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  sqlite3_stmt* get() const { return stmt_; }
  operator sqlite3_stmt*() const { return stmt_; }  // NOLINT: implicit by design

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

enum class Synchronous {
  kNormal,  // a commit survives a process crash at once, a power loss at the next checkpoint
  kFull,    // the WAL is fsynced at every commit: a commit survives a power loss
};

struct OpenOptions {
  Synchronous synchronous = Synchronous::kFull;
  // Created in a new, empty database and stamped with application_id and version; an existing
  // database must carry both and pass PRAGMA quick_check (see CreateOrCheckSchema).
  const char* schema = "";
  int64_t application_id = 0;
  int64_t version = 0;
  std::string what;  // "chunk index", for messages
  // A database that can be rebuilt from elsewhere (the chunk index): every failure that is not
  // plainly the disk's (kNoSpace, kIo) is reported as kCorrupt, so that the caller moves the file
  // aside and starts afresh; a file that cannot be opened at all is kCorrupt too. Otherwise
  // (the upload queue, which cannot be rebuilt) failures keep the kind SQLite gives them, and a
  // file that cannot be opened is kIo.
  bool rebuildable = false;
};

// One connection to a database file. Movable, not copyable; closed when destroyed (after the
// statements prepared on it are finalized).
class Database {
 public:
  // Opens `path` read-write, creating it when missing, with extended result codes, a 5 s busy
  // timeout, journal_mode WAL (kIo when the database refuses it) and options.synchronous, then
  // creates or checks the schema. Error messages name `path`.
  static Result<Database> Open(const std::string& path, const OpenOptions& options);

  Database(Database&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)),
        path_(std::move(other.path_)),
        commits_(other.commits_) {}
  Database& operator=(Database&&) = delete;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  sqlite3* get() const { return db_; }
  const std::string& path() const { return path_; }

  // Prepares a statement kept for the life of the connection (SQLITE_PREPARE_PERSISTENT).
  // kCorrupt "PATH: schema mismatch: ..." when it does not compile against the tables.
  Result<Statement> PrepareCached(const char* sql);
  // Prepares a statement run once; failures as SqliteStatus(..., what).
  Result<Statement> Prepare(const char* sql, const std::string& what);

  // Runs `body` (returning Status) between BEGIN IMMEDIATE and COMMIT, rolling back when it or
  // the commit fails, and returns its error or the commit's.
  template <typename Body>
  Status InTransaction(const Body& body);

  // Write transactions committed by InTransaction since Open.
  uint64_t commits() const { return commits_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  uint64_t commits_ = 0;
};

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
  ~StmtReset();
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

template <typename Body>
Status Database::InTransaction(const Body& body) {
  STRATA_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  Status st = body();
  if (st.ok()) st = Exec(db_, "COMMIT");
  if (!st.ok()) {
    IgnoreError(Exec(db_, "ROLLBACK"), "the transaction already failed; nothing was committed");
    return st;
  }
  ++commits_;
  return Status::Ok();
}

}  // namespace strata::sqlite
