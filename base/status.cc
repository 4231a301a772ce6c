#include "base/status.h"

namespace strata {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
      return "ok";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kAccessDenied:
      return "access denied";
    case ErrorKind::kPreconditionFailed:
      return "precondition failed";
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kTransient:
      return "transient";
    case ErrorKind::kNoSpace:
      return "no space";
    case ErrorKind::kIo:
      return "i/o error";
    case ErrorKind::kCorrupt:
      return "corrupt";
    case ErrorKind::kNotSupported:
      return "not supported";
    case ErrorKind::kInternal:
      return "internal";
    case ErrorKind::kAlreadyExists:
      return "already exists";
    case ErrorKind::kNotEmpty:
      return "not empty";
    case ErrorKind::kIsDirectory:
      return "is a directory";
    case ErrorKind::kNotDirectory:
      return "not a directory";
    case ErrorKind::kNameTooLong:
      return "name too long";
    case ErrorKind::kReadOnly:
      return "read-only";
    case ErrorKind::kBadHandle:
      return "bad handle";
    case ErrorKind::kTooLarge:
      return "file too large";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(ErrorKindName(kind_));
  if (!code_.empty()) {
    out += ": ";
    out += code_;
  }
  if (http_status_ != 0) out += " (HTTP " + std::to_string(http_status_) + ")";
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace strata
