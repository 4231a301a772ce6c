#include "tools/stats_command.h"

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace strata {

int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err) {
  constexpr const char* kName = "user.strata.stats";
  for (int attempt = 0; attempt < 3; ++attempt) {
    const ssize_t size = getxattr(mountpoint.c_str(), kName, nullptr, 0);
    if (size < 0) {
      err << "strata stats: " << mountpoint << " is not a running strata mount ("
          << std::strerror(errno) << ")\n";
      return 1;
    }
    std::vector<char> buffer(static_cast<size_t>(size) + 256);
    const ssize_t got = getxattr(mountpoint.c_str(), kName, buffer.data(), buffer.size());
    if (got < 0 && errno == ERANGE) continue;  // the counters grew in between
    if (got < 0) {
      err << "strata stats: " << std::strerror(errno) << "\n";
      return 1;
    }
    out.write(buffer.data(), got);
    return 0;
  }
  err << "strata stats: the counters kept changing size\n";
  return 1;
}

}  // namespace strata
