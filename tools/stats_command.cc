#include "tools/stats_command.h"

#include <memory>

#include "fs/control_ioctl.h"
#include "tools/mount_control.h"

namespace strata {

int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err) {
  auto buffer = std::make_unique<control::TextBuffer>();
  const long size = ControlMount(mountpoint, control::kStats, buffer.get(), "stats", err);
  if (size < 0) return 1;
  out.write(buffer->text, size);
  return 0;
}

}  // namespace strata
