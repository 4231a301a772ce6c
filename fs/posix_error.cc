#include "fs/posix_error.h"

#include <cerrno>

namespace strata {

int ToErrno(const Status& status) {
  switch (status.kind()) {
    case ErrorKind::kOk:
      return 0;
    case ErrorKind::kNotFound:
      return ENOENT;
    case ErrorKind::kAccessDenied:
      return EACCES;
    case ErrorKind::kInvalidArgument:
      return EINVAL;
    case ErrorKind::kNoSpace:
      return ENOSPC;
    case ErrorKind::kNotSupported:
      return ENOTSUP;
    case ErrorKind::kAlreadyExists:
      return EEXIST;
    case ErrorKind::kNotEmpty:
      return ENOTEMPTY;
    case ErrorKind::kIsDirectory:
      return EISDIR;
    case ErrorKind::kNotDirectory:
      return ENOTDIR;
    case ErrorKind::kNameTooLong:
      return ENAMETOOLONG;
    case ErrorKind::kReadOnly:
      return EROFS;
    case ErrorKind::kBadHandle:
      return EBADF;
    case ErrorKind::kTooLarge:
      return EFBIG;
    case ErrorKind::kPreconditionFailed:  // the object changed under an open file
    case ErrorKind::kTransient:           // S3 unreachable after retries
    case ErrorKind::kIo:
    case ErrorKind::kCorrupt:
    case ErrorKind::kInternal:
      return EIO;
  }
  return EIO;
}

}  // namespace strata
