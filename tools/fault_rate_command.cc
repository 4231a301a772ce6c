#include "tools/fault_rate_command.h"

#include <cerrno>
#include <cstdlib>

#include "fs/control_ioctl.h"
#include "tools/mount_control.h"

namespace strata {

int RunFaultRate(const std::string& mountpoint, const std::string& rate, std::ostream& err) {
  char* end = nullptr;
  double fraction = std::strtod(rate.c_str(), &end);
  if (rate.empty() || *end != '\0' || !(fraction >= 0 && fraction <= 1)) {
    err << "strata fault-rate: " << rate << " is not a fraction from 0 to 1\n";
    return 1;
  }
  const long rc = ControlMount(mountpoint, control::kSetFaultRate, &fraction, "fault-rate", err,
                               ENOTSUP, " (it was mounted without --fault-rate)");
  return rc < 0 ? 1 : 0;
}

}  // namespace strata
