// `strata queue MOUNTPOINT [retry]`: talks to a running mount through the control ioctls on its
// root (fs/control_ioctl.h): kQueuePage, a page of the upload queue's entries after a sequence
// number, and kQueueRetry, which requeues the dead letters.
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Lists the upload queue, or with `retry` requeues its dead letters. Returns the exit status: 0,
// or 1 with a message on `err` (e.g. MOUNTPOINT is not a strata mount).
int RunQueue(const std::string& mountpoint, bool retry, std::ostream& out, std::ostream& err);

}  // namespace strata
