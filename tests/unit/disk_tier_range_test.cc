// Per-block checksums in chunk files: DiskTier::GetRange (ChunkFile::ReadRange) reads and
// verifies only the blocks that cover a range, a bad block is a miss that deletes the file, and
// files of the previous format version are misses.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "cache/chunk_file.h"
#include "cache/disk_tier.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBlock = ChunkFile::kBlockSize;
constexpr uint32_t kChunk = 4 * kBlock;
// The last chunk of an object: three blocks and a short fourth.
constexpr uint64_t kShortChunk = 3 * kBlock + 1000;

ChunkKey Key(uint64_t index) { return ChunkKey{"bucket", "dir/object", "etag-1", kChunk, index}; }

ChunkData Bytes(size_t size, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return MakeChunk(std::move(out));
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A valid chunk file of format version 1: one checksum over all the data, no block table.
std::string EncodeVersion1(const ChunkKey& key, std::string_view data) {
  std::string out = "STRATACK";
  PutU32(&out, 1);
  PutU32(&out,
         static_cast<uint32_t>(64 + key.bucket.size() + key.object_key.size() + key.etag.size()));
  PutU32(&out, key.chunk_size);
  PutU32(&out, static_cast<uint32_t>(key.bucket.size()));
  PutU32(&out, static_cast<uint32_t>(key.object_key.size()));
  PutU32(&out, static_cast<uint32_t>(key.etag.size()));
  PutU64(&out, key.index);
  PutU64(&out, data.size());
  PutU64(&out, ChunkFile::Checksum(data));
  out += key.bucket + key.object_key + key.etag;
  PutU64(&out, ChunkFile::Checksum(out));
  out.append(data);
  return out;
}

class DiskTierRangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-disk-range-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    Open();
    ASSERT_TRUE(tier_->Put(Key(0), full_).ok());
    ASSERT_TRUE(tier_->Put(Key(1), short_).ok());
  }
  void TearDown() override {
    tier_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Open() {
    tier_.reset();
    Result<std::unique_ptr<DiskTier>> tier =
        DiskTier::Open(DiskTierOptions{.root = dir_ + "/cache", .max_bytes = 64ull << 20}, stats_);
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    tier_ = std::move(tier).value();
  }

  fs::path PathOf(const ChunkKey& key) const {
    const std::string id = key.Id();
    return fs::path(dir_) / "cache" / "chunks" / id.substr(0, 2) / id;
  }
  uint64_t HeaderSize(const ChunkKey& key, uint64_t length) const {
    return ChunkFile::HeaderSize(key, length);
  }

  // The bytes GetRange returns, or nullopt on a miss. Fails the test on an error.
  std::optional<std::string> Range(const ChunkKey& key, uint64_t offset, uint64_t length) {
    Result<std::optional<ChunkSlice>> got = tier_->GetRange(key, offset, length);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || !got->has_value()) return std::nullopt;
    const ChunkSlice& slice = **got;
    EXPECT_EQ(slice.length, length);
    EXPECT_LE(slice.offset + slice.length, slice.data->size());
    return std::string(slice.data->view().substr(slice.offset, slice.length));
  }

  void FlipByte(const fs::path& path, uint64_t offset) {
    std::string contents = Slurp(path);
    ASSERT_LT(offset, contents.size());
    contents[offset] ^= 0x5a;
    WriteFile(path, contents);
  }

  std::string dir_;
  CacheStats stats_;
  std::unique_ptr<DiskTier> tier_;
  const ChunkData full_ = Bytes(kChunk, 1);
  const ChunkData short_ = Bytes(kShortChunk, 2);
};

TEST_F(DiskTierRangeTest, ReturnsExactlyTheBytesAtBlockEdgesAndTheChunksEnd) {
  struct Case {
    uint64_t offset, length, blocks_read;
  };
  const Case full_cases[] = {
      {0, 1, 1},
      {0, 4096, 1},
      {kBlock - 1, 1, 1},
      {kBlock - 1, 2, 2},  // straddles a block edge
      {kBlock, kBlock, 1},
      {kBlock - 10, kBlock + 20, 3},
      {3 * kBlock, kBlock, 1},  // the last block
      {kChunk - 1, 1, 1},
      {0, kChunk, 4},
  };
  for (const Case& c : full_cases) {
    const uint64_t before = stats_.disk_range_bytes_read.load();
    EXPECT_EQ(Range(Key(0), c.offset, c.length), full_->view().substr(c.offset, c.length))
        << c.offset << "+" << c.length;
    EXPECT_EQ(stats_.disk_range_bytes_read.load() - before, c.blocks_read * kBlock)
        << c.offset << "+" << c.length;
  }
  const Case short_cases[] = {
      {3 * kBlock, 1000, 1},  // the short last block, whole
      {kShortChunk - 1, 1, 1},
      {3 * kBlock - 5, 10, 2},
      {0, kShortChunk, 4},
  };
  for (const Case& c : short_cases) {
    const uint64_t before = stats_.disk_range_bytes_read.load();
    EXPECT_EQ(Range(Key(1), c.offset, c.length), short_->view().substr(c.offset, c.length))
        << c.offset << "+" << c.length;
    const uint64_t end_block = (c.offset + c.length - 1) / kBlock + 1;
    const uint64_t expected =
        std::min(end_block * kBlock, kShortChunk) - (c.offset / kBlock) * kBlock;
    EXPECT_EQ(stats_.disk_range_bytes_read.load() - before, expected);
    EXPECT_EQ(c.blocks_read, end_block - c.offset / kBlock);
  }
  EXPECT_EQ(stats_.disk_range_hits.load(), std::size(full_cases) + std::size(short_cases));
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 0u);
  // The whole-chunk read still verifies every block.
  Result<std::optional<ChunkData>> whole = tier_->Get(Key(1));
  ASSERT_TRUE(whole.ok() && whole->has_value());
  EXPECT_EQ(***whole, *short_);
}

TEST_F(DiskTierRangeTest, RangePastTheEndIsAnErrorAndKeepsTheFile) {
  EXPECT_EQ(tier_->GetRange(Key(1), kShortChunk, 1).status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(tier_->GetRange(Key(1), kShortChunk - 1, 2).status().kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_TRUE(fs::exists(PathOf(Key(1))));
  EXPECT_EQ(Range(Key(1), kShortChunk - 1, 1), short_->view().substr(kShortChunk - 1));
}

TEST_F(DiskTierRangeTest, AbsentChunkIsAMiss) {
  EXPECT_EQ(Range(Key(2), 0, 1), std::nullopt);
  EXPECT_EQ(stats_.disk_misses.load(), 1u);
}

TEST_F(DiskTierRangeTest, CorruptBlockIsFoundByTheReadThatNeedsItAndDeletesTheFile) {
  // Tear block 2 of chunk 0 (as a crash could leave it).
  FlipByte(PathOf(Key(0)), HeaderSize(Key(0), kChunk) + 2 * kBlock + 17);
  // Reads of other blocks never look at it: they are served.
  EXPECT_EQ(Range(Key(0), 0, 100), full_->view().substr(0, 100));
  EXPECT_EQ(Range(Key(0), 3 * kBlock, 100), full_->view().substr(3 * kBlock, 100));
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 0u);
  // The read that covers it is a miss, counted, and the file goes.
  EXPECT_EQ(Range(Key(0), 2 * kBlock + 10, 10), std::nullopt);
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 1u);
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
  EXPECT_EQ(tier_->chunk_count(), 1u);
  EXPECT_EQ(Range(Key(0), 0, 100), std::nullopt);
  // Stored again, it is served again.
  ASSERT_TRUE(tier_->Put(Key(0), full_).ok());
  EXPECT_EQ(Range(Key(0), 2 * kBlock + 10, 10), full_->view().substr(2 * kBlock + 10, 10));
}

TEST_F(DiskTierRangeTest, CorruptBlockFailsTheWholeChunkRead) {
  FlipByte(PathOf(Key(1)), HeaderSize(Key(1), kShortChunk) + kShortChunk - 1);
  Result<std::optional<ChunkData>> whole = tier_->Get(Key(1));
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->has_value());
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 1u);
  EXPECT_FALSE(fs::exists(PathOf(Key(1))));
}

TEST_F(DiskTierRangeTest, CorruptBlockChecksumIsAMiss) {
  // A byte of the block checksum table: the header checksum covers it.
  FlipByte(PathOf(Key(0)), HeaderSize(Key(0), kChunk) - 8 - 8 * 4 + 3);
  EXPECT_EQ(Range(Key(0), 0, 1), std::nullopt);
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 1u);
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
}

TEST_F(DiskTierRangeTest, TornFileIsAMissForAnyRange) {
  // A file cut short (a crash before the page cache reached the disk): even a range in the
  // part that is still there is a miss, since the size no longer matches the header.
  fs::resize_file(PathOf(Key(0)), HeaderSize(Key(0), kChunk) + kBlock);
  EXPECT_EQ(Range(Key(0), 0, 1), std::nullopt);
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 1u);
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
}

TEST_F(DiskTierRangeTest, FileOfAnotherKeyIsNeverServed) {
  fs::copy_file(PathOf(Key(1)), PathOf(Key(0)), fs::copy_options::overwrite_existing);
  EXPECT_EQ(Range(Key(0), 0, 1), std::nullopt);
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 1u);
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
}

TEST_F(DiskTierRangeTest, VersionOneFileIsAMissAndIsDeleted) {
  WriteFile(PathOf(Key(1)), EncodeVersion1(Key(1), *short_));
  EXPECT_EQ(Range(Key(1), 0, 1), std::nullopt);
  EXPECT_FALSE(fs::exists(PathOf(Key(1))));
  WriteFile(PathOf(Key(0)), EncodeVersion1(Key(0), *full_));
  Result<std::optional<ChunkData>> whole = tier_->Get(Key(0));
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->has_value());
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
  EXPECT_EQ(tier_->chunk_count(), 0u);
}

TEST_F(DiskTierRangeTest, OpenDeletesVersionOneFilesWithAndWithoutARow) {
  tier_.reset();
  // Chunk 0 keeps its index row; chunk 2 is a version 1 file the index does not know.
  WriteFile(PathOf(Key(0)), EncodeVersion1(Key(0), *full_));
  fs::create_directories(PathOf(Key(2)).parent_path());
  WriteFile(PathOf(Key(2)), EncodeVersion1(Key(2), *full_));
  Open();
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
  EXPECT_FALSE(fs::exists(PathOf(Key(2))));
  EXPECT_EQ(tier_->chunk_count(), 1u);
  EXPECT_EQ(Range(Key(1), 5, 5), short_->view().substr(5, 5));
}

}  // namespace
}  // namespace strata
