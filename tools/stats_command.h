// `strata stats MOUNTPOINT`: talks to a running mount through the extended attribute
// "user.strata.stats" of its root (the counters: cache tiers, S3 requests, metadata, upload
// queue).
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Returns the exit status: 0, or 1 with a message on `err` (e.g. MOUNTPOINT is not a strata
// mount).
int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err);

}  // namespace strata
