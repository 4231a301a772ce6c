// Clock: the source of time and of sleeping for everything that waits (retry backoff, TTLs,
// batching). Injected through constructors so tests can use FakeClock. Thread-safe.
#pragma once

#include <chrono>
#include <mutex>

#include "base/thread_annotations.h"

namespace strata {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using MonoTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual MonoTime Now() = 0;
  virtual void SleepFor(Duration d) = 0;
};

// Real time.
class SystemClock final : public Clock {
 public:
  MonoTime Now() override { return std::chrono::steady_clock::now(); }
  void SleepFor(Duration d) override;
};

// Time that moves only when told to. SleepFor advances the clock at once and records the
// total slept, so tests can check backoff without waiting.
class FakeClock final : public Clock {
 public:
  MonoTime Now() override;
  void SleepFor(Duration d) override;
  void Advance(Duration d);
  Duration total_slept();

 private:
  std::mutex mu_;
  MonoTime now_ GUARDED_BY(mu_){};
  Duration slept_ GUARDED_BY(mu_){0};
};

}  // namespace strata
