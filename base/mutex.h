// Mutex, SharedMutex, their scoped locks and CondVar: std::mutex, std::shared_mutex and
// std::condition_variable with clang's thread-safety annotations (base/thread_annotations.h), so
// that GUARDED_BY, REQUIRES and EXCLUDES are checked (.ci/clang-thread-safety.sh).
//
//   Mutex mu_;
//   int n_ GUARDED_BY(mu_);
//   CondVar cv_;
//   ...
//   MutexLock lock(mu_);
//   cv_.Wait(lock, [&]() REQUIRES(mu_) { return n_ > 0; });
//
// Mutex and SharedMutex also have the standard lower-case names, so std::unique_lock and the like
// still work with them; the analysis does not follow those, so prefer the scoped locks here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "base/thread_annotations.h"

namespace strata {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the calling thread holds *this; checks nothing at run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

  // Lockable, for the standard library's lock types.
  void lock() ACQUIRE() { Lock(); }
  void unlock() RELEASE() { Unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return TryLock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction, but for Unlock ... Lock in between.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() RELEASE() {
    if (locked_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Lets go of the mutex until Lock.
  void Unlock() RELEASE() {
    mu_.Unlock();
    locked_ = false;
  }
  void Lock() ACQUIRE() {
    mu_.Lock();
    locked_ = true;
  }

 private:
  friend class CondVar;
  Mutex& mu_;
  bool locked_ = true;
};

// A condition variable waited on with a MutexLock that holds the mutex. As with
// std::condition_variable, wake-ups may be spurious: wait in a loop or with a predicate. The
// predicate runs with the mutex held; annotate a lambda that reads guarded state with
// REQUIRES(mu), as in the example above. The analysis cannot see inside the waits with a
// predicate that the predicate's mutex is the one `lock` holds, so those are not analysed
// (NO_THREAD_SAFETY_ANALYSIS); the predicate itself is.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

  void Wait(MutexLock& lock) {
    std::unique_lock<std::mutex> inner = Adopt(lock);
    cv_.wait(inner);
    inner.release();  // still locked: `lock` owns it again
  }
  template <typename Predicate>
  void Wait(MutexLock& lock, Predicate pred) NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) Wait(lock);
  }

  // std::cv_status::timeout if `deadline` passed (a notification may have come too).
  template <typename Clock, typename Duration>
  std::cv_status WaitUntil(MutexLock& lock,
                           const std::chrono::time_point<Clock, Duration>& deadline) {
    std::unique_lock<std::mutex> inner = Adopt(lock);
    std::cv_status status = cv_.wait_until(inner, deadline);
    inner.release();
    return status;
  }
  // pred(): true unless `deadline` passed with it false.
  template <typename Clock, typename Duration, typename Predicate>
  bool WaitUntil(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate pred) NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) {
      if (WaitUntil(lock, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  template <typename Rep, typename Period>
  std::cv_status WaitFor(MutexLock& lock, const std::chrono::duration<Rep, Period>& timeout) {
    std::unique_lock<std::mutex> inner = Adopt(lock);
    std::cv_status status = cv_.wait_for(inner, timeout);
    inner.release();
    return status;
  }
  // As std::condition_variable::wait_for: a wait until steady_clock::now() + timeout.
  template <typename Rep, typename Period, typename Predicate>
  bool WaitFor(MutexLock& lock, const std::chrono::duration<Rep, Period>& timeout, Predicate pred) {
    return WaitUntil(lock,
                     std::chrono::steady_clock::now() +
                         std::chrono::ceil<std::chrono::steady_clock::duration>(timeout),
                     std::move(pred));
  }

 private:
  // The std::mutex under `lock`, held, in the form std::condition_variable waits with. The
  // caller releases it after the wait, leaving it locked and owned by `lock` again.
  static std::unique_lock<std::mutex> Adopt(MutexLock& lock) {
    return std::unique_lock<std::mutex>(lock.mu_.mu_, std::adopt_lock);
  }

  std::condition_variable cv_;
};

// A reader-writer lock: held exclusively (Lock) or shared (LockShared).
class CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }

  // SharedLockable, for the standard library's lock types.
  void lock() ACQUIRE() { Lock(); }
  void unlock() RELEASE() { Unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void lock_shared() ACQUIRE_SHARED() { LockShared(); }
  void unlock_shared() RELEASE_SHARED() { UnlockShared(); }
  bool try_lock_shared() TRY_ACQUIRE_SHARED(true) { return mu_.try_lock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a SharedMutex exclusively from construction to destruction, but for Unlock ... Lock.
class SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~WriterMutexLock() RELEASE() {
    if (locked_) mu_.Unlock();
  }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

  void Unlock() RELEASE() {
    mu_.Unlock();
    locked_ = false;
  }
  void Lock() ACQUIRE() {
    mu_.Lock();
    locked_ = true;
  }

 private:
  SharedMutex& mu_;
  bool locked_ = true;
};

// Holds a SharedMutex shared from construction to destruction.
class SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.LockShared(); }
  ~ReaderMutexLock() RELEASE() { mu_.UnlockShared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace strata
