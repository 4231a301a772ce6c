#include "tools/mount_control.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace strata {
namespace {

// The type of the filesystem that device `dev` holds, from /proc/self/mountinfo ("fuse.strata"
// for a strata mount); empty when it is not listed.
std::string FilesystemTypeOf(dev_t dev) {
  const std::string device = std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    // "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS"
    std::istringstream fields(line);
    std::string id, parent, major_minor;
    fields >> id >> parent >> major_minor;
    if (major_minor != device) continue;
    const size_t separator = line.find(" - ");
    if (separator == std::string::npos) continue;
    std::istringstream tail(line.substr(separator + 3));
    std::string type;
    tail >> type;
    return type;
  }
  return "";
}

}  // namespace

long ControlMount(const std::string& mountpoint, unsigned long request, void* arg,
                  const char* command, std::ostream& err, int hint_errno, const char* hint) {
  auto not_a_mount = [&](const std::string& why) {
    err << "strata " << command << ": " << mountpoint << " is not a running strata mount (" << why
        << ")\n";
    return -1L;
  };
  const int fd = open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return not_a_mount(std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return not_a_mount(std::strerror(error));
  }
  // Only a strata daemon sees the request: another filesystem might give its number a meaning.
  if (const std::string type = FilesystemTypeOf(st.st_dev); type != "fuse.strata") {
    close(fd);
    return not_a_mount(type.empty() ? "not a strata filesystem" : "its filesystem is " + type);
  }
  const long result = ioctl(fd, request, arg);
  const int error = errno;
  close(fd);
  if (result >= 0) return result;
  if (error == ENOTTY) return not_a_mount("not its root directory, or an older strata");
  err << "strata " << command << ": " << mountpoint << ": " << std::strerror(error)
      << (error == hint_errno ? hint : "") << "\n";
  return -1;
}

}  // namespace strata
