// ChunkFile: the on-disk format of one cached chunk, and how to publish and read one safely.
// Stateless functions; safe from any thread. Callers make sure that no two threads write or
// remove the same path at once (DiskTier marks such ids busy).
//
// A chunk file is a header followed by the chunk's bytes. All integers are little-endian:
//   0   magic "STRATACK"            8 bytes
//   8   format version (3)          u32
//   12  header size in bytes        u32   (= 64 + the three string lengths + 8 * block count,
//                                          rounded up to a multiple of 4096)
//   16  chunk_size                  u32
//   20  bucket length               u32
//   24  object key length           u32
//   28  etag length                 u32
//   32  chunk index                 u64
//   40  data length                 u64
//   48  block size                  u32   (kBlockSize when written; any value > 0 is read)
//   52  block count                 u32   = ceil(data length / block size)
//   56  bucket, object key, etag bytes
//   ..  block checksums             u64 each, XXH3-64 of each block of data (the last one may be
//                                   shorter)
//   ..  zero bytes                  up to the header size minus 8
//   ..  header checksum             u64   XXH3-64 of every header byte before it
// The data starts at a multiple of 4096 (AlignedBuffer::kAlignment), so that whole chunks are
// written and read with O_DIRECT (see below).
// The header holds the full ChunkKey, so the index can be rebuilt from the files and a hash
// collision of the file name (ChunkKey::Id) is detected. Files of another format version
// (version 1 had one checksum over all the data, version 2 no padding) are kCorrupt: for a
// cache, a miss.
//
// Blocks: every block of data has its own checksum, so a read of a few bytes reads and
// verifies the header and only the blocks that cover them (ReadRange), not the whole chunk.
// kBlockSize is 64 KiB: a 4 KiB random read then reads and hashes 64 KiB (tens of
// microseconds, against milliseconds for an 8 MiB chunk), while an 8 MiB chunk needs only 128
// checksums (1 KiB, so the header of a usual key still fits in the first 4 KiB read). 128 KiB
// would halve the table and double the bytes each random read pays for; 64 KiB is also the
// size of the ranged GET that serves a cold first read (ChunkFetcher::Options::block_size).
// A file is valid only if the header checksum and every block checksum hold and its size is
// exactly header size + data length; ReadRange checks the size, the header and the blocks it
// reads, so a torn block elsewhere in the file is found by the read that needs it.
//
// Publishing writes <path>.tmp and renames it over <path>: a reader sees the whole chunk or no
// file, never a partial one. Whole chunks are written and read (Read) with O_DIRECT: the chunk
// is in memory already (the memory tier holds it), so a copy in the page cache is a second copy
// of the same bytes, and copying into and out of the page cache was most of the daemon's CPU on
// sequential reads (perf). Data not aligned in memory, and filesystems without O_DIRECT (or
// with other alignment rules), go through the page cache. ReadRange always uses the page cache,
// which serves repeated small reads of the same blocks. Nothing is fsynced: the cache is not a
// store of record (S3 is). After a crash or power loss a chunk may be missing or torn; a torn one
// fails its checksums and is a miss, never bad data. Leftover *.tmp files are garbage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "cache/chunk_key.h"

namespace strata {

class ChunkFile {
 public:
  struct Header {
    ChunkKey key;
    uint64_t header_size = 0;
    uint64_t data_length = 0;
    uint64_t block_size = 0;
    std::vector<uint64_t> block_checksums;  // one per block, in order
    // XXH3-64 of the block checksum table: a digest of the whole data (for the index).
    uint64_t data_checksum = 0;
  };
  struct Contents {
    Header header;
    ChunkData data;  // every block verified
  };
  // Part of a chunk's data: the whole blocks covering a requested range, verified.
  struct Range {
    Header header;
    ChunkData blocks;          // data bytes [first_block * block size, ...) of the chunk
    size_t offset = 0;         // where the requested bytes start within `blocks`
    uint64_t block_count = 0;  // blocks read (and verified)
  };

  static constexpr std::string_view kTempSuffix = ".tmp";
  static constexpr uint32_t kBlockSize = 64 * 1024;  // why 64 KiB: see the top
  // Each of bucket, object key and etag; S3 allows far less. Longer keys cannot be cached.
  static constexpr uint32_t kMaxFieldBytes = 64 * 1024;

  // XXH3-64 of `data`.
  static uint64_t Checksum(std::string_view data);

  // Size of the header a chunk of `key` with `data_length` bytes gets.
  static uint64_t HeaderSize(const ChunkKey& key, uint64_t data_length);

  // True for names of temp files left by Write.
  static bool IsTempName(std::string_view file_name);

  // Publishes `data` as the chunk file `path` (mode 0600). Creates the parent directory (0700)
  // when missing. Returns the data checksum (Header::data_checksum). On failure (kNoSpace for
  // ENOSPC/EDQUOT, kIo otherwise, kInvalidArgument for a key field over kMaxFieldBytes) the temp
  // file is removed and `path` is untouched. Not fsynced (see the top).
  [[nodiscard]] static Result<uint64_t> Write(const std::string& path, const ChunkKey& key,
                                              std::string_view data);

  // Reads and fully verifies the chunk file `path`. kNotFound when there is no such file,
  // kCorrupt when it is malformed, truncated, too long or fails a checksum, kIo otherwise.
  [[nodiscard]] static Result<Contents> Read(const std::string& path);

  // Reads the header of `path` and only the blocks covering data bytes [offset, offset +
  // length), verifying the header, the file size and each block read. Errors as Read, and
  // kInvalidArgument when the range is empty or does not lie within the chunk's data.
  [[nodiscard]] static Result<Range> ReadRange(const std::string& path, uint64_t offset,
                                               uint64_t length);
};

}  // namespace strata
