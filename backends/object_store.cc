#include "backends/object_store.h"

#include <cstring>

namespace strata {

Result<GetIntoResult> ObjectStore::GetInto(std::string_view key, const GetOptions& options,
                                           std::span<char> dest) {
  STRATA_ASSIGN_OR_RETURN(GetResult got, Get(key, options));
  if (got.body.size() > dest.size()) {
    return Status::InvalidArgument("body of " + std::to_string(got.body.size()) +
                                   " bytes does not fit a buffer of " +
                                   std::to_string(dest.size()));
  }
  std::memcpy(dest.data(), got.body.data(), got.body.size());
  return GetIntoResult{std::move(got.info), got.body.size()};
}

}  // namespace strata
