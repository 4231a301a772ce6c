// The errno a Status becomes at the POSIX boundary: by its kind alone (kNotFound -> ENOENT,
// kAlreadyExists -> EEXIST, transient S3 trouble -> EIO, ...). The FUSE adapter answers with it;
// tests check filesystem errors through it.
#pragma once

#include "base/status.h"

namespace strata {

int ToErrno(const Status& status);

}  // namespace strata
