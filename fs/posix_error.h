// Errors with a POSIX errno of their own (EEXIST, ENOTEMPTY, ...), which the FUSE adapter returns
// as is. The kind is kInvalidArgument; the errno travels in the remote code ("errno:17").
#pragma once

#include <string>

#include "base/status.h"

namespace strata {

Status PosixError(int err, std::string message);
// The errno of a PosixError, else 0.
int PosixErrorNumber(const Status& status);

}  // namespace strata
