#include "cache/write_behind_tier.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace strata {
namespace {

// A tier whose Put blocks until released, to hold the writer mid-write.
class GatedTier final : public ChunkTier {
 public:
  Result<std::optional<ChunkData>> Get(const ChunkKey& key) override {
    std::lock_guard lock(mu_);
    auto it = chunks_.find(key.Id());
    if (it == chunks_.end()) return std::optional<ChunkData>();
    return std::optional<ChunkData>(it->second);
  }
  Status Put(const ChunkKey& key, const ChunkData& data) override {
    std::unique_lock lock(mu_);
    open_.wait(lock, [this] { return released_; });
    chunks_[key.Id()] = data;
    return Status::Ok();
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    open_.notify_all();
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return chunks_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable open_;
  bool released_ = false;
  std::map<std::string, ChunkData> chunks_;
};

ChunkKey Key(uint64_t index) { return ChunkKey{"b", "k", "e", 4, index}; }
ChunkData Data(const std::string& s) { return MakeChunk(s); }

TEST(WriteBehindTierTest, PutReturnsBeforeTheSlowWriteAndGetSeesQueuedChunks) {
  GatedTier slow;
  CacheStats stats;
  WriteBehindTier tier(slow, 1 << 20, stats);
  ASSERT_TRUE(tier.Put(Key(0), Data("abcd")).ok());  // would block forever if synchronous
  ASSERT_TRUE(tier.Put(Key(1), Data("efgh")).ok());
  auto got = tier.Get(Key(1));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(***got, "efgh");
  EXPECT_EQ(slow.size(), 0u);
  slow.Release();
  tier.Drain();
  EXPECT_EQ(slow.size(), 2u);
  got = tier.Get(Key(0));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(***got, "abcd");
}

TEST(WriteBehindTierTest, FullQueueDropsTheChunkInsteadOfWaiting) {
  GatedTier slow;
  CacheStats stats;
  {
    WriteBehindTier tier(slow, 8, stats);
    ASSERT_TRUE(tier.Put(Key(0), Data("1234")).ok());
    ASSERT_TRUE(tier.Put(Key(1), Data("5678")).ok());
    // Over 8 queued bytes while the disk is stuck: returns at once (this would block forever
    // if it waited) and the chunk is dropped.
    ASSERT_TRUE(tier.Put(Key(2), Data("9abc")).ok());
    EXPECT_EQ(stats.disk_write_drops.load(), 1u);
    auto dropped = tier.Get(Key(2));
    ASSERT_TRUE(dropped.ok());
    EXPECT_FALSE(dropped->has_value()) << "a dropped chunk is a miss";
    slow.Release();
    tier.Drain();
    ASSERT_TRUE(tier.Put(Key(2), Data("9abc")).ok());  // room again: queued
  }                                                    // the destructor writes out the queue
  EXPECT_EQ(slow.size(), 3u);
  EXPECT_EQ(stats.disk_write_drops.load(), 1u);
}

}  // namespace
}  // namespace strata
