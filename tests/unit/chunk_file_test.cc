// ChunkFile on its own: the layout (data at a 4 KiB boundary, exact file size), both write paths
// (O_DIRECT for aligned chunk memory, the page cache for anything else) and both read paths give
// back the same bytes for sizes around the alignment and for headers longer than one read.
#include "cache/chunk_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "tests/support/temp_dir.h"

namespace strata {
namespace {

ChunkKey KeyOf(std::string object_key, uint64_t index = 0) {
  return ChunkKey{.bucket = "bucket",
                  .object_key = std::move(object_key),
                  .etag = "\"etag\"",
                  .chunk_size = 1u << 20,
                  .index = index};
}

std::string Random(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_size);
}

class ChunkFileTest : public ::testing::TestWithParam<bool> {  // param: data aligned in memory
 protected:
  // Writes `bytes` as chunk `key`, from aligned memory or from a std::string (not aligned: one
  // byte into a buffer), and checks the file and both reads.
  void RoundTrip(const ChunkKey& key, const std::string& bytes) {
    SCOPED_TRACE(std::to_string(bytes.size()) + " bytes, key of " +
                 std::to_string(key.object_key.size()));
    const std::string path = dir_ / key.Id();
    const ChunkData aligned = MakeChunk(bytes);
    const std::string unaligned = " " + bytes;
    Result<uint64_t> written = ChunkFile::Write(
        path, key, GetParam() ? std::string_view(*aligned) : std::string_view(unaligned).substr(1));
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    EXPECT_FALSE(std::filesystem::exists(path + std::string(ChunkFile::kTempSuffix)));

    const uint64_t header = ChunkFile::HeaderSize(key, bytes.size());
    EXPECT_EQ(header % AlignedBuffer::kAlignment, 0u);
    EXPECT_EQ(FileSize(path), header + bytes.size());

    Result<ChunkFile::Contents> read = ChunkFile::Read(path);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->header.key, key);
    EXPECT_EQ(read->header.header_size, header);
    EXPECT_EQ(read->header.data_checksum, *written);
    EXPECT_TRUE(*read->data == bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(read->data->data()) % AlignedBuffer::kAlignment, 0u);

    if (bytes.empty()) return;
    const uint64_t offset = bytes.size() / 3;
    const uint64_t length = std::max<uint64_t>(1, bytes.size() / 2);
    Result<ChunkFile::Range> range = ChunkFile::ReadRange(path, offset, length);
    ASSERT_TRUE(range.ok()) << range.status().ToString();
    EXPECT_EQ(range->blocks->view().substr(range->offset, length), bytes.substr(offset, length));
  }

  TempDir dir_{"chunk-file-test"};
};

TEST_P(ChunkFileTest, SizesAroundTheAlignmentRoundTrip) {
  for (size_t size : {0ul, 1ul, 4095ul, 4096ul, 4097ul, 65536ul + 123, 200'000ul}) {
    RoundTrip(KeyOf("dir/object", size), Random(size, size));
  }
}

TEST_P(ChunkFileTest, AHeaderLongerThanTheFirstReadRoundTrips) {
  // A 10 KiB key makes a header of three 4 KiB units: read in a second, longer read.
  RoundTrip(KeyOf(std::string(10'000, 'k')), Random(70'000, 7));
}

INSTANTIATE_TEST_SUITE_P(Memory, ChunkFileTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Aligned" : "Unaligned"; });

TEST(ChunkFileFormatTest, AFileOfTheFormerVersionIsCorrupt) {
  TempDir dir("chunk-file-format-test");
  const std::string path = dir / "chunk";
  ASSERT_TRUE(ChunkFile::Write(path, KeyOf("x"), *MakeChunk(Random(5000, 1))).ok());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(bytes[8], 3) << "format version 3";
  bytes[8] = 2;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  Result<ChunkFile::Contents> read = ChunkFile::Read(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().kind(), ErrorKind::kCorrupt) << read.status().ToString();
}

}  // namespace
}  // namespace strata
