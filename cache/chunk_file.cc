#include "cache/chunk_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "base/posix_file.h"

namespace strata {
namespace {

constexpr std::string_view kMagic = "STRATACK";
constexpr uint32_t kVersion = 3;
constexpr uint64_t kFixedHeaderBytes = 56;  // everything before the strings
constexpr uint64_t kBlockChecksumBytes = 8;
constexpr uint64_t kHeaderChecksumBytes = 8;
constexpr uint64_t kAlign = AlignedBuffer::kAlignment;  // of the header size, for O_DIRECT
constexpr uint64_t kFirstReadBytes = kAlign;            // enough for the header of any real key

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(std::string_view in, size_t offset) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[offset + i]);
  return v;
}

uint64_t GetU64(std::string_view in, size_t offset) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[offset + i]);
  return v;
}

uint64_t BlockCount(uint64_t data_length, uint64_t block_size) {
  return data_length / block_size + (data_length % block_size != 0 ? 1 : 0);
}

// The block checksum table as stored: u64 little-endian each.
std::string EncodeChecksums(const std::vector<uint64_t>& checksums) {
  std::string out;
  out.reserve(checksums.size() * kBlockChecksumBytes);
  for (uint64_t checksum : checksums) PutU64(&out, checksum);
  return out;
}

// Encodes the header of `data` (block checksums computed here) and sets *data_checksum.
std::string EncodeHeader(const ChunkKey& key, std::string_view data, uint64_t* data_checksum) {
  std::vector<uint64_t> checksums;
  checksums.reserve(BlockCount(data.size(), ChunkFile::kBlockSize));
  for (size_t at = 0; at < data.size(); at += ChunkFile::kBlockSize) {
    checksums.push_back(ChunkFile::Checksum(data.substr(at, ChunkFile::kBlockSize)));
  }
  const std::string table = EncodeChecksums(checksums);
  *data_checksum = ChunkFile::Checksum(table);
  std::string out;
  out.reserve(ChunkFile::HeaderSize(key, data.size()));
  out.append(kMagic);
  PutU32(&out, kVersion);
  PutU32(&out, static_cast<uint32_t>(ChunkFile::HeaderSize(key, data.size())));
  PutU32(&out, key.chunk_size);
  PutU32(&out, static_cast<uint32_t>(key.bucket.size()));
  PutU32(&out, static_cast<uint32_t>(key.object_key.size()));
  PutU32(&out, static_cast<uint32_t>(key.etag.size()));
  PutU64(&out, key.index);
  PutU64(&out, data.size());
  PutU32(&out, ChunkFile::kBlockSize);
  PutU32(&out, static_cast<uint32_t>(checksums.size()));
  out.append(key.bucket);
  out.append(key.object_key);
  out.append(key.etag);
  out.append(table);
  out.resize(ChunkFile::HeaderSize(key, data.size()) - kHeaderChecksumBytes, '\0');  // padding
  PutU64(&out, ChunkFile::Checksum(out));
  return out;
}

// Checks `bytes`, the data of blocks first_block, first_block + 1, ... against the header.
Status VerifyBlocks(const ChunkFile::Header& header, uint64_t first_block, std::string_view bytes,
                    const std::string& path) {
  uint64_t block = first_block;
  for (size_t at = 0; at < bytes.size(); at += header.block_size, ++block) {
    if (ChunkFile::Checksum(bytes.substr(at, header.block_size)) != header.block_checksums[block]) {
      return Status::Corrupt(path + ": checksum mismatch in block " + std::to_string(block));
    }
  }
  return Status::Ok();
}

// Reads exactly `length` bytes at `offset` into `out`; a shorter file is corrupt.
Status PreadAll(int fd, uint64_t offset, uint64_t length, const std::string& path, char* out) {
  STRATA_ASSIGN_OR_RETURN(const size_t n, ReadFull(fd, offset, std::span<char>(out, length), path));
  if (n < length) return Status::Corrupt(path + " is truncated");
  return Status::Ok();
}

Status WriteAllV(int fd, std::string_view first, std::string_view second, const std::string& path) {
  while (!first.empty() || !second.empty()) {
    iovec iov[2] = {{const_cast<char*>(first.data()), first.size()},
                    {const_cast<char*>(second.data()), second.size()}};
    const ssize_t n = ::writev(fd, iov, 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write " + path);
    }
    size_t written = static_cast<size_t>(n);
    const size_t from_first = std::min(written, first.size());
    first.remove_prefix(from_first);
    second.remove_prefix(written - from_first);
  }
  return Status::Ok();
}

// Reads up to `length` bytes at `offset` (a multiple of kAlign) into `out`, which has room for
// RoundUp(length) bytes, asking for whole kAlign units as O_DIRECT needs; works on any fd.
// Returns the bytes of the `length` read: fewer only at the end of the file. kNotSupported for
// EINVAL: a filesystem that took O_DIRECT at open but wants another alignment.
Result<size_t> ReadAligned(int fd, uint64_t offset, size_t length, char* out,
                           const std::string& path) {
  const size_t want = AlignedBuffer::RoundUp(length);
  size_t at = 0;
  while (at < length && at % kAlign == 0) {
    const ssize_t n = ::pread(fd, out + at, want - at, static_cast<off_t>(offset + at));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL) return Status::NotSupported("direct read of " + path);
      return ErrnoStatus(errno, "read " + path);
    }
    if (n == 0) break;
    at += static_cast<size_t>(n);
  }
  return std::min(at, length);
}

// Opens `path` for reading, with O_DIRECT when `direct` and the filesystem takes it.
int OpenForRead(const std::string& path, bool direct) {
  if (direct) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd >= 0 || errno != EINVAL) return fd;
  }
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

// Writes the chunk file through O_DIRECT on `fd`: `header` (a multiple of kAlign bytes) and
// `data`, whose memory must start on a kAlign boundary. The last partial unit of the data goes
// through a zero-padded bounce buffer and the file is cut back to its exact size; nothing past
// the end of `data` is read. kNotSupported (EINVAL) means the filesystem wants another alignment:
// the caller writes through the page cache instead.
Status WriteDirect(int fd, std::string_view header, std::string_view data,
                   const std::string& path) {
  // pwrite of whole kAlign units at a kAlign offset, from aligned memory.
  auto write = [&](uint64_t offset, const char* from, size_t length) -> Status {
    for (size_t at = 0; at < length;) {
      const ssize_t n = ::pwrite(fd, from + at, length - at, static_cast<off_t>(offset + at));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL) return Status::NotSupported("direct write of " + path);
      if (n < 0) return ErrnoStatus(errno, "write " + path);
      if (n == 0 || n % kAlign != 0) return Status::Io("short direct write of " + path);
      at += static_cast<size_t>(n);
    }
    return Status::Ok();
  };
  const AlignedBuffer aligned_header = AlignedBuffer::CopyOf(header);
  STRATA_RETURN_IF_ERROR(write(0, aligned_header.data(), header.size()));
  const size_t whole = data.size() / kAlign * kAlign;
  STRATA_RETURN_IF_ERROR(write(header.size(), data.data(), whole));
  if (whole == data.size()) return Status::Ok();
  AlignedBuffer tail(kAlign);
  std::memset(tail.data(), 0, kAlign);
  std::memcpy(tail.data(), data.data() + whole, data.size() - whole);
  STRATA_RETURN_IF_ERROR(write(header.size() + whole, tail.data(), kAlign));
  if (::ftruncate(fd, static_cast<off_t>(header.size() + data.size())) != 0) {
    return ErrnoStatus(errno, "truncate " + path);
  }
  return Status::Ok();
}

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Creates `path` for writing (with O_DIRECT when `direct`; kNotSupported when the filesystem has
// none), creating its parent directory once if that is missing.
Result<int> CreateTemp(const std::string& path, bool direct) {
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0);
  for (int attempt = 0;; ++attempt) {
    const int fd = ::open(path.c_str(), flags, 0600);
    if (fd >= 0) return fd;
    if (errno == EINVAL && direct) return Status::NotSupported("O_DIRECT on " + path);
    if (errno != ENOENT || attempt > 0) return ErrnoStatus(errno, "create " + path);
    const std::string dir = ParentOf(path);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir " + dir);
    }
  }
}

// Parses and verifies a header whose first `prefix.size()` bytes are given. Sets *needed to the
// full header size when the prefix is too short to hold it (and returns OK with nothing else).
Status ParseHeader(std::string_view prefix, uint64_t file_size, const std::string& path,
                   ChunkFile::Header* header, uint64_t* needed) {
  *needed = 0;
  const uint64_t min_header = kFixedHeaderBytes + kHeaderChecksumBytes;
  if (prefix.size() < min_header) return Status::Corrupt(path + ": shorter than a chunk header");
  if (prefix.substr(0, kMagic.size()) != kMagic) return Status::Corrupt(path + ": bad magic");
  const uint32_t version = GetU32(prefix, 8);
  if (version != kVersion) {
    return Status::Corrupt(path + ": unknown format version " + std::to_string(version));
  }
  const uint64_t header_size = GetU32(prefix, 12);
  const uint64_t bucket_len = GetU32(prefix, 20);
  const uint64_t key_len = GetU32(prefix, 24);
  const uint64_t etag_len = GetU32(prefix, 28);
  const uint64_t data_length = GetU64(prefix, 40);
  const uint64_t block_size = GetU32(prefix, 48);
  const uint64_t block_count = GetU32(prefix, 52);
  if (block_size == 0 || BlockCount(data_length, block_size) != block_count) {
    return Status::Corrupt(path + ": inconsistent block size and count");
  }
  const uint64_t strings_end = kFixedHeaderBytes + bucket_len + key_len + etag_len;
  if (bucket_len > ChunkFile::kMaxFieldBytes || key_len > ChunkFile::kMaxFieldBytes ||
      etag_len > ChunkFile::kMaxFieldBytes ||
      header_size != AlignedBuffer::RoundUp(strings_end + block_count * kBlockChecksumBytes +
                                            kHeaderChecksumBytes)) {
    return Status::Corrupt(path + ": inconsistent header size");
  }
  if (header_size > file_size) return Status::Corrupt(path + ": truncated header");
  if (prefix.size() < header_size) {
    *needed = header_size;
    return Status::Ok();
  }
  const uint64_t stored_checksum = GetU64(prefix, header_size - kHeaderChecksumBytes);
  if (ChunkFile::Checksum(prefix.substr(0, header_size - kHeaderChecksumBytes)) !=
      stored_checksum) {
    return Status::Corrupt(path + ": header checksum mismatch");
  }
  header->header_size = header_size;
  header->key.chunk_size = GetU32(prefix, 16);
  header->key.index = GetU64(prefix, 32);
  header->data_length = data_length;
  header->block_size = block_size;
  size_t offset = kFixedHeaderBytes;
  header->key.bucket.assign(prefix.substr(offset, bucket_len));
  offset += bucket_len;
  header->key.object_key.assign(prefix.substr(offset, key_len));
  offset += key_len;
  header->key.etag.assign(prefix.substr(offset, etag_len));
  offset += etag_len;
  const std::string_view table = prefix.substr(offset, block_count * kBlockChecksumBytes);
  header->data_checksum = ChunkFile::Checksum(table);
  header->block_checksums.resize(block_count);
  for (uint64_t block = 0; block < block_count; ++block) {
    header->block_checksums[block] = GetU64(table, block * kBlockChecksumBytes);
  }
  if (data_length > file_size || file_size != header_size + data_length) {
    return Status::Corrupt(path + ": file has " + std::to_string(file_size) +
                           " bytes, its header says " +
                           std::to_string(header_size + header->data_length));
  }
  return Status::Ok();
}

// Reads `length` bytes at `offset` (a multiple of kAlign) into `out` (room for RoundUp(length));
// a shorter file is corrupt.
Status ReadAlignedAll(int fd, uint64_t offset, size_t length, char* out, const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(const size_t n, ReadAligned(fd, offset, length, out, path));
  if (n < length) return Status::Corrupt(path + " is truncated");
  return Status::Ok();
}

// Reads and verifies the header of the chunk file open as `fd` (which may be O_DIRECT).
Result<ChunkFile::Header> ReadHeader(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat " + path);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  AlignedBuffer prefix(std::min(file_size, kFirstReadBytes));
  STRATA_RETURN_IF_ERROR(ReadAlignedAll(fd, 0, prefix.size(), prefix.data(), path));
  ChunkFile::Header header;
  uint64_t needed = 0;
  STRATA_RETURN_IF_ERROR(ParseHeader(prefix, file_size, path, &header, &needed));
  if (needed > 0) {
    // A header is a multiple of kAlign bytes (ParseHeader checked): read all of it again.
    prefix = AlignedBuffer(needed);
    STRATA_RETURN_IF_ERROR(ReadAlignedAll(fd, 0, needed, prefix.data(), path));
    STRATA_RETURN_IF_ERROR(ParseHeader(prefix, file_size, path, &header, &needed));
  }
  return header;
}

}  // namespace

uint64_t ChunkFile::Checksum(std::string_view data) {
  return XXH3_64bits(data.data(), data.size());
}

uint64_t ChunkFile::HeaderSize(const ChunkKey& key, uint64_t data_length) {
  return AlignedBuffer::RoundUp(
      kFixedHeaderBytes + key.bucket.size() + key.object_key.size() + key.etag.size() +
      BlockCount(data_length, kBlockSize) * kBlockChecksumBytes + kHeaderChecksumBytes);
}

bool ChunkFile::IsTempName(std::string_view file_name) { return file_name.ends_with(kTempSuffix); }

Result<uint64_t> ChunkFile::Write(const std::string& path, const ChunkKey& key,
                                  std::string_view data) {
  if (key.bucket.size() > kMaxFieldBytes || key.object_key.size() > kMaxFieldBytes ||
      key.etag.size() > kMaxFieldBytes) {
    return Status::InvalidArgument("chunk key field longer than " + std::to_string(kMaxFieldBytes) +
                                   " bytes");
  }
  if (HeaderSize(key, data.size()) > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument("chunk of " + std::to_string(data.size()) +
                                   " bytes is too large for a chunk file");
  }
  uint64_t checksum = 0;
  const std::string header = EncodeHeader(key, data, &checksum);
  const std::string temp = path + std::string(kTempSuffix);
  // Direct I/O spares the copy into the page cache (the chunk is in memory already, and the
  // page cache would hold it a second time); it needs the data to start on a kAlign boundary,
  // as ChunkData does. Anything else, or a filesystem without O_DIRECT, goes through the cache.
  const bool aligned = reinterpret_cast<uintptr_t>(data.data()) % kAlign == 0;
  Status st = Status::NotSupported("unaligned data");
  if (aligned) {
    Result<int> created = CreateTemp(temp, true);
    st = created.status();
    if (created.ok()) {
      Fd fd(*created);
      st = WriteDirect(fd.get(), header, data, temp);
      if (st.ok()) st = fd.Close(temp);
    }
  }
  if (st.kind() == ErrorKind::kNotSupported) {  // unaligned, or no O_DIRECT here: page cache
    Result<int> created = CreateTemp(temp, false);
    st = created.status();
    if (created.ok()) {
      Fd fd(*created);
      st = WriteAllV(fd.get(), header, data, temp);
      if (st.ok()) st = fd.Close(temp);
    }
  }
  if (st.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    st = ErrnoStatus(errno, "rename " + temp);
  }
  if (!st.ok()) {
    if (::unlink(temp.c_str()) != 0 && errno != ENOENT) {
      IgnoreError(ErrnoStatus(errno, "unlink " + temp), "temp cleanup; Open removes it later");
    }
    return st;
  }
  return checksum;
}

Result<ChunkFile::Contents> ChunkFile::Read(const std::string& path) {
  // A whole chunk is read with O_DIRECT: straight into its buffer, without a copy in the page
  // cache (the memory tier keeps the chunk). Ranges (ReadRange) keep the page cache, which
  // serves repeated small reads.
  for (const bool direct : {true, false}) {
    Fd fd(OpenForRead(path, direct));
    if (fd.get() < 0) return ErrnoStatus(errno, "open " + path);
    Result<Header> header = ReadHeader(fd.get(), path);
    AlignedBuffer data;
    Status st = header.status();
    if (st.ok()) {
      data = AlignedBuffer(header->data_length);
      st = ReadAlignedAll(fd.get(), header->header_size, header->data_length, data.data(), path);
    }
    // The filesystem took O_DIRECT at open but wants another alignment: read it through the cache.
    if (direct && st.kind() == ErrorKind::kNotSupported) continue;
    STRATA_RETURN_IF_ERROR(st);
    STRATA_RETURN_IF_ERROR(VerifyBlocks(*header, 0, data, path));
    Contents contents;
    contents.header = std::move(*header);
    contents.data = std::make_shared<const AlignedBuffer>(std::move(data));
    return contents;
  }
  return Status::Internal("unreachable");
}

Result<ChunkFile::Range> ChunkFile::ReadRange(const std::string& path, uint64_t offset,
                                              uint64_t length) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open " + path);
  STRATA_ASSIGN_OR_RETURN(Header header, ReadHeader(fd.get(), path));
  if (length == 0 || offset > header.data_length || length > header.data_length - offset) {
    return Status::InvalidArgument(path + ": range of " + std::to_string(length) + " bytes at " +
                                   std::to_string(offset) + " is not within the chunk's " +
                                   std::to_string(header.data_length) + " bytes");
  }
  const uint64_t first_block = offset / header.block_size;
  const uint64_t end_block = (offset + length - 1) / header.block_size + 1;
  const uint64_t from = first_block * header.block_size;
  const uint64_t to = std::min(end_block * header.block_size, header.data_length);
  AlignedBuffer blocks(to - from);
  STRATA_RETURN_IF_ERROR(
      PreadAll(fd.get(), header.header_size + from, blocks.size(), path, blocks.data()));
  STRATA_RETURN_IF_ERROR(VerifyBlocks(header, first_block, blocks, path));
  Range range;
  range.header = std::move(header);
  range.blocks = std::make_shared<const AlignedBuffer>(std::move(blocks));
  range.offset = static_cast<size_t>(offset - from);
  range.block_count = end_block - first_block;
  return range;
}

}  // namespace strata
