// UploadQueue under keys that keep failing: a failed entry is parked, not slept on, so other
// keys upload meanwhile; its own later operations stay behind it; it shows as stuck.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cache/upload_queue.h"
#include "tests/unit/upload_queue_test_util.h"

namespace strata::queue_test {
namespace {

using std::chrono::seconds;

// What radosgw answers forever for a key past its object-name limit.
InjectedFault Poison(std::optional<StoreOp> op = std::nullopt) {
  return InjectedFault{
      .op = op,
      .status =
          Status::Transient("We encountered an internal error").WithRemote(500, "UnknownError"),
      .key_contains = "poison"};
}

TEST_F(QueueTest, KeysThatAlwaysFailNeverStopTheOthers) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  store.FailAll(Poison());
  UploadQueueOptions options = Options();  // 4 workers: as many as poison keys
  OpenQueue(store, options);
  queue_->Start();
  for (int i = 0; i < 4; ++i) Put("dir/poison-" + std::to_string(i), "never");
  std::vector<uint64_t> others;
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "dir/file-" + std::to_string(i);
    expected[key] = Bytes(100 + i, i);
    others.push_back(Put(key, expected[key]));
  }
  for (uint64_t seq : others) {
    Status st = queue_->WaitUploaded(seq, seconds(20));
    ASSERT_TRUE(st.ok()) << "entry " << seq << ": " << st.ToString();
  }
  for (const auto& [key, content] : expected) EXPECT_EQ(Object(mem, key), content) << key;

  // The four are neither lost nor dead: they keep being retried, and show as stuck.
  for (int spins = 0; queue_->stats().stuck < 4 && spins < 2000; ++spins) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const UploadQueueStats stats = queue_->stats();
  EXPECT_EQ(stats.stuck, 4u);
  EXPECT_EQ(stats.dead_letters, 0u);
  EXPECT_EQ(stats.depth, 4u);
  const std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 4u);
  for (const QueueEntryView& view : list) {
    EXPECT_TRUE(view.state == QueueEntryState::kStuck || view.state == QueueEntryState::kUploading)
        << QueueEntryStateName(view.state);
    EXPECT_GE(view.attempts, options.stuck_attempts);
    EXPECT_NE(view.last_error.find("HTTP 500"), std::string::npos) << view.last_error;
  }

  // Once the server takes them, they arrive.
  store.Clear();
  DrainOk();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Object(mem, "dir/poison-" + std::to_string(i)), "never");
  EXPECT_EQ(queue_->stats().stuck, 0u);
}

TEST_F(QueueTest, OneWorkerStillServesFreshKeysBetweenRetries) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  store.FailAll(Poison());
  UploadQueueOptions options = Options();
  options.workers = 1;
  OpenQueue(store, options);
  queue_->Start();
  Put("poison", "x");
  std::vector<uint64_t> others;
  for (int i = 0; i < 20; ++i) others.push_back(Put("k" + std::to_string(i), "v"));
  for (uint64_t seq : others) ASSERT_TRUE(queue_->WaitUploaded(seq, seconds(20)).ok());
  // And the poison key is still retried (its backoff may not have run out while the 20 others
  // went: waiting here, not asserting at once, keeps this independent of the machine's speed).
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (store.calls(StoreOp::kPut) <= 21u && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(store.calls(StoreOp::kPut), 21u);  // the poison key was tried more than once
}

TEST_F(QueueTest, LaterOperationsOfAFailingKeyWaitBehindIt) {
  MemoryStore& mem = Own<MemoryStore>();
  ASSERT_TRUE(mem.Put("a", "old a", {}).ok());
  FaultyStore& store = Own<FaultyStore>(mem);
  // The copy of a rename a -> b fails for a while.
  store.FailNthCall(1, {.op = StoreOp::kCopy}, 6);
  OpenQueue(store);
  queue_->Start();
  Rename("a", "b");  // copy a -> b, delete a: cannot be dropped by what follows
  const uint64_t put_b = Put("b", "new b");
  const uint64_t other = Put("c", "c");
  ASSERT_TRUE(queue_->WaitUploaded(other, seconds(20)).ok());
  ASSERT_TRUE(queue_->WaitUploaded(put_b, seconds(20)).ok());
  // The copy went through first, then the put: the newer content wins.
  EXPECT_EQ(Object(mem, "b"), "new b");
  EXPECT_EQ(Object(mem, "a"), std::nullopt);
  EXPECT_EQ(store.calls(StoreOp::kCopy), 7u);
  EXPECT_EQ(queue_->stats().retries, 6u);
  DrainOk();
}

TEST_F(QueueTest, ParkedEntryIsDroppedByANewerVersion) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  store.FailNthCall(1, {.op = StoreOp::kPut});
  UploadQueueOptions options = Options();
  // Real time, and a backoff far longer than the test: v1 stays parked.
  options.clock = nullptr;
  options.retry.base_delay = options.retry.max_delay = std::chrono::hours(1);
  OpenQueue(store, options);
  queue_->Start();
  Put("poison", "v1");
  for (int spins = 0; queue_->stats().backoff < 1 && spins < 2000; ++spins) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(queue_->stats().backoff, 1u);
  EXPECT_EQ(queue_->List().at(0).state, QueueEntryState::kBackoff);
  EXPECT_TRUE(queue_->List().at(0).next_attempt_in.has_value());
  const uint64_t v2 = Put("poison", "v2");  // drops v1 while it waits for its next attempt
  ASSERT_TRUE(queue_->WaitUploaded(v2, seconds(20)).ok());
  DrainOk();
  EXPECT_EQ(Object(mem, "poison"), "v2");
  EXPECT_EQ(queue_->stats().dropped, 1u);
  EXPECT_EQ(store.calls(StoreOp::kPut), 2u);
}

}  // namespace
}  // namespace strata::queue_test
