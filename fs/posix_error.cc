#include "fs/posix_error.h"

#include <cstdlib>

namespace strata {

Status PosixError(int err, std::string message) {
  return Status::InvalidArgument(std::move(message)).WithRemote(0, "errno:" + std::to_string(err));
}

int PosixErrorNumber(const Status& status) {
  if (!status.code().starts_with("errno:")) return 0;
  return std::atoi(status.code().c_str() + 6);
}

}  // namespace strata
