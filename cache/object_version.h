// ObjectVersion: one version of one object, as the read path knows it from a Head or a listing.
// The ETag pins the version: every chunk fetched for it is requested with If-Match, so bytes of
// a newer version are never mixed with cached bytes of this one. Value type; header only, so the
// fs layer can include it without pulling in the fetcher.
#pragma once

#include <cstdint>
#include <string>

namespace strata {

struct ObjectVersion {
  std::string bucket;
  std::string key;
  std::string etag;  // without quotes; must not be empty for reads through the chunk cache
  uint64_t size = 0;
};

}  // namespace strata
