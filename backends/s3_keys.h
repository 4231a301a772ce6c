// S3's rules for object keys, shared by everything that accepts a key before the store sees it.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/status.h"

namespace strata {

// S3's limit on the length of a key, in bytes.
inline constexpr size_t kMaxKeyBytes = 1024;

// Non-empty and at most kMaxKeyBytes bytes, else kInvalidArgument (KeyTooLongError for a long
// key, as S3 answers).
Status ValidateKey(std::string_view key);

}  // namespace strata
