// `strata stats MOUNTPOINT`: prints the counters of a running mount (cache tiers, S3 requests,
// metadata), read from the mount root's "user.strata.stats" extended attribute.
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Returns the exit status: 0, or 1 with a message on `err` when MOUNTPOINT is not a strata mount.
int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err);

}  // namespace strata
