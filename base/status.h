// Status and Result<T>: the error vocabulary of every layer.
//
// A Status is either OK or an error with a kind that callers branch on (not found, access
// denied, transient, ...). S3 failures keep the HTTP status, the S3 error code (or a transport
// code such as "ConnectFailed") and the server's message so the log can say what happened.
// Exceptions never cross a module boundary; fallible calls return Status or Result<T>.
// Status and Result are values: copy them freely, share them across threads read-only.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace strata {

// The numeric values are stored (the upload queue database keeps the kind of an entry's last
// error): append new kinds at the end, never reorder.
enum class ErrorKind {
  kOk,
  kNotFound,            // no such key, bucket or upload
  kAccessDenied,        // 403: wrong secret, unknown access key, missing permission
  kPreconditionFailed,  // If-Match / If-None-Match did not hold (412)
  kInvalidArgument,     // the request can never succeed as written (400, 416, bad option)
  kTransient,           // 5xx, 429, SlowDown, RequestTimeout, reset, refused, timeout: retry
  kNoSpace,             // local disk full
  kIo,                  // local I/O error
  kCorrupt,             // data failed a checksum or a file is malformed
  kNotSupported,        // the operation is not available on this store
  kInternal,            // anything else; a bug or an unexpected answer
  // Filesystem outcomes, for the errno a file operation must answer with.
  kAlreadyExists,  // the name is taken (EEXIST)
  kNotEmpty,       // a directory still has entries (ENOTEMPTY)
  kIsDirectory,    // a file operation on a directory (EISDIR)
  kNotDirectory,   // a directory operation on a file, or a file in the middle of a path (ENOTDIR)
  kNameTooLong,    // a name or the key built from a path is over a limit (ENAMETOOLONG)
  kReadOnly,       // a change on a read-only mount (EROFS)
  kBadHandle,      // a handle used for what it was not opened for (EBADF)
  kTooLarge,       // a file size beyond what the store can hold (EFBIG)
};

// Stable lower-case name of a kind, for logs and tests ("not found", "transient", ...).
std::string_view ErrorKindName(ErrorKind kind);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status Error(ErrorKind kind, std::string message) {
    return Status(kind, std::move(message));
  }
  static Status NotFound(std::string m) { return Error(ErrorKind::kNotFound, std::move(m)); }
  static Status AccessDenied(std::string m) {
    return Error(ErrorKind::kAccessDenied, std::move(m));
  }
  static Status PreconditionFailed(std::string m) {
    return Error(ErrorKind::kPreconditionFailed, std::move(m));
  }
  static Status InvalidArgument(std::string m) {
    return Error(ErrorKind::kInvalidArgument, std::move(m));
  }
  static Status Transient(std::string m) { return Error(ErrorKind::kTransient, std::move(m)); }
  static Status NoSpace(std::string m) { return Error(ErrorKind::kNoSpace, std::move(m)); }
  static Status Io(std::string m) { return Error(ErrorKind::kIo, std::move(m)); }
  static Status Corrupt(std::string m) { return Error(ErrorKind::kCorrupt, std::move(m)); }
  static Status NotSupported(std::string m) {
    return Error(ErrorKind::kNotSupported, std::move(m));
  }
  static Status Internal(std::string m) { return Error(ErrorKind::kInternal, std::move(m)); }
  static Status AlreadyExists(std::string m) {
    return Error(ErrorKind::kAlreadyExists, std::move(m));
  }
  static Status NotEmpty(std::string m) { return Error(ErrorKind::kNotEmpty, std::move(m)); }
  static Status IsDirectory(std::string m) { return Error(ErrorKind::kIsDirectory, std::move(m)); }
  static Status NotDirectory(std::string m) {
    return Error(ErrorKind::kNotDirectory, std::move(m));
  }
  static Status NameTooLong(std::string m) { return Error(ErrorKind::kNameTooLong, std::move(m)); }
  static Status ReadOnly(std::string m) { return Error(ErrorKind::kReadOnly, std::move(m)); }
  static Status BadHandle(std::string m) { return Error(ErrorKind::kBadHandle, std::move(m)); }
  static Status TooLarge(std::string m) { return Error(ErrorKind::kTooLarge, std::move(m)); }

  // Attaches what the server said. `code` is the S3 error code ("NoSuchKey",
  // "SignatureDoesNotMatch") or a transport code ("ConnectFailed", "Timeout").
  Status&& WithRemote(int http_status, std::string code) && {
    http_status_ = http_status;
    code_ = std::move(code);
    return std::move(*this);
  }

  bool ok() const { return kind_ == ErrorKind::kOk; }
  ErrorKind kind() const { return kind_; }
  // Retryable errors are exactly the transient ones.
  bool retryable() const { return kind_ == ErrorKind::kTransient; }
  bool IsNotFound() const { return kind_ == ErrorKind::kNotFound; }
  const std::string& message() const { return message_; }
  const std::string& code() const { return code_; }  // empty when not from a remote
  int http_status() const { return http_status_; }   // 0 when no HTTP response

  // "not found: NoSuchKey (HTTP 404): The specified key does not exist."
  std::string ToString() const;

 private:
  Status(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  ErrorKind kind_ = ErrorKind::kOk;
  std::string message_;
  std::string code_;
  int http_status_ = 0;
};

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result is built from an error Status or a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }  // OK when a value is held

  // REQUIRES: ok()
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

// Makes ignoring an error explicit and searchable: IgnoreError(st, "temp cleanup").
inline void IgnoreError(const Status& /*status*/, std::string_view /*why*/) {}

}  // namespace strata

// Returns early from a function returning Status or Result<T> when `expr` fails.
#define STRATA_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::strata::Status strata_status_ = (expr);        \
    if (!strata_status_.ok()) return strata_status_; \
  } while (0)

#define STRATA_STATUS_CONCAT_INNER_(a, b) a##b
#define STRATA_STATUS_CONCAT_(a, b) STRATA_STATUS_CONCAT_INNER_(a, b)

// Evaluates `rexpr`, a Result<T>; on error returns its Status from the enclosing function (which
// returns Status or some Result<U>), else moves the value into `lhs`, which may declare a
// variable:
//   STRATA_ASSIGN_OR_RETURN(auto page, store.List(options));
//   STRATA_ASSIGN_OR_RETURN(info, store.Head(key));  // assigns an existing variable
// Expands to several statements: not usable as the body of an unbraced if/else. A `lhs` with a
// comma in it (std::pair<int, int> p) needs parentheses around the type or an alias.
#define STRATA_ASSIGN_OR_RETURN(lhs, rexpr) \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_STATUS_CONCAT_(strata_result_, __COUNTER__), lhs, rexpr)
#define STRATA_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                  \
  if (!result.ok()) return result.status();               \
  lhs = std::move(result).value()
