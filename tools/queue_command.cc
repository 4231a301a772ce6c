#include "tools/queue_command.h"

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "fs/control_ioctl.h"
#include "tools/mount_control.h"

namespace strata {
namespace {

// The listing comes in pages (each under the 16 KiB limit of an ioctl's argument), so that a
// queue of any length can be shown: the header of the first page, then the entries of every
// page until one holds none.
int PrintQueue(const std::string& mountpoint, std::ostream& out, std::ostream& err) {
  auto buffer = std::make_unique<control::QueuePageBuffer>();
  uint64_t after = 0;
  for (bool first = true;; first = false) {
    buffer->after = after;
    const long size = ControlMount(mountpoint, control::kQueuePage, buffer.get(), "queue", err);
    if (size < 0) return 1;
    const std::string page(buffer->text, static_cast<size_t>(size));
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
  uint64_t dead_letters = 0;
  if (ControlMount(mountpoint, control::kQueueRetry, &dead_letters, "queue retry", err, EROFS,
                   " (a read-only mount has no upload queue)") < 0) {
    return 1;
  }
  out << "dead letters requeued\n";
  return 0;
}

}  // namespace strata
