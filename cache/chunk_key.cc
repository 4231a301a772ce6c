#include "cache/chunk_key.h"

#include <xxhash.h>

#include <cstdio>

namespace strata {

std::string ChunkKey::Id() const {
  // Length-prefixed fields: ("a", "bc") and ("ab", "c") must not collide.
  std::string encoded;
  for (const std::string* field : {&bucket, &object_key, &etag}) {
    encoded += std::to_string(field->size());
    encoded += ':';
    encoded += *field;
  }
  encoded += std::to_string(chunk_size) + ':' + std::to_string(index);
  const XXH128_hash_t hash = XXH3_128bits(encoded.data(), encoded.size());
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return std::string(out, 32);
}

}  // namespace strata
