#include "backends/faulty_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <span>
#include <thread>
#include <vector>

#include "tests/support/memory_store.h"

namespace strata {
namespace {

class FaultyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(inner_.Put("key", std::string(1000, 'x'), {}).ok()); }

  MemoryStore inner_;
  FaultyStore store_{inner_, 7};
};

TEST_F(FaultyStoreTest, PassesCallsThroughByDefault) {
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_TRUE(store_.Put("other", "body", {}).ok());
  EXPECT_TRUE(inner_.Head("other").ok());
  EXPECT_EQ(store_.faults_injected(), 0u);
  EXPECT_EQ(store_.Describe(), "faulty(memory store)");
}

TEST_F(FaultyStoreTest, FailsNthCallCountingAllCalls) {
  store_.FailNthCall(3);
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_TRUE(store_.Put("other", "body", {}).ok());
  Result<GetResult> third = store_.Get("key", {});
  ASSERT_FALSE(third.ok());
  EXPECT_TRUE(third.status().retryable());
  EXPECT_EQ(third.status().http_status(), 503);
  EXPECT_EQ(third.status().code(), "SlowDown");
  EXPECT_EQ(third.status().message(), "injected fault");
  EXPECT_TRUE(store_.Get("key", {}).ok());
  EXPECT_EQ(store_.faults_injected(), 1u);
}

TEST_F(FaultyStoreTest, FailsNthCallOfOneKind) {
  store_.FailNthCall(2, {.op = StoreOp::kGet});
  EXPECT_TRUE(store_.Get("key", {}).ok());
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_TRUE(store_.Put("key", "new", {}).ok());
  EXPECT_FALSE(store_.Get("key", {}).ok());
  EXPECT_TRUE(store_.Get("key", {}).ok());
  EXPECT_EQ(store_.faults_injected(), 1u);
}

TEST_F(FaultyStoreTest, FailsSeveralCallsInARow) {
  store_.FailNthCall(2, {.op = StoreOp::kHead}, 3);
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_FALSE(store_.Head("key").ok());
  EXPECT_FALSE(store_.Head("key").ok());
  EXPECT_FALSE(store_.Head("key").ok());
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_EQ(store_.faults_injected(), 3u);
}

TEST_F(FaultyStoreTest, InjectsTheChosenStatus) {
  store_.FailNthCall(1, {.status = Status::AccessDenied("nope").WithRemote(403, "AccessDenied")});
  Status st = store_.Delete("key");
  EXPECT_EQ(st.kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(st.http_status(), 403);
  EXPECT_TRUE(inner_.Head("key").ok()) << "a fault before the call leaves the store untouched";
}

TEST_F(FaultyStoreTest, FaultAfterTheCallLetsItTakeEffect) {
  store_.FailNthCall(1, {.op = StoreOp::kPut, .timing = FaultTiming::kAfter});
  EXPECT_FALSE(store_.Put("written", "anyway", {}).ok());
  Result<GetResult> got = inner_.Get("written", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "anyway");
}

TEST_F(FaultyStoreTest, OpFilterFailsOnlyThatKind) {
  store_.FailAll({.op = StoreOp::kPut});
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(store_.Put("p", "x", {}).ok());
  EXPECT_TRUE(store_.Get("key", {}).ok());
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_TRUE(store_.List({}).ok());
  EXPECT_TRUE(store_.Delete("missing").ok());
  EXPECT_EQ(store_.faults_injected(), 5u);
  store_.Clear();
  EXPECT_TRUE(store_.Put("p", "x", {}).ok());
}

std::vector<bool> FailurePattern(uint64_t seed, double fraction, int calls) {
  MemoryStore inner;
  FaultyStore store(inner, seed);
  store.FailFraction(fraction);
  std::vector<bool> pattern;
  for (int i = 0; i < calls; ++i) pattern.push_back(!store.Delete("k").ok());
  return pattern;
}

TEST(FaultyStoreFractionTest, SameSeedSamePattern) {
  std::vector<bool> a = FailurePattern(42, 0.3, 400);
  std::vector<bool> b = FailurePattern(42, 0.3, 400);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, FailurePattern(43, 0.3, 400));
  long failed = std::count(a.begin(), a.end(), true);
  EXPECT_GT(failed, 80);  // expected 120
  EXPECT_LT(failed, 160);
}

TEST(FaultyStoreFractionTest, ZeroAndOne) {
  std::vector<bool> none = FailurePattern(1, 0.0, 100);
  std::vector<bool> all = FailurePattern(1, 1.0, 100);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 0);
  EXPECT_EQ(std::count(all.begin(), all.end(), true), 100);
}

TEST_F(FaultyStoreTest, CutsBodiesShortWhileReportingOk) {
  store_.CutBodies({.keep_fraction = 0.5});
  Result<GetResult> got = store_.Get("key", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body.size(), 500u);
  EXPECT_EQ(got->info.size, 1000u) << "the object size still tells the truth";

  GetOptions ranged;
  ranged.range = ByteRange{100, 200};
  got = store_.Get("key", ranged);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body.size(), 100u);

  store_.CutBodies({.keep_bytes = 10, .times = 1});
  got = store_.Get("key", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, std::string(10, 'x'));
  got = store_.Get("key", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body.size(), 1000u) << "times = 1 cuts one body only";
  EXPECT_EQ(store_.bodies_cut(), 3u);
  EXPECT_EQ(store_.faults_injected(), 0u);
}

TEST_F(FaultyStoreTest, GetIntoIsAGetForFaultsAndCuts) {
  std::vector<char> buffer(2000);
  store_.FailNthCall(1, {.op = StoreOp::kGet});
  EXPECT_FALSE(store_.GetInto("key", {}, std::span<char>(buffer)).ok());
  store_.CutBodies({.keep_bytes = 100});
  Result<GetIntoResult> got = store_.GetInto("key", {}, std::span<char>(buffer));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, 100u);
  EXPECT_EQ(got->info.size, 1000u);
  EXPECT_EQ(store_.calls(StoreOp::kGet), 2u);
  EXPECT_EQ(store_.bodies_cut(), 1u);
}

TEST_F(FaultyStoreTest, CutAlwaysRemovesAtLeastOneByte) {
  store_.CutBodies({.keep_fraction = 1.0});
  Result<GetResult> got = store_.Get("key", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body.size(), 999u);
  ASSERT_TRUE(inner_.Put("empty", "", {}).ok());
  got = store_.Get("empty", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "");
  EXPECT_EQ(store_.bodies_cut(), 1u);
}

TEST_F(FaultyStoreTest, CountsCalls) {
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_TRUE(store_.Head("key").ok());
  EXPECT_TRUE(store_.Get("key", {}).ok());
  EXPECT_EQ(store_.calls(), 3u);
  EXPECT_EQ(store_.calls(StoreOp::kHead), 2u);
  EXPECT_EQ(store_.calls(StoreOp::kGet), 1u);
  EXPECT_EQ(store_.calls(StoreOp::kPut), 0u);
  EXPECT_EQ(StoreOpName(StoreOp::kCompleteMultipart), "CompleteMultipartUpload");
}

TEST_F(FaultyStoreTest, ThreadSafe) {
  store_.FailFraction(0.5, {.op = StoreOp::kHead});
  std::atomic<uint64_t> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (store_.Head("key").ok()) ++succeeded;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(succeeded.load() + store_.faults_injected(), 1600u);
  EXPECT_EQ(store_.calls(StoreOp::kHead), 1600u);
  EXPECT_GT(store_.faults_injected(), 0u);
  EXPECT_GT(succeeded.load(), 0u);
}

}  // namespace
}  // namespace strata
