// `strata stats MOUNTPOINT` and `strata queue MOUNTPOINT [retry]`: talk to a running mount
// through extended attributes of its root: "user.strata.stats" (the counters: cache tiers, S3
// requests, metadata, upload queue), "user.strata.queue.after.SEQ" (a page of the upload
// queue's entries after sequence number SEQ; "user.strata.queue" is the first page) and, set,
// "user.strata.queue.retry" (requeue the dead letters).
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Each returns the exit status: 0, or 1 with a message on `err` (e.g. MOUNTPOINT is not a
// strata mount).
int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err);
int RunQueue(const std::string& mountpoint, bool retry, std::ostream& out, std::ostream& err);

}  // namespace strata
