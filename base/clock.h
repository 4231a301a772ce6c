// Clock: the source of time and of sleeping for everything that waits (retry backoff, TTLs,
// batching). Injected through constructors so tests can use FakeClock. Thread-safe.
#pragma once

#include <chrono>

#include "base/mutex.h"
#include "base/thread_annotations.h"

namespace strata {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using MonoTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  // Steady time, for intervals and deadlines.
  virtual MonoTime Now() = 0;
  // Wall-clock time, for timestamps that are stored or shown (it may jump).
  virtual WallTime WallNow() = 0;
  virtual void SleepFor(Duration d) = 0;
};

// Real time.
class SystemClock final : public Clock {
 public:
  MonoTime Now() override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() override { return std::chrono::system_clock::now(); }
  void SleepFor(Duration d) override;
};

// Time that moves only when told to. SleepFor advances the clock at once and records the
// total slept, so tests can check backoff without waiting. The wall time starts at the real
// time of construction and moves with Now (Advance, SleepFor) unless set.
class FakeClock final : public Clock {
 public:
  MonoTime Now() override;
  WallTime WallNow() override;
  void SleepFor(Duration d) override;
  void Advance(Duration d);
  void SetWallTime(WallTime t);
  Duration total_slept();

 private:
  Mutex mu_;
  MonoTime now_ GUARDED_BY(mu_){};
  WallTime wall_ GUARDED_BY(mu_){std::chrono::system_clock::now()};
  Duration slept_ GUARDED_BY(mu_){0};
};

}  // namespace strata
