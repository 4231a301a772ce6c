#include "base/clock.h"

#include <thread>

namespace strata {

void SystemClock::SleepFor(Duration d) { std::this_thread::sleep_for(d); }

Clock::MonoTime FakeClock::Now() {
  std::lock_guard lock(mu_);
  return now_;
}

void FakeClock::SleepFor(Duration d) {
  std::lock_guard lock(mu_);
  now_ += d;
  slept_ += d;
}

void FakeClock::Advance(Duration d) {
  std::lock_guard lock(mu_);
  now_ += d;
}

Clock::Duration FakeClock::total_slept() {
  std::lock_guard lock(mu_);
  return slept_;
}

}  // namespace strata
