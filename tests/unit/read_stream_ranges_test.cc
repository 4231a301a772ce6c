// Reads sized to what was asked: a read that is not part of a sequential run is served from the
// blocks that cover it (ChunkFetcher::GetRange): from the disk tier without loading or
// promoting the chunk, and on a cold object with one small ranged GET, the first read of a
// handle queuing its whole chunk for read-ahead.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends/faulty_store.h"
#include "cache/cache_stats.h"
#include "cache/chunk_fetcher.h"
#include "cache/chunk_file.h"
#include "cache/disk_tier.h"
#include "cache/memory_tier.h"
#include "cache/read_stream.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBlock = ChunkFile::kBlockSize;
constexpr uint32_t kChunk = 4 * kBlock;  // 256 KiB
// Three whole chunks and a last one of three blocks and a bit.
constexpr uint64_t kObjectSize = 3 * kChunk + 3 * kBlock + 1000;

std::string Pattern(size_t size, uint32_t seed = 1) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + i / 7 + seed) & 0xff);
  return bytes;
}

// Forwards to a store and records the range and If-Match of every GET. GETs of at least
// `hold_from` bytes wait until Release(), so a test can show what a reader got before them.
class RangeLogStore final : public ObjectStore {
 public:
  struct Request {
    uint64_t offset = 0;
    uint64_t length = 0;
    std::string if_match;
    bool operator==(const Request&) const = default;
  };

  explicit RangeLogStore(ObjectStore& inner) : inner_(inner) {}

  void HoldFrom(uint64_t bytes) {
    std::lock_guard lock(mu_);
    hold_from_ = bytes;
  }
  void Release() {
    std::lock_guard lock(mu_);
    hold_from_ = UINT64_MAX;
    cv_.notify_all();
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  void WaitForHeld(int count) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_ >= count; });
  }

  std::string Describe() const override { return "log(" + inner_.Describe() + ")"; }
  Result<ObjectInfo> Head(std::string_view key) override { return inner_.Head(key); }
  Result<GetResult> Get(std::string_view key, const GetOptions& options) override {
    Log(options);
    return inner_.Get(key, options);
  }
  Result<GetIntoResult> GetInto(std::string_view key, const GetOptions& options,
                                std::span<char> dest) override {
    Log(options);
    return inner_.GetInto(key, options, dest);
  }
  Result<PutResult> Put(std::string_view key, std::string_view body,
                        const PutOptions& options) override {
    return inner_.Put(key, body, options);
  }
  Result<std::string> CreateMultipartUpload(std::string_view key,
                                            const PutOptions& options) override {
    return inner_.CreateMultipartUpload(key, options);
  }
  Result<PartInfo> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                              std::string_view body) override {
    return inner_.UploadPart(key, upload_id, part_number, body);
  }
  Result<PutResult> CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                            const std::vector<PartInfo>& parts) override {
    return inner_.CompleteMultipartUpload(key, upload_id, parts);
  }
  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) override {
    return inner_.AbortMultipartUpload(key, upload_id);
  }
  Result<std::vector<PartInfo>> ListParts(std::string_view key,
                                          std::string_view upload_id) override {
    return inner_.ListParts(key, upload_id);
  }
  Result<std::vector<MultipartUpload>> ListMultipartUploads(std::string_view prefix) override {
    return inner_.ListMultipartUploads(prefix);
  }
  Result<ListPage> List(const ListOptions& options) override { return inner_.List(options); }
  Result<PutResult> Copy(std::string_view source_key, std::string_view dest_key,
                         const CopyOptions& options) override {
    return inner_.Copy(source_key, dest_key, options);
  }
  Status Delete(std::string_view key) override { return inner_.Delete(key); }
  Result<std::vector<DeleteFailure>> DeleteBatch(const std::vector<std::string>& keys) override {
    return inner_.DeleteBatch(keys);
  }

 private:
  void Log(const GetOptions& options) {
    std::unique_lock lock(mu_);
    Request request;
    request.if_match = options.if_match;
    if (options.range.has_value()) {
      request.offset = options.range->offset;
      request.length = options.range->length.value_or(UINT64_MAX);
    }
    requests_.push_back(request);
    if (request.length < hold_from_) return;
    ++held_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return request.length < hold_from_; });
  }

  ObjectStore& inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t hold_from_ = UINT64_MAX;
  int held_ = 0;
  std::vector<Request> requests_;
};

class ReadStreamRangesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-read-ranges-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    Result<std::unique_ptr<DiskTier>> disk =
        DiskTier::Open(DiskTierOptions{.root = dir_ + "/cache", .max_bytes = 64ull << 20}, stats_);
    ASSERT_TRUE(disk.ok()) << disk.status().ToString();
    disk_ = std::move(disk).value();
    body_ = Pattern(kObjectSize);
    object_ = PutObject(body_);
  }
  void TearDown() override {
    fetcher_.reset();
    disk_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ObjectVersion PutObject(const std::string& body, const std::string& key = "file") {
    Result<PutResult> put = store_.Put(key, body, {});
    EXPECT_TRUE(put.ok());
    return ObjectVersion{"bucket", key, put.ok() ? put->etag : "", body.size()};
  }

  void MakeFetcher(size_t workers = 2) {
    fetcher_ = std::make_unique<ChunkFetcher>(
        log_, std::vector<ChunkTier*>{&memory_, disk_.get()},
        ChunkFetcher::Options{.chunk_size = kChunk,
                              .block_size = static_cast<uint32_t>(kBlock),
                              .readahead_workers = workers,
                              .readahead_budget_bytes = 16 * kChunk},
        stats_);
  }

  // Puts every chunk of the object into the disk tier only.
  void FillDisk() {
    for (uint64_t index = 0; index < fetcher_->ChunkCount(kObjectSize); ++index) {
      const uint64_t from = index * kChunk;
      ASSERT_TRUE(
          disk_->Put(fetcher_->KeyOf(object_, index), MakeChunk(body_.substr(from, kChunk))).ok());
    }
  }

  std::string Read(ReadStream& stream, uint64_t offset, size_t size) {
    std::string out(size, '\0');
    Result<size_t> got = stream.Read(offset, std::span<char>(out));
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return "";
    out.resize(*got);
    return out;
  }

  std::string dir_;
  CacheStats stats_;
  MemoryStore store_;
  RangeLogStore log_{store_};
  MemoryTier memory_{{.budget_bytes = 16 * kChunk, .shards = 1, .min_shard_bytes = 0}, stats_};
  std::unique_ptr<DiskTier> disk_;
  std::unique_ptr<ChunkFetcher> fetcher_;
  std::string body_;
  ObjectVersion object_;
};

TEST_F(ReadStreamRangesTest, RandomReadOfADiskChunkReadsOnlyItsBlocks) {
  MakeFetcher(/*workers=*/0);  // no read-ahead: every disk read below is the reader's
  FillDisk();
  ReadStream stream(*fetcher_, object_, {});
  const uint64_t offsets[] = {kChunk + 5 * 4096, 3 * kChunk + kBlock - 100, 2 * 4096 + kBlock};
  for (uint64_t offset : offsets) {
    EXPECT_EQ(Read(stream, offset, 4096), body_.substr(offset, 4096)) << offset;
  }
  EXPECT_EQ(stats_.disk_range_hits.load(), 3u);
  // One block each, but two for the read that straddles a block edge.
  EXPECT_EQ(stats_.disk_range_bytes_read.load(), 4 * kBlock);
  EXPECT_EQ(stats_.disk_bytes_served.load(), 3 * 4096u);
  EXPECT_EQ(memory_.chunk_count(), 0u);  // nothing loaded or promoted
  EXPECT_TRUE(log_.requests().empty());
  EXPECT_EQ(stats_.s3_gets.load(), 0u);

  // A read that follows on is sequential: its chunk is read whole and lands in memory.
  const uint64_t next = offsets[2] + 4096;
  EXPECT_EQ(Read(stream, next, 4096), body_.substr(next, 4096));
  EXPECT_EQ(stats_.disk_range_hits.load(), 3u);
  EXPECT_EQ(stats_.disk_hits.load(), 4u);
  EXPECT_GE(memory_.chunk_count(), 1u);
  // And a random read of a chunk in memory is served from it.
  const uint64_t hits = stats_.memory_hits.load();
  ReadStream other(*fetcher_, object_, {});
  EXPECT_EQ(Read(other, 100, 10), body_.substr(100, 10));
  EXPECT_EQ(stats_.memory_hits.load(), hits + 1);
  EXPECT_EQ(stats_.disk_range_hits.load(), 3u);
}

TEST_F(ReadStreamRangesTest, ColdFirstReadIsOneSmallGetThenReadAheadFetchesTheChunk) {
  MakeFetcher();
  log_.HoldFrom(kChunk);  // the whole-chunk GET waits: the first read must not need it
  ReadStream stream(*fetcher_, object_, {});
  EXPECT_EQ(Read(stream, 0, 4096), body_.substr(0, 4096));
  EXPECT_EQ(stats_.s3_range_gets.load(), 1u);
  log_.WaitForHeld(1);  // read-ahead of chunk 0 was queued and is fetching
  log_.Release();
  fetcher_->WaitIdle();
  std::vector<RangeLogStore::Request> requests = log_.requests();
  ASSERT_EQ(requests.size(), 2u);
  // The read's GET and read-ahead's run at once: either may reach the store first.
  if (requests[0].length > requests[1].length) std::swap(requests[0], requests[1]);
  EXPECT_EQ(requests[0], (RangeLogStore::Request{0, kBlock, object_.etag}));  // the read
  EXPECT_EQ(requests[1], (RangeLogStore::Request{0, kChunk, object_.etag}));  // read-ahead
  EXPECT_EQ(stats_.readahead_chunks.load(), 1u);

  // The reader goes on: served from the chunk read-ahead fetched, no GET of its own.
  EXPECT_EQ(Read(stream, 4096, 128 << 10), body_.substr(4096, 128 << 10));
  EXPECT_EQ(stats_.readahead_hits.load(), 1u);
  fetcher_->WaitIdle();
  // Only read-ahead of the chunks past the first followed.
  for (size_t i = 2; i < log_.requests().size(); ++i) {
    EXPECT_EQ(log_.requests()[i].offset % kChunk, 0u);
    EXPECT_GE(log_.requests()[i].offset, kChunk);
  }
}

TEST_F(ReadStreamRangesTest, ColdRandomReadFetchesOnlyTheCoveringBlocks) {
  MakeFetcher();
  ReadStream stream(*fetcher_, object_, {});
  // Straddles the first block edge of chunk 1.
  const uint64_t offset = kChunk + kBlock - 2048;
  EXPECT_EQ(Read(stream, offset, 4096), body_.substr(offset, 4096));
  // The last bytes of the object: its last block is short.
  EXPECT_EQ(Read(stream, kObjectSize - 10, 4096), body_.substr(kObjectSize - 10));
  fetcher_->WaitIdle();
  const std::vector<RangeLogStore::Request> requests = log_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0], (RangeLogStore::Request{kChunk, 2 * kBlock, object_.etag}));
  EXPECT_EQ(requests[1], (RangeLogStore::Request{3 * kChunk + 3 * kBlock, 1000, object_.etag}));
  EXPECT_EQ(stats_.s3_range_gets.load(), 2u);
  EXPECT_EQ(stats_.s3_bytes.load(), 2 * kBlock + 1000);
  EXPECT_EQ(stats_.readahead_chunks.load(), 0u);
  EXPECT_EQ(memory_.chunk_count(), 0u);  // blocks are not cached: tiers hold whole chunks
}

TEST_F(ReadStreamRangesTest, ColdRangeOfAChangedObjectFailsThePrecondition) {
  MakeFetcher();
  ReadStream stream(*fetcher_, object_, {});
  PutObject(Pattern(kObjectSize, 2));  // same size, other bytes: only If-Match can tell
  std::string out(4096, '\0');
  EXPECT_EQ(stream.Read(kChunk + 10, std::span<char>(out)).status().kind(),
            ErrorKind::kPreconditionFailed);
  EXPECT_EQ(stream.Read(0, std::span<char>(out)).status().kind(), ErrorKind::kPreconditionFailed);
}

TEST_F(ReadStreamRangesTest, ShortBodyOfARangeIsAnError) {
  FaultyStore faulty(store_);
  ChunkFetcher fetcher(faulty, {&memory_}, {.chunk_size = kChunk, .readahead_workers = 0}, stats_);
  faulty.CutBodies({.keep_bytes = 100, .times = 1});
  Result<ChunkSlice> got = fetcher.GetRange(object_, 1, 10, 100, ChunkFetcher::OnMiss::kBlocksOnly);
  EXPECT_EQ(got.status().kind(), ErrorKind::kTransient);
  got = fetcher.GetRange(object_, 1, 10, 100, ChunkFetcher::OnMiss::kBlocksOnly);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->data->view().substr(got->offset, got->length), body_.substr(kChunk + 10, 100));
}

TEST_F(ReadStreamRangesTest, RandomReadJoinsAChunkFetchInFlight) {
  MakeFetcher();
  log_.HoldFrom(kChunk);
  ASSERT_EQ(fetcher_->Prefetch(object_, 1, 1), 2u);
  log_.WaitForHeld(1);
  std::thread reader([&] {
    ReadStream stream(*fetcher_, object_, {});
    EXPECT_EQ(Read(stream, kChunk + 100, 10), body_.substr(kChunk + 100, 10));
  });
  while (stats_.coalesced_requests.load() == 0) std::this_thread::yield();
  log_.Release();
  reader.join();
  EXPECT_EQ(log_.requests().size(), 1u);
  EXPECT_EQ(stats_.s3_range_gets.load(), 0u);
}

TEST_F(ReadStreamRangesTest, FirstReadWithoutReadAheadFetchesOnlyItsBlocks) {
  MakeFetcher();
  ReadStream stream(*fetcher_, object_, {.max_readahead_bytes = 0});
  EXPECT_EQ(Read(stream, 0, 4096), body_.substr(0, 4096));
  fetcher_->WaitIdle();
  EXPECT_EQ(log_.requests().size(), 1u);
  EXPECT_EQ(stats_.readahead_chunks.load(), 0u);
}

TEST_F(ReadStreamRangesTest, SmallObjectsAreStillOneWholeChunk) {
  MakeFetcher();
  const ObjectVersion small = PutObject(Pattern(kBlock / 2, 3), "small");
  ReadStream stream(*fetcher_, small, {});
  EXPECT_EQ(Read(stream, 0, 100), Pattern(kBlock / 2, 3).substr(0, 100));
  fetcher_->WaitIdle();
  EXPECT_EQ(log_.requests().size(), 1u);
  EXPECT_EQ(stats_.s3_range_gets.load(), 0u);
  EXPECT_EQ(memory_.chunk_count(), 1u);
}

}  // namespace
}  // namespace strata
