#include "tools/mount_attribute.h"

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace strata {

int ReadMountAttribute(const std::string& mountpoint, const char* name, const char* command,
                       std::string* value, std::ostream& err) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const ssize_t size = getxattr(mountpoint.c_str(), name, nullptr, 0);
    if (size < 0) {
      err << "strata " << command << ": " << mountpoint << " is not a running strata mount ("
          << std::strerror(errno) << ")\n";
      return 1;
    }
    std::vector<char> buffer(static_cast<size_t>(size) + 256);
    const ssize_t got = getxattr(mountpoint.c_str(), name, buffer.data(), buffer.size());
    if (got < 0 && errno == ERANGE) continue;  // it grew in between
    if (got < 0) {
      err << "strata " << command << ": " << std::strerror(errno) << "\n";
      return 1;
    }
    value->assign(buffer.data(), static_cast<size_t>(got));
    return 0;
  }
  err << "strata " << command << ": the answer kept changing size\n";
  return 1;
}

}  // namespace strata
