#include "base/clock.h"

#include <thread>

namespace strata {

void SystemClock::SleepFor(Duration d) { std::this_thread::sleep_for(d); }

Clock::MonoTime FakeClock::Now() {
  MutexLock lock(mu_);
  return now_;
}

Clock::WallTime FakeClock::WallNow() {
  MutexLock lock(mu_);
  return wall_;
}

void FakeClock::SleepFor(Duration d) {
  MutexLock lock(mu_);
  now_ += d;
  wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  slept_ += d;
}

void FakeClock::Advance(Duration d) {
  MutexLock lock(mu_);
  now_ += d;
  wall_ += std::chrono::duration_cast<WallTime::duration>(d);
}

void FakeClock::SetWallTime(WallTime t) {
  MutexLock lock(mu_);
  wall_ = t;
}

Clock::Duration FakeClock::total_slept() {
  MutexLock lock(mu_);
  return slept_;
}

}  // namespace strata
