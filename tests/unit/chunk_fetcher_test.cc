#include "cache/chunk_fetcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/faulty_store.h"
#include "cache/cache_stats.h"
#include "cache/memory_tier.h"
#include "cache/read_stream.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

constexpr uint32_t kChunk = 4096;

// Bytes that differ per position and per seed, so a chunk from the wrong place or version shows.
std::string Pattern(size_t size, uint32_t seed = 1) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + i / 7 + seed) & 0xff);
  return bytes;
}

// Forwards to a store; Get and GetInto wait at a gate that the test opens, so a GET can be held
// in flight for as long as a test needs. Counts the Gets that reached it.
class GatedStore final : public ObjectStore {
 public:
  explicit GatedStore(ObjectStore& inner) : inner_(inner) {}

  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void WaitForBlocked(int count) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return blocked_ >= count; });
  }
  int gets() const {
    std::lock_guard lock(mu_);
    return gets_;
  }

  std::string Describe() const override { return "gated(" + inner_.Describe() + ")"; }
  Result<ObjectInfo> Head(std::string_view key) override { return inner_.Head(key); }
  Result<GetResult> Get(std::string_view key, const GetOptions& options) override {
    Pass();
    return inner_.Get(key, options);
  }
  Result<GetIntoResult> GetInto(std::string_view key, const GetOptions& options,
                                std::span<char> dest) override {
    Pass();
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
  void Pass() {
    std::unique_lock lock(mu_);
    ++gets_;
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --blocked_;
  }

  ObjectStore& inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int blocked_ = 0;
  int gets_ = 0;
};

// A tier that is always full and whose lookups can be made to fail.
class FullTier final : public ChunkTier {
 public:
  explicit FullTier(bool lookups_fail) : lookups_fail_(lookups_fail) {}
  Result<std::optional<ChunkData>> Get(const ChunkKey&) override {
    if (lookups_fail_) return Status::Io("injected lookup failure");
    return std::optional<ChunkData>();
  }
  Status Put(const ChunkKey&, const ChunkData&) override { return Status::NoSpace("tier full"); }

 private:
  const bool lookups_fail_;
};

// Polls an atomic counter that has no notification of its own; returns as soon as it matches.
void WaitForCount(const std::atomic<uint64_t>& counter, uint64_t value) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (counter.load() < value && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

class ChunkFetcherTest : public ::testing::Test {
 protected:
  ObjectVersion PutObject(const std::string& key, const std::string& body) {
    Result<PutResult> put = store_.Put(key, body, {});
    EXPECT_TRUE(put.ok());
    return ObjectVersion{"bucket", key, put.ok() ? put->etag : "", body.size()};
  }

  static ChunkFetcher::Options Options(size_t workers = 4, uint64_t budget_chunks = 64) {
    return {.chunk_size = kChunk,
            .readahead_workers = workers,
            .readahead_budget_bytes = budget_chunks * kChunk};
  }

  MemoryStore store_;
  CacheStats stats_;
  MemoryTier memory_{{.budget_bytes = 1 << 20, .shards = 2, .min_shard_bytes = 0}, stats_};
};

TEST_F(ChunkFetcherTest, MissFetchesTheChunkOnceThenHitsMemory) {
  const std::string body = Pattern(10 * kChunk + 100);
  const ObjectVersion object = PutObject("file", body);
  ChunkFetcher fetcher(store_, {&memory_}, Options(), stats_);
  EXPECT_EQ(fetcher.ChunkCount(object.size), 11u);

  Result<ChunkData> first = fetcher.GetChunk(object, 3);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(**first, body.substr(3 * kChunk, kChunk));
  Result<ChunkData> again = fetcher.GetChunk(object, 3);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), first->get());
  EXPECT_EQ(stats_.s3_gets.load(), 1u);
  EXPECT_EQ(stats_.s3_bytes.load(), kChunk);
  EXPECT_EQ(stats_.memory_hits.load(), 1u);
  EXPECT_EQ(store_.stats().get, 1u);

  Result<ChunkData> last = fetcher.GetChunk(object, 10);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(**last, body.substr(10 * kChunk));
  EXPECT_EQ(fetcher.GetChunk(object, 11).status().kind(), ErrorKind::kInvalidArgument);
  ObjectVersion no_etag = object;
  no_etag.etag.clear();
  EXPECT_EQ(fetcher.GetChunk(no_etag, 0).status().kind(), ErrorKind::kInvalidArgument);
}

TEST_F(ChunkFetcherTest, HitInASlowerTierFillsTheFasterOne) {
  const std::string body = Pattern(3 * kChunk, 5);
  const ObjectVersion object = PutObject("file", body);
  CacheStats slow_stats;
  MemoryTier slow({.budget_bytes = 1 << 20, .shards = 1}, slow_stats);
  ChunkFetcher fetcher(store_, {&memory_, &slow}, Options(), stats_);
  ASSERT_TRUE(slow.Put(fetcher.KeyOf(object, 1), MakeChunk(body.substr(kChunk, kChunk))).ok());

  Result<ChunkData> chunk = fetcher.GetChunk(object, 1);
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(**chunk, body.substr(kChunk, kChunk));
  EXPECT_EQ(stats_.s3_gets.load(), 0u);
  EXPECT_EQ(slow_stats.memory_hits.load(), 1u);
  EXPECT_EQ(memory_.chunk_count(), 1u);

  // A miss everywhere lands in both tiers.
  ASSERT_TRUE(fetcher.GetChunk(object, 2).ok());
  EXPECT_EQ(stats_.s3_gets.load(), 1u);
  EXPECT_EQ(memory_.chunk_count(), 2u);
  EXPECT_EQ(slow.chunk_count(), 2u);
}

TEST_F(ChunkFetcherTest, TierFailuresDoNotFailTheRead) {
  const std::string body = Pattern(2 * kChunk, 9);
  const ObjectVersion object = PutObject("file", body);
  FullTier full(/*lookups_fail=*/false);
  FullTier broken(/*lookups_fail=*/true);
  ChunkFetcher fetcher(store_, {nullptr, &broken, &full}, Options(), stats_);
  for (int i = 0; i < 2; ++i) {
    Result<ChunkData> chunk = fetcher.GetChunk(object, 0);
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    EXPECT_EQ(**chunk, body.substr(0, kChunk));
  }
  EXPECT_EQ(stats_.s3_gets.load(), 2u);  // nothing could be cached
}

TEST_F(ChunkFetcherTest, ShortBodyIsAnErrorAndIsNeitherServedNorCached) {
  const std::string body = Pattern(3 * kChunk, 2);
  const ObjectVersion object = PutObject("file", body);
  FaultyStore faulty(store_);
  faulty.CutBodies({.keep_bytes = 100});
  ChunkFetcher fetcher(faulty, {&memory_}, Options(), stats_);
  Result<ChunkData> cut = fetcher.GetChunk(object, 1);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().kind(), ErrorKind::kTransient);
  EXPECT_EQ(memory_.chunk_count(), 0u);

  ReadStream stream(fetcher, object, {});
  std::string out(2 * kChunk, '\0');
  EXPECT_FALSE(stream.Read(kChunk / 2, out).ok());
  EXPECT_EQ(memory_.chunk_count(), 0u);

  faulty.Clear();
  Result<size_t> read = stream.Read(kChunk / 2, out);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, out.size());
  EXPECT_EQ(out, body.substr(kChunk / 2, 2 * kChunk));
}

TEST_F(ChunkFetcherTest, ChangedObjectFailsInsteadOfMixingVersions) {
  const std::string old_body = Pattern(3 * kChunk, 1);
  const std::string new_body = Pattern(3 * kChunk, 2);
  const ObjectVersion old_version = PutObject("file", old_body);
  ChunkFetcher fetcher(store_, {&memory_}, Options(0), stats_);
  ReadStream old_stream(fetcher, old_version, {});
  std::string out(100, '\0');
  ASSERT_TRUE(old_stream.Read(0, out).ok());

  const ObjectVersion new_version = PutObject("file", new_body);
  ASSERT_NE(new_version.etag, old_version.etag);
  Result<size_t> stale = old_stream.Read(kChunk, out);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().kind(), ErrorKind::kPreconditionFailed);

  ReadStream new_stream(fetcher, new_version, {});
  std::string all(new_body.size(), '\0');
  Result<size_t> fresh = new_stream.Read(0, all);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(all, new_body);
}

TEST_F(ChunkFetcherTest, ConcurrentMissesOfOneChunkShareOneGet) {
  const std::string body = Pattern(8 * kChunk, 3);
  const ObjectVersion object = PutObject("file", body);
  GatedStore gated(store_);
  ChunkFetcher fetcher(gated, {&memory_}, Options(), stats_);
  constexpr int kReaders = 16;
  std::vector<Result<ChunkData>> results(kReaders, Status::Internal("not run"));
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&, i] { results[i] = fetcher.GetChunk(object, 5); });
  }
  gated.WaitForBlocked(1);
  WaitForCount(stats_.coalesced_requests, kReaders - 1);
  gated.Open();
  for (std::thread& reader : readers) reader.join();

  EXPECT_EQ(gated.gets(), 1);
  EXPECT_EQ(store_.stats().get, 1u);
  EXPECT_EQ(stats_.s3_gets.load(), 1u);
  EXPECT_EQ(stats_.coalesced_requests.load(), kReaders - 1u);
  for (const Result<ChunkData>& result : results) {
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->get(), results[0]->get());
  }
  EXPECT_EQ(**results[0], body.substr(5 * kChunk, kChunk));
}

TEST_F(ChunkFetcherTest, ConcurrentMissesShareTheError) {
  const ObjectVersion object = PutObject("file", Pattern(2 * kChunk, 1));
  PutObject("file", Pattern(2 * kChunk, 2));  // `object` is now stale
  GatedStore gated(store_);
  ChunkFetcher fetcher(gated, {&memory_}, Options(), stats_);
  std::vector<Status> statuses(4);
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&, i] { statuses[i] = fetcher.GetChunk(object, 0).status(); });
  }
  gated.WaitForBlocked(1);
  WaitForCount(stats_.coalesced_requests, 3);
  gated.Open();
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(gated.gets(), 1);
  for (const Status& status : statuses) EXPECT_EQ(status.kind(), ErrorKind::kPreconditionFailed);
  EXPECT_EQ(memory_.chunk_count(), 0u);
}

TEST_F(ChunkFetcherTest, ReadAheadStaysWithinItsBudgetWithoutBlocking) {
  const std::string body = Pattern(10 * kChunk, 4);
  const ObjectVersion object = PutObject("file", body);
  GatedStore gated(store_);
  ChunkFetcher fetcher(gated, {&memory_}, Options(2, /*budget_chunks=*/3), stats_);

  EXPECT_EQ(fetcher.Prefetch(object, 0, 10), 3u);  // covers chunks 0..2 only
  EXPECT_EQ(fetcher.readahead_bytes_in_use(), 3u * kChunk);
  gated.WaitForBlocked(2);                        // both workers hold a GET open
  EXPECT_EQ(fetcher.Prefetch(object, 3, 5), 3u);  // budget used up: nothing more, no wait
  EXPECT_EQ(fetcher.Prefetch(object, 0, 3), 3u);  // already covered
  EXPECT_EQ(fetcher.readahead_bytes_in_use(), 3u * kChunk);

  gated.Open();
  fetcher.WaitIdle();
  EXPECT_EQ(fetcher.readahead_bytes_in_use(), 0u);
  EXPECT_EQ(gated.gets(), 3);
  EXPECT_EQ(stats_.readahead_chunks.load(), 3u);
  for (uint64_t index = 0; index < 3; ++index) {
    Result<ChunkData> chunk = fetcher.GetChunk(object, index);
    ASSERT_TRUE(chunk.ok());
    EXPECT_EQ(**chunk, body.substr(index * kChunk, kChunk));
  }
  EXPECT_EQ(stats_.readahead_hits.load(), 3u);
  EXPECT_EQ(gated.gets(), 3);
  // Counted on first use only.
  ASSERT_TRUE(fetcher.GetChunk(object, 0).ok());
  EXPECT_EQ(stats_.readahead_hits.load(), 3u);
}

TEST_F(ChunkFetcherTest, ReaderFetchesQueuedReadAheadItselfInsteadOfWaiting) {
  const ObjectVersion object = PutObject("file", Pattern(4 * kChunk, 6));
  GatedStore gated(store_);
  ChunkFetcher fetcher(gated, {&memory_}, Options(1), stats_);
  ASSERT_EQ(fetcher.Prefetch(object, 0, 3), 3u);
  gated.WaitForBlocked(1);  // the only worker is busy with chunk 0; 1 and 2 are queued
  std::thread reader([&] { ASSERT_TRUE(fetcher.GetChunk(object, 2).ok()); });
  gated.WaitForBlocked(2);  // the reader reached the store while chunk 2 was still queued
  gated.Open();
  reader.join();
  fetcher.WaitIdle();
  EXPECT_EQ(gated.gets(), 3);  // chunk 2 was fetched once, by the reader
  EXPECT_EQ(stats_.readahead_chunks.load(), 2u);
  EXPECT_EQ(fetcher.readahead_bytes_in_use(), 0u);
}

TEST_F(ChunkFetcherTest, CancelledReadAheadIsDropped) {
  const ObjectVersion object = PutObject("file", Pattern(5 * kChunk, 6));
  GatedStore gated(store_);
  ChunkFetcher fetcher(gated, {&memory_}, Options(1), stats_);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  ASSERT_EQ(fetcher.Prefetch(object, 0, 5, cancel), 5u);
  gated.WaitForBlocked(1);
  cancel->store(true);
  gated.Open();
  fetcher.WaitIdle();
  EXPECT_EQ(gated.gets(), 1);  // only the one already running
  EXPECT_EQ(fetcher.readahead_bytes_in_use(), 0u);
  EXPECT_EQ(fetcher.Prefetch(object, 1, 1), 2u);  // dropped chunks can be requested again
  fetcher.WaitIdle();
  EXPECT_EQ(gated.gets(), 2);
}

TEST_F(ChunkFetcherTest, DestructionDropsQueuedReadAheadAndAwaitsRunning) {
  const ObjectVersion object = PutObject("file", Pattern(5 * kChunk, 6));
  GatedStore gated(store_);
  auto fetcher =
      std::make_unique<ChunkFetcher>(gated, std::vector<ChunkTier*>{&memory_}, Options(1), stats_);
  ASSERT_EQ(fetcher->Prefetch(object, 0, 5), 5u);
  gated.WaitForBlocked(1);
  // WaitIdle returns once destruction has begun: then the queue is already dropped. It is safe
  // to call here only because the destructor cannot finish before the gate opens.
  ChunkFetcher* const raw = fetcher.get();
  std::thread waiter([raw] { raw->WaitIdle(); });
  std::thread destroyer([&] { fetcher.reset(); });
  waiter.join();
  gated.Open();
  destroyer.join();
  EXPECT_EQ(gated.gets(), 1);
  EXPECT_EQ(stats_.readahead_chunks.load(), 1u);
  EXPECT_EQ(memory_.chunk_count(), 1u);
}

}  // namespace
}  // namespace strata
