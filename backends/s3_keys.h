// S3's rule for object keys, in one place: a key is 1 to 1,024 bytes (of UTF-8). Every layer that
// creates keys (the stores, the upload queue, the filesystem building keys from paths) checks
// against the same constant.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/status.h"

namespace strata {

// S3's limit on the length of a key, in bytes.
inline constexpr size_t kMaxKeyBytes = 1024;

// Non-empty and at most kMaxKeyBytes bytes, else kInvalidArgument (with the S3 error code
// "KeyTooLongError" and HTTP 400 when too long, as S3 answers).
Status ValidateKey(std::string_view key);

}  // namespace strata
