#include "cache/memory_tier.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_stats.h"
#include "cache/chunk_key.h"

namespace strata {
namespace {

constexpr uint64_t kChunk = 1000;

ChunkKey Key(uint64_t index, std::string etag = "etag-1") {
  return ChunkKey{"bucket", "dir/object", std::move(etag), static_cast<uint32_t>(kChunk), index};
}

ChunkData Data(uint64_t size = kChunk, char fill = 'x') {
  return MakeChunk(std::string(size, fill));
}

// One shard of `chunks` chunks of kChunk bytes, so eviction order is fully predictable.
MemoryTier::Options OneShard(uint64_t chunks, double protected_fraction = 0.8) {
  return {.budget_bytes = chunks * kChunk,
          .shards = 1,
          .min_shard_bytes = 0,
          .protected_fraction = protected_fraction};
}

bool Cached(MemoryTier& tier, const ChunkKey& key) {
  Result<std::optional<ChunkData>> got = tier.Get(key);
  EXPECT_TRUE(got.ok());
  return got.ok() && got->has_value();
}

TEST(MemoryTierTest, MissThenHitReturnsTheSameSharedPointer) {
  CacheStats stats;
  MemoryTier tier(OneShard(4), stats);
  Result<std::optional<ChunkData>> miss = tier.Get(Key(0));
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  EXPECT_EQ(stats.memory_misses.load(), 1u);

  const ChunkData data = Data(700);
  ASSERT_TRUE(tier.Put(Key(0), data).ok());
  Result<std::optional<ChunkData>> hit = tier.Get(Key(0));
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(hit->value().get(), data.get());  // stored by reference, not copied
  EXPECT_EQ(stats.memory_hits.load(), 1u);
  EXPECT_EQ(stats.memory_bytes_served.load(), 700u);
  EXPECT_EQ(tier.used_bytes(), 700u);
  EXPECT_EQ(tier.chunk_count(), 1u);
}

TEST(MemoryTierTest, EveryFieldOfTheKeyIsPartOfTheIdentity) {
  CacheStats stats;
  MemoryTier tier(OneShard(4), stats);
  ASSERT_TRUE(tier.Put(Key(0), Data()).ok());
  ChunkKey other_size = Key(0);
  other_size.chunk_size = 2 * kChunk;
  ChunkKey other_bucket = Key(0);
  other_bucket.bucket = "other";
  EXPECT_FALSE(Cached(tier, Key(0, "etag-2")));
  EXPECT_FALSE(Cached(tier, Key(1)));
  EXPECT_FALSE(Cached(tier, other_size));
  EXPECT_FALSE(Cached(tier, other_bucket));
  EXPECT_TRUE(Cached(tier, Key(0)));
}

TEST(MemoryTierTest, StaysWithinBudgetEvictingLeastRecentlyInsertedFirst) {
  CacheStats stats;
  MemoryTier tier(OneShard(4), stats);
  for (uint64_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(tier.Put(Key(i), Data()).ok());
    EXPECT_LE(tier.used_bytes(), 4 * kChunk);
  }
  EXPECT_EQ(tier.chunk_count(), 4u);
  EXPECT_EQ(stats.memory_evictions.load(), 2u);
  EXPECT_FALSE(Cached(tier, Key(0)));
  EXPECT_FALSE(Cached(tier, Key(1)));
  for (uint64_t i = 2; i < 6; ++i) EXPECT_TRUE(Cached(tier, Key(i))) << i;
}

TEST(MemoryTierTest, RejectsWhatCannotFit) {
  CacheStats stats;
  MemoryTier tier(OneShard(4), stats);
  Status too_big = tier.Put(Key(0), Data(4 * kChunk + 1));
  EXPECT_EQ(too_big.kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(tier.Put(Key(0), nullptr).kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(tier.Put(Key(0), Data(4 * kChunk)).ok());  // exactly the budget fits
  EXPECT_EQ(tier.used_bytes(), 4 * kChunk);
}

TEST(MemoryTierTest, ShardCountKeepsEachShardLargeEnough) {
  CacheStats stats;
  MemoryTier clamped({.budget_bytes = 64ull << 20, .shards = 16, .min_shard_bytes = 32ull << 20},
                     stats);
  EXPECT_EQ(clamped.shard_count(), 2u);
  EXPECT_EQ(clamped.shard_budget(), 32ull << 20);
  MemoryTier tiny({.budget_bytes = 1 << 20, .shards = 16, .min_shard_bytes = 32ull << 20}, stats);
  EXPECT_EQ(tiny.shard_count(), 1u);
  MemoryTier unclamped({.budget_bytes = 1 << 20, .shards = 16, .min_shard_bytes = 0}, stats);
  EXPECT_EQ(unclamped.shard_count(), 16u);
  EXPECT_EQ(unclamped.shard_budget(), (1u << 20) / 16);
}

TEST(MemoryTierTest, ReplacingAChunkKeepsTheAccountingRight) {
  CacheStats stats;
  MemoryTier tier(OneShard(4), stats);
  ASSERT_TRUE(tier.Put(Key(0), Data(kChunk, 'a')).ok());
  ASSERT_TRUE(tier.Put(Key(0), Data(kChunk, 'b')).ok());
  EXPECT_EQ(tier.chunk_count(), 1u);
  EXPECT_EQ(tier.used_bytes(), kChunk);
  ASSERT_TRUE(tier.Put(Key(0), Data(10, 'c')).ok());
  EXPECT_EQ(tier.used_bytes(), 10u);
  Result<std::optional<ChunkData>> got = tier.Get(Key(0));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(*got->value(), std::string(10, 'c'));
  EXPECT_EQ(stats.memory_evictions.load(), 0u);
}

TEST(MemoryTierTest, ChunksHitTwiceOutliveNewerChunksReadOnce) {
  CacheStats stats;
  MemoryTier tier(OneShard(4), stats);
  ASSERT_TRUE(tier.Put(Key(0), Data()).ok());
  ASSERT_TRUE(Cached(tier, Key(0)));  // second use: promoted
  for (uint64_t i = 1; i < 4; ++i) ASSERT_TRUE(tier.Put(Key(i), Data()).ok());
  // Key 0 is the oldest, but probation chunks go first.
  ASSERT_TRUE(tier.Put(Key(4), Data()).ok());
  EXPECT_TRUE(Cached(tier, Key(0)));
  EXPECT_FALSE(Cached(tier, Key(1)));
}

TEST(MemoryTierTest, LongScanDoesNotFlushTheProtectedSet) {
  CacheStats stats;
  MemoryTier tier(OneShard(10), stats);
  const std::vector<uint64_t> hot = {0, 1, 2, 3};
  for (uint64_t i : hot) {
    ASSERT_TRUE(tier.Put(Key(i), Data()).ok());
    ASSERT_TRUE(Cached(tier, Key(i)));
  }
  // A scan: each chunk missed once, inserted, never looked up again.
  for (uint64_t i = 100; i < 1100; ++i) {
    ASSERT_FALSE(Cached(tier, Key(i)));
    ASSERT_TRUE(tier.Put(Key(i), Data()).ok());
    ASSERT_LE(tier.used_bytes(), 10 * kChunk);
  }
  for (uint64_t i : hot) EXPECT_TRUE(Cached(tier, Key(i))) << i;
  EXPECT_GE(stats.memory_evictions.load(), 990u);
  // The scan still had the probation room to itself: its latest chunks are cached.
  EXPECT_TRUE(Cached(tier, Key(1099)));
}

TEST(MemoryTierTest, ProtectedOverflowDemotesItsLeastRecentlyUsed) {
  CacheStats stats;
  MemoryTier tier(OneShard(10, 0.5), stats);  // protected segment: 5 chunks
  for (uint64_t i = 0; i < 7; ++i) {
    ASSERT_TRUE(tier.Put(Key(i), Data()).ok());
    ASSERT_TRUE(Cached(tier, Key(i)));
  }
  // 0 and 1 were demoted to probation; a scan evicts them and leaves 2..6.
  for (uint64_t i = 100; i < 120; ++i) ASSERT_TRUE(tier.Put(Key(i), Data()).ok());
  EXPECT_FALSE(Cached(tier, Key(0)));
  EXPECT_FALSE(Cached(tier, Key(1)));
  for (uint64_t i = 2; i < 7; ++i) EXPECT_TRUE(Cached(tier, Key(i))) << i;
}

TEST(MemoryTierTest, ConcurrentUseStaysWithinBudget) {
  CacheStats stats;
  MemoryTier tier({.budget_bytes = 64 * kChunk, .shards = 4, .min_shard_bytes = 0}, stats);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&tier, t] {
      std::mt19937_64 rng(t);
      for (int op = 0; op < 2000; ++op) {
        const ChunkKey key = Key(rng() % 200);
        Result<std::optional<ChunkData>> got = tier.Get(key);
        ASSERT_TRUE(got.ok());
        if (got->has_value()) {
          ASSERT_EQ(got->value()->size(), kChunk / 2 + key.index);
        } else {
          ASSERT_TRUE(tier.Put(key, Data(kChunk / 2 + key.index)).ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(tier.used_bytes(), 64 * kChunk);
  EXPECT_EQ(stats.memory_hits.load() + stats.memory_misses.load(), 8u * 2000u);
}

}  // namespace
}  // namespace strata
