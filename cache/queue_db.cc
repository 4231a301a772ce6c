#include "cache/queue_db.h"

#include <sqlite3.h>

#include <charconv>
#include <utility>

#include "cache/sqlite_util.h"

namespace strata {
namespace {

constexpr int kApplicationId = 0x53545551;  // "STUQ"
constexpr int kSchemaVersion = 1;

// A kSetMetadata row (op 4, added after version 1 shipped) reuses the columns of a put: the new
// user metadata in `metadata`, the ETag it is based on in `if_match`, the object's size in
// `size`; `data_file` and `content_type` are empty. The schema did not change, so a database of
// an older build opens and replays as it is; an older build refuses a database holding op 4
// (kCorrupt: unknown op) instead of dropping the change.

constexpr const char* kSchema =
    "CREATE TABLE entries ("
    " seq INTEGER PRIMARY KEY NOT NULL,"
    " op INTEGER NOT NULL,"
    " key BLOB NOT NULL,"
    " source BLOB NOT NULL,"
    " data_file TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " content_type BLOB NOT NULL,"
    " metadata BLOB NOT NULL,"
    " if_match BLOB NOT NULL,"
    " if_none_match INTEGER NOT NULL,"
    " enqueued_ms INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " error_kind INTEGER NOT NULL,"
    " last_error TEXT NOT NULL,"
    " upload_id TEXT NOT NULL,"
    " part_size INTEGER NOT NULL"
    ");"
    "CREATE TABLE parts ("
    " seq INTEGER NOT NULL,"
    " number INTEGER NOT NULL,"
    " etag TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " PRIMARY KEY (seq, number)"
    ") WITHOUT ROWID;"
    "CREATE TABLE counters ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value INTEGER NOT NULL"
    ") WITHOUT ROWID;";

using namespace sqlite;  // the helpers of cache/sqlite_util.h

// Metadata as one blob: for each pair "<name length>:<name><value length>:<value>", so any
// byte survives.
std::string EncodeMetadata(const Metadata& metadata) {
  std::string out;
  for (const auto& [name, value] : metadata) {
    out += std::to_string(name.size()) + ':' + name;
    out += std::to_string(value.size()) + ':' + value;
  }
  return out;
}

bool DecodeField(std::string_view& in, std::string* field) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos) return false;
  size_t length = 0;
  const auto [end, ec] = std::from_chars(in.data(), in.data() + colon, length);
  if (ec != std::errc() || end != in.data() + colon || length > in.size() - colon - 1) {
    return false;
  }
  *field = std::string(in.substr(colon + 1, length));
  in.remove_prefix(colon + 1 + length);
  return true;
}

Result<Metadata> DecodeMetadata(std::string_view in) {
  Metadata metadata;
  while (!in.empty()) {
    std::string name;
    std::string value;
    if (!DecodeField(in, &name) || !DecodeField(in, &value)) {
      return Status::Corrupt("malformed metadata in the upload queue database");
    }
    metadata.emplace(std::move(name), std::move(value));
  }
  return metadata;
}

ErrorKind KindFromInt(int64_t value) {
  if (value < static_cast<int64_t>(ErrorKind::kOk) ||
      value > static_cast<int64_t>(ErrorKind::kTooLarge)) {
    return ErrorKind::kInternal;
  }
  return static_cast<ErrorKind>(value);
}

}  // namespace

Result<std::unique_ptr<QueueDb>> QueueDb::Open(const std::string& path) {
  // FULL: the WAL is fsynced at every commit. An enqueue is acknowledged at its commit.
  STRATA_ASSIGN_OR_RETURN(Database db, Database::Open(path, {.synchronous = Synchronous::kFull,
                                                             .schema = kSchema,
                                                             .application_id = kApplicationId,
                                                             .version = kSchemaVersion,
                                                             .what = "upload queue",
                                                             .rebuildable = false}));
  std::unique_ptr<QueueDb> queue_db(new QueueDb(std::move(db)));
  MutexLock lock(queue_db->mu_);
  STRATA_RETURN_IF_ERROR(queue_db->Prepare());
  return queue_db;
}

QueueDb::QueueDb(Database db) : db_(std::move(db)) {}

QueueDb::~QueueDb() = default;

Status QueueDb::Prepare() {
  STRATA_ASSIGN_OR_RETURN(
      insert_,
      db_.PrepareCached(
          "INSERT INTO entries (seq, op, key, source, data_file, size, content_type, metadata,"
          " if_match, if_none_match, enqueued_ms, state, attempts, error_kind, last_error,"
          " upload_id, part_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
          " ?14, ?15, ?16, ?17)"));
  STRATA_ASSIGN_OR_RETURN(remove_entry_, db_.PrepareCached("DELETE FROM entries WHERE seq = ?1"));
  STRATA_ASSIGN_OR_RETURN(remove_parts_, db_.PrepareCached("DELETE FROM parts WHERE seq = ?1"));
  STRATA_ASSIGN_OR_RETURN(
      set_outcome_,
      db_.PrepareCached("UPDATE entries SET state = ?2, attempts = ?3, error_kind = ?4,"
                        " last_error = ?5 WHERE seq = ?1"));
  STRATA_ASSIGN_OR_RETURN(
      requeue_, db_.PrepareCached("UPDATE entries SET state = 0, attempts = 0 WHERE seq = ?1"));
  STRATA_ASSIGN_OR_RETURN(
      set_upload_,
      db_.PrepareCached("UPDATE entries SET upload_id = ?2, part_size = ?3 WHERE seq = ?1"));
  STRATA_ASSIGN_OR_RETURN(
      add_part_,
      db_.PrepareCached(
          "INSERT OR REPLACE INTO parts (seq, number, etag, size) VALUES (?1, ?2, ?3, ?4)"));
  STRATA_ASSIGN_OR_RETURN(
      set_next_seq_,
      db_.PrepareCached("INSERT OR REPLACE INTO counters (name, value) VALUES ('next_seq', ?1)"));
  return Status::Ok();
}

Result<QueueDb::Contents> QueueDb::Load() {
  MutexLock lock(mu_);
  Contents contents;
  STRATA_ASSIGN_OR_RETURN(
      const int64_t next,
      QueryInt(db_.get(), "SELECT coalesce(max(value), 0) FROM counters WHERE name = 'next_seq'"));
  contents.next_seq = static_cast<uint64_t>(next);

  static constexpr const char* kEntries =
      "SELECT seq, op, key, source, data_file, size, content_type, metadata, if_match,"
      " if_none_match, enqueued_ms, state, attempts, error_kind, last_error, upload_id,"
      " part_size FROM entries ORDER BY seq";
  STRATA_ASSIGN_OR_RETURN(Statement entries, db_.Prepare(kEntries, "load queue"));
  sqlite3_stmt* stmt = entries;
  int rc;
  Status st;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    QueueRecord r;
    r.seq = ColumnU64(stmt, 0);
    const int64_t op = sqlite3_column_int64(stmt, 1);
    if (op < static_cast<int>(QueueOp::kPut) || op > static_cast<int>(QueueOp::kSetMetadata)) {
      st = Status::Corrupt("queue entry " + std::to_string(r.seq) + " has unknown op " +
                           std::to_string(op));
      break;
    }
    r.op = static_cast<QueueOp>(op);
    r.key = ColumnBlob(stmt, 2);
    r.source = ColumnBlob(stmt, 3);
    r.data_file = ColumnText(stmt, 4);
    r.size = ColumnU64(stmt, 5);
    r.options.content_type = ColumnBlob(stmt, 6);
    Result<Metadata> metadata = DecodeMetadata(ColumnBlob(stmt, 7));
    if (!metadata.ok()) {
      st = metadata.status();
      break;
    }
    r.options.metadata = std::move(metadata).value();
    r.options.if_match = ColumnBlob(stmt, 8);
    r.options.if_none_match = sqlite3_column_int64(stmt, 9) != 0;
    r.enqueued_unix_ms = sqlite3_column_int64(stmt, 10);
    r.state = sqlite3_column_int64(stmt, 11) == 1 ? QueueState::kDead : QueueState::kPending;
    r.attempts = static_cast<uint32_t>(sqlite3_column_int64(stmt, 12));
    r.error_kind = KindFromInt(sqlite3_column_int64(stmt, 13));
    r.last_error = ColumnText(stmt, 14);
    r.upload_id = ColumnText(stmt, 15);
    r.part_size = ColumnU64(stmt, 16);
    contents.records.push_back(std::move(r));
  }
  if (st.ok() && rc != SQLITE_DONE) st = SqliteStatus(db_.get(), rc, "load queue");
  if (!st.ok()) return st;

  STRATA_ASSIGN_OR_RETURN(
      Statement parts,
      db_.Prepare("SELECT seq, number, etag, size FROM parts ORDER BY seq, number", "load parts"));
  stmt = parts;
  size_t next_record = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const uint64_t seq = ColumnU64(stmt, 0);
    // Both lists are sorted by seq: walk them together. Parts of unknown rows are ignored.
    while (next_record < contents.records.size() && contents.records[next_record].seq < seq) {
      ++next_record;
    }
    if (next_record == contents.records.size() || contents.records[next_record].seq != seq) {
      continue;
    }
    PartInfo part;
    part.part_number = static_cast<int>(sqlite3_column_int64(stmt, 1));
    part.etag = ColumnText(stmt, 2);
    part.size = ColumnU64(stmt, 3);
    contents.records[next_record].parts.push_back(std::move(part));
  }
  if (rc != SQLITE_DONE) return SqliteStatus(db_.get(), rc, "load parts");
  return contents;
}

Status QueueDb::InsertRow(const QueueRecord& r) {
  const std::string metadata = EncodeMetadata(r.options.metadata);
  BindInt(insert_, 1, r.seq);
  sqlite3_bind_int64(insert_, 2, static_cast<int>(r.op));
  BindBlob(insert_, 3, r.key);
  BindBlob(insert_, 4, r.source);
  BindText(insert_, 5, r.data_file);
  BindInt(insert_, 6, r.size);
  BindBlob(insert_, 7, r.options.content_type);
  BindBlob(insert_, 8, metadata);
  BindBlob(insert_, 9, r.options.if_match);
  sqlite3_bind_int64(insert_, 10, r.options.if_none_match ? 1 : 0);
  sqlite3_bind_int64(insert_, 11, r.enqueued_unix_ms);
  sqlite3_bind_int64(insert_, 12, static_cast<int>(r.state));
  sqlite3_bind_int64(insert_, 13, r.attempts);
  sqlite3_bind_int64(insert_, 14, static_cast<int>(r.error_kind));
  BindText(insert_, 15, r.last_error);
  BindText(insert_, 16, r.upload_id);
  BindInt(insert_, 17, r.part_size);
  return StepDone(db_.get(), insert_, "insert queue entry");
}

Status QueueDb::RemoveRow(uint64_t seq) {
  BindInt(remove_parts_, 1, seq);
  STRATA_RETURN_IF_ERROR(StepDone(db_.get(), remove_parts_, "remove queue parts"));
  BindInt(remove_entry_, 1, seq);
  return StepDone(db_.get(), remove_entry_, "remove queue entry");
}

Status QueueDb::Apply(const Batch& batch) {
  if (batch.inserts.empty() && batch.removes.empty() && batch.next_seq == 0) return Status::Ok();
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    for (uint64_t seq : batch.removes) STRATA_RETURN_IF_ERROR(RemoveRow(seq));
    for (const QueueRecord& record : batch.inserts) STRATA_RETURN_IF_ERROR(InsertRow(record));
    if (batch.next_seq != 0) {
      BindInt(set_next_seq_, 1, batch.next_seq);
      STRATA_RETURN_IF_ERROR(StepDone(db_.get(), set_next_seq_, "store next sequence number"));
    }
    return Status::Ok();
  });
}

Status QueueDb::SetOutcome(uint64_t seq, QueueState state, uint32_t attempts, const Status& error) {
  const std::string message = error.ToString();
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    BindInt(set_outcome_, 1, seq);
    sqlite3_bind_int64(set_outcome_, 2, static_cast<int>(state));
    sqlite3_bind_int64(set_outcome_, 3, attempts);
    sqlite3_bind_int64(set_outcome_, 4, static_cast<int>(error.kind()));
    BindText(set_outcome_, 5, message);
    return StepDone(db_.get(), set_outcome_, "store queue entry outcome");
  });
}

Status QueueDb::Requeue(const std::vector<uint64_t>& seqs) {
  if (seqs.empty()) return Status::Ok();
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    for (uint64_t seq : seqs) {
      BindInt(requeue_, 1, seq);
      STRATA_RETURN_IF_ERROR(StepDone(db_.get(), requeue_, "requeue queue entry"));
    }
    return Status::Ok();
  });
}

Status QueueDb::SetUpload(uint64_t seq, const std::string& upload_id, uint64_t part_size) {
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    BindInt(remove_parts_, 1, seq);
    STRATA_RETURN_IF_ERROR(StepDone(db_.get(), remove_parts_, "forget queue parts"));
    BindInt(set_upload_, 1, seq);
    BindText(set_upload_, 2, upload_id);
    BindInt(set_upload_, 3, part_size);
    return StepDone(db_.get(), set_upload_, "store multipart upload id");
  });
}

Status QueueDb::AddPart(uint64_t seq, const PartInfo& part) {
  MutexLock lock(mu_);
  return db_.InTransaction([&]() -> Status {
    mu_.AssertHeld();  // the body runs inside InTransaction, under `lock`
    BindInt(add_part_, 1, seq);
    sqlite3_bind_int64(add_part_, 2, part.part_number);
    BindText(add_part_, 3, part.etag);
    BindInt(add_part_, 4, part.size);
    return StepDone(db_.get(), add_part_, "store multipart part");
  });
}

uint64_t QueueDb::commits() {
  MutexLock lock(mu_);
  return db_.commits();
}

}  // namespace strata
