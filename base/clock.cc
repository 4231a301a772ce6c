#include "base/clock.h"

#include <thread>

namespace strata {

void SystemClock::SleepFor(Duration d) { std::this_thread::sleep_for(d); }

Clock::MonoTime FakeClock::Now() {
  std::lock_guard lock(mu_);
  return now_;
}

Clock::WallTime FakeClock::WallNow() {
  std::lock_guard lock(mu_);
  return wall_;
}

void FakeClock::SleepFor(Duration d) {
  std::lock_guard lock(mu_);
  now_ += d;
  wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  slept_ += d;
}

void FakeClock::Advance(Duration d) {
  std::lock_guard lock(mu_);
  now_ += d;
  wall_ += std::chrono::duration_cast<WallTime::duration>(d);
}

void FakeClock::SetWallTime(WallTime t) {
  std::lock_guard lock(mu_);
  wall_ = t;
}

Clock::Duration FakeClock::total_slept() {
  std::lock_guard lock(mu_);
  return slept_;
}

}  // namespace strata
