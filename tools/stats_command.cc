#include "tools/stats_command.h"

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace strata {
namespace {

// Prints the value of the mount root's attribute `name`; `command` names the caller in errors.
int PrintAttribute(const std::string& mountpoint, const char* name, const char* command,
                   std::ostream& out, std::ostream& err) {
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
    out.write(buffer.data(), got);
    return 0;
  }
  err << "strata " << command << ": the answer kept changing size\n";
  return 1;
}

}  // namespace

int RunStats(const std::string& mountpoint, std::ostream& out, std::ostream& err) {
  return PrintAttribute(mountpoint, "user.strata.stats", "stats", out, err);
}

int RunQueue(const std::string& mountpoint, bool retry, std::ostream& out, std::ostream& err) {
  if (!retry) return PrintAttribute(mountpoint, "user.strata.queue", "queue", out, err);
  if (setxattr(mountpoint.c_str(), "user.strata.queue.retry", "1", 1, 0) != 0) {
    err << "strata queue retry: " << mountpoint << ": " << std::strerror(errno)
        << (errno == EROFS ? " (a read-only mount has no upload queue)" : "") << "\n";
    return 1;
  }
  out << "dead letters requeued\n";
  return 0;
}

}  // namespace strata
