#include "backends/s3_keys.h"

namespace strata {

Status ValidateKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty key");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("key longer than 1024 bytes").WithRemote(400, "KeyTooLongError");
  }
  return Status::Ok();
}

}  // namespace strata
