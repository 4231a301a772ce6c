#include "tools/queue_command.h"

#include <sys/xattr.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "fs/control_names.h"
#include "tools/mount_attribute.h"

namespace strata {
namespace {

// The listing comes in pages ("user.strata.queue.after.SEQ", each under the 64 KiB limit of
// an attribute), so that a queue of any length can be shown: the header of the first page,
// then the entries of every page until one holds none.
int PrintQueue(const std::string& mountpoint, std::ostream& out, std::ostream& err) {
  uint64_t after = 0;
  for (bool first = true;; first = false) {
    const std::string name = std::string(control::kQueuePagePrefix) + std::to_string(after);
    std::string page;
    if (const int rc = ReadMountAttribute(mountpoint, name.c_str(), "queue", &page, err); rc != 0) {
      return rc;
    }
    const size_t header_end = page.find('\n');
    if (header_end == std::string::npos) {  // not a listing (a read-only mount says why)
      out << page;
      return 0;
    }
    if (first) out << std::string_view(page).substr(0, header_end + 1);
    std::string_view entries = std::string_view(page).substr(header_end + 1);
    if (entries.empty()) return 0;
    out << entries;
    // The last line's first field is the sequence number to continue after.
    entries.remove_suffix(1);
    const size_t last = entries.rfind('\n');
    const std::string_view line =
        last == std::string_view::npos ? entries : entries.substr(last + 1);
    const uint64_t next =
        std::strtoull(std::string(line.substr(0, line.find('\t'))).c_str(), nullptr, 10);
    if (next <= after) {
      err << "strata queue: the listing did not advance past " << after << "\n";
      return 1;
    }
    after = next;
  }
}

}  // namespace

int RunQueue(const std::string& mountpoint, bool retry, std::ostream& out, std::ostream& err) {
  if (!retry) return PrintQueue(mountpoint, out, err);
  if (setxattr(mountpoint.c_str(), control::kQueueRetry, "1", 1, 0) != 0) {
    err << "strata queue retry: " << mountpoint << ": " << std::strerror(errno)
        << (errno == EROFS ? " (a read-only mount has no upload queue)" : "") << "\n";
    return 1;
  }
  out << "dead letters requeued\n";
  return 0;
}

}  // namespace strata
