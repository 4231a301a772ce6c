// ChunkFile: the on-disk format of one cached chunk, and how to publish and read one safely.
// Stateless functions; safe from any thread. Callers make sure that no two threads write or
// remove the same path at once (DiskTier marks such ids busy).
//
// A chunk file is a header followed by the chunk's bytes. All integers are little-endian:
//   0   magic "STRATACK"            8 bytes
//   8   format version (1)          u32
//   12  header size in bytes        u32   (= 64 + the three string lengths)
//   16  chunk_size                  u32
//   20  bucket length               u32
//   24  object key length           u32
//   28  etag length                 u32
//   32  chunk index                 u64
//   40  data length                 u64
//   48  data checksum               u64   XXH3-64 of the data
//   56  bucket, object key, etag bytes
//   ..  header checksum             u64   XXH3-64 of every header byte before it
// The header holds the full ChunkKey, so the index can be rebuilt from the files and a hash
// collision of the file name (ChunkKey::Id) is detected.
// A file is valid only if both checksums hold and its size is exactly header size + data length.
//
// Publishing writes <path>.tmp through the page cache and renames it over <path>: a reader sees
// the whole chunk or no file, never a partial one. Nothing is fsynced: the cache is not a store
// of record (S3 is). After a crash or power loss a chunk may be missing or torn; a torn one fails
// its checksums and is a miss, never bad data. Leftover *.tmp files are garbage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "cache/chunk_key.h"

namespace strata {

class ChunkFile {
 public:
  struct Header {
    ChunkKey key;
    uint64_t header_size = 0;
    uint64_t data_length = 0;
    uint64_t data_checksum = 0;
  };
  struct Contents {
    Header header;
    ChunkData data;  // verified against header.data_checksum
  };

  static constexpr std::string_view kTempSuffix = ".tmp";
  // Each of bucket, object key and etag; S3 allows far less. Longer keys cannot be cached.
  static constexpr uint32_t kMaxFieldBytes = 64 * 1024;

  // XXH3-64 of `data`: the checksum stored in the header and in the index.
  static uint64_t Checksum(std::string_view data);

  // Size of the header a chunk of `key` gets.
  static uint64_t HeaderSize(const ChunkKey& key);

  // True for names of temp files left by Write.
  static bool IsTempName(std::string_view file_name);

  // Publishes `data` as the chunk file `path` (mode 0600). Creates the parent directory (0700)
  // when missing. Returns the data checksum. On failure (kNoSpace for ENOSPC/EDQUOT, kIo
  // otherwise, kInvalidArgument for a key field over kMaxFieldBytes) the temp file is removed
  // and `path` is untouched. Not fsynced (see the top).
  [[nodiscard]] static Result<uint64_t> Write(const std::string& path, const ChunkKey& key,
                                              std::string_view data);

  // Reads and fully verifies the chunk file `path`. kNotFound when there is no such file,
  // kCorrupt when it is malformed, truncated, too long or fails a checksum, kIo otherwise.
  [[nodiscard]] static Result<Contents> Read(const std::string& path);
};

}  // namespace strata
