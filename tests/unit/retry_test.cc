#include "base/retry.h"

#include <gtest/gtest.h>

#include <set>

#include "base/clock.h"

namespace strata {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicyTest, CeilingDoublesUpToCap) {
  RetryPolicy policy{
      .max_attempts = 0, .base_delay = milliseconds(50), .max_delay = milliseconds(1000)};
  EXPECT_EQ(policy.BackoffCeiling(1), milliseconds(50));
  EXPECT_EQ(policy.BackoffCeiling(2), milliseconds(100));
  EXPECT_EQ(policy.BackoffCeiling(5), milliseconds(800));
  EXPECT_EQ(policy.BackoffCeiling(6), milliseconds(1000));
  EXPECT_EQ(policy.BackoffCeiling(1000), milliseconds(1000));
}

TEST(RetryPolicyTest, JitterStaysUnderCeilingAndVaries) {
  RetryPolicy policy;
  std::mt19937_64 rng(42);
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    milliseconds delay = policy.Backoff(4, rng);
    EXPECT_GE(delay.count(), 0);
    EXPECT_LE(delay, policy.BackoffCeiling(4));
    seen.insert(delay.count());
  }
  EXPECT_GT(seen.size(), 20u);
}

TEST(RetryPolicyTest, AttemptLimit) {
  RetryPolicy limited{.max_attempts = 3};
  EXPECT_TRUE(limited.ShouldRetry(1));
  EXPECT_TRUE(limited.ShouldRetry(2));
  EXPECT_FALSE(limited.ShouldRetry(3));
  RetryPolicy forever{.max_attempts = 0};
  EXPECT_TRUE(forever.ShouldRetry(1000000));
}

TEST(FakeClockTest, SleepAdvancesTime) {
  FakeClock clock;
  auto start = clock.Now();
  clock.SleepFor(milliseconds(30));
  clock.Advance(milliseconds(5));
  EXPECT_EQ(clock.Now() - start, milliseconds(35));
  EXPECT_EQ(clock.total_slept(), milliseconds(30));
}

TEST(FakeClockTest, WallTimeMovesWithTheClockAndCanBeSet) {
  FakeClock clock;
  const auto wall = clock.WallNow();
  EXPECT_EQ(clock.WallNow(), wall);  // frozen until told
  clock.SleepFor(milliseconds(30));
  clock.Advance(milliseconds(5));
  EXPECT_EQ(clock.WallNow() - wall, milliseconds(35));
  const std::chrono::system_clock::time_point epoch_plus_1s{std::chrono::seconds(1)};
  clock.SetWallTime(epoch_plus_1s);
  EXPECT_EQ(clock.WallNow(), epoch_plus_1s);
}

}  // namespace
}  // namespace strata
