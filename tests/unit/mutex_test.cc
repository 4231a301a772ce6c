#include "base/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/thread_annotations.h"

namespace strata {
namespace {

using namespace std::chrono_literals;

struct Counter {
  Mutex mu;
  CondVar cv;
  int n GUARDED_BY(mu) = 0;
};

TEST(MutexTest, LockUnlock) {
  Counter c;
  {
    MutexLock lock(c.mu);
    c.n = 1;
    lock.Unlock();
    bool free = c.mu.TryLock();  // free while unlocked
    EXPECT_TRUE(free);
    if (free) c.mu.Unlock();
    lock.Lock();
    c.n++;
  }
  c.mu.Lock();
  EXPECT_EQ(c.n, 2);
  c.mu.Unlock();
}

TEST(MutexTest, TryLockFailsWhileHeldElsewhere) {
  Counter c;
  MutexLock lock(c.mu);
  bool acquired = true;
  std::thread other([&] {
    bool got = c.mu.TryLock();
    if (got) c.mu.Unlock();
    acquired = got;
  });
  other.join();
  EXPECT_FALSE(acquired);
}

TEST(MutexTest, WorksWithStandardLocks) {
  Counter c;
  { std::lock_guard lock(c.mu); }
  std::unique_lock lock(c.mu, std::try_to_lock);
  EXPECT_TRUE(lock.owns_lock());
}

TEST(CondVarTest, WaitWithPredicate) {
  Counter c;
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) {
      MutexLock lock(c.mu);
      c.n++;
      c.cv.NotifyAll();
    }
  });
  {
    MutexLock lock(c.mu);
    c.cv.Wait(lock, [&]() REQUIRES(c.mu) { return c.n == 3; });
    EXPECT_EQ(c.n, 3);
  }
  producer.join();
}

TEST(CondVarTest, WaitForTimesOutWhenPredicateStaysFalse) {
  Counter c;
  MutexLock lock(c.mu);
  EXPECT_FALSE(c.cv.WaitFor(lock, 10ms, [&]() REQUIRES(c.mu) { return c.n > 0; }));
  c.n = 1;  // still held after the wait
  EXPECT_TRUE(c.cv.WaitFor(lock, 10ms, [&]() REQUIRES(c.mu) { return c.n > 0; }));
}

TEST(CondVarTest, WaitUntilWokenBeforeDeadline) {
  Counter c;
  std::thread producer([&] {
    MutexLock lock(c.mu);
    c.n = 1;
    c.cv.NotifyOne();
  });
  {
    MutexLock lock(c.mu);
    EXPECT_TRUE(c.cv.WaitUntil(lock, std::chrono::steady_clock::now() + 60s,
                               [&]() REQUIRES(c.mu) { return c.n == 1; }));
  }
  producer.join();
}

TEST(SharedMutexTest, ReadersShareWritersExclude) {
  SharedMutex mu;
  {
    ReaderMutexLock a(mu);
    EXPECT_TRUE(mu.try_lock_shared());
    mu.unlock_shared();
    EXPECT_FALSE(mu.try_lock());
  }
  {
    WriterMutexLock w(mu);
    EXPECT_FALSE(mu.try_lock_shared());
    w.Unlock();
    bool free = mu.try_lock();
    EXPECT_TRUE(free);
    if (free) mu.unlock();
  }
}

}  // namespace
}  // namespace strata
