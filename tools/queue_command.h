// `strata queue MOUNTPOINT [retry]`: talks to a running mount through extended attributes of
// its root: "user.strata.queue.after.SEQ" (a page of the upload queue's entries after sequence
// number SEQ; "user.strata.queue" is the first page) and, set, "user.strata.queue.retry"
// (requeue the dead letters).
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Lists the upload queue, or with `retry` requeues its dead letters. Returns the exit status: 0,
// or 1 with a message on `err` (e.g. MOUNTPOINT is not a strata mount).
int RunQueue(const std::string& mountpoint, bool retry, std::ostream& out, std::ostream& err);

}  // namespace strata
