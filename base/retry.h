// RetryPolicy: capped exponential backoff with full jitter, shared by every caller that retries
// transient failures (the S3 client now, the upload queue later). Stateless; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace strata {

struct RetryPolicy {
  // Total attempts including the first; 0 means retry forever.
  int max_attempts = 5;
  std::chrono::milliseconds base_delay{50};
  std::chrono::milliseconds max_delay{5000};

  // True when attempt number `attempt` (1 = the first try just failed) may be followed by another.
  bool ShouldRetry(int attempt) const { return max_attempts == 0 || attempt < max_attempts; }

  // Delay before the attempt after `attempt`: uniform in [0, min(max_delay, base * 2^(attempt-1))]
  // ("full jitter"), so many clients that failed together do not retry together.
  // REQUIRES: attempt >= 1
  std::chrono::milliseconds Backoff(int attempt, std::mt19937_64& rng) const;

  // The upper bound Backoff draws from, for tests and logs.
  std::chrono::milliseconds BackoffCeiling(int attempt) const;
};

}  // namespace strata
