// `strata stats MOUNTPOINT`: asks a running mount for its counters (cache tiers, S3 requests,
// metadata, upload queue) through the control ioctl on its root (fs/control_ioctl.h).
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Returns the exit status: 0, or 1 with a message on `err` (e.g. MOUNTPOINT is not a strata
// mount).
int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err);

}  // namespace strata
