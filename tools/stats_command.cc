#include "tools/stats_command.h"

#include "fs/control_names.h"
#include "tools/mount_attribute.h"

namespace strata {

int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err) {
  std::string value;
  const int rc = ReadMountAttribute(mountpoint, control::kStats, "stats", &value, err);
  if (rc == 0) out << value;
  return rc;
}

}  // namespace strata
