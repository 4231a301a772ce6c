// The tools' end of the control channel of a running mount: ioctls on its root directory
// (fs/control_ioctl.h). Each call opens the root, checks that it is a strata mount, asks once and
// closes it.
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Runs the control ioctl `request` on the root of `mountpoint`, with `arg` as its argument (read
// and/or written as the request's direction says). Returns the ioctl's result (>= 0), or -1
// after a message on `err` that begins with "strata COMMAND: ": "MOUNTPOINT is not a running
// strata mount (why)" when it is not the root of one, else the error, with `hint` appended
// when the error is `hint_errno`.
long ControlMount(const std::string& mountpoint, unsigned long request, void* arg,
                  const char* command, std::ostream& err, int hint_errno = 0,
                  const char* hint = "");

}  // namespace strata
