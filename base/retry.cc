#include "base/retry.h"

#include <algorithm>

namespace strata {

std::chrono::milliseconds RetryPolicy::BackoffCeiling(int attempt) const {
  const int doublings = std::clamp(attempt - 1, 0, 30);
  const int64_t ceiling = base_delay.count() << doublings;
  return std::min(max_delay, std::chrono::milliseconds(ceiling));
}

std::chrono::milliseconds RetryPolicy::Backoff(int attempt, std::mt19937_64& rng) const {
  std::uniform_int_distribution<int64_t> jitter(0, BackoffCeiling(attempt).count());
  return std::chrono::milliseconds(jitter(rng));
}

}  // namespace strata
