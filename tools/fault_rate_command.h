// `strata fault-rate MOUNTPOINT F`: a testing aid. Changes the fraction of upload requests that a
// mount started with --fault-rate fails (1: S3 unreachable for uploads), through the control
// ioctl on its root (fs/control_ioctl.h).
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Returns the exit status: 0, or 1 with a message on `err` (F is not a number from 0 to 1,
// MOUNTPOINT is not a strata mount, or was mounted without --fault-rate).
int RunFaultRate(const std::string& mountpoint, const std::string& rate, std::ostream& err);

}  // namespace strata
