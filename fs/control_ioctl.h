// The control channel of a running mount: ioctls on its root directory, which `strata stats`,
// `strata queue` and `strata fault-rate` send and the FUSE adapter answers. One definition, for
// both ends.
//
// Why ioctl. The channel was extended attributes of the root ("user.strata.stats", ...). That
// forced strata to answer every getxattr, and `ls -l` asks two per entry
// ("security.selinux", "system.posix_acl_access"): two kernel-daemon round trips per entry,
// most of a warm `ls -l`. A daemon that answers getxattr with ENOSYS is never asked again (the
// kernel remembers per mount), which a channel made of attributes rules out. An ioctl on the
// root adds no name to the mounted namespace (a control file would), needs no socket to find
// and secure (the mount point is the address; the kernel checks who may open it), and travels
// in the FUSE channel the daemon already serves. Its limits: the kernel forwards only
// "restricted" ioctls to FUSE, whose argument size comes from _IOC_SIZE of the command (at most
// 16 KiB - 1), so the text replies are paged to kTextBytes; and it needs an open descriptor
// of the root (one OPENDIR, which lists nothing: Filesystem::OpenDir defers the listing to the
// first read).
//
// Replies are text: the daemon writes it from the start of the caller's buffer and the ioctl
// returns its length. The daemon answers only on the mount root (ENOTTY elsewhere), and only
// the user it runs as, or root, may change anything (EPERM).
#pragma once

#include <linux/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace strata::control {

// Room for one text reply: as large as _IOC_SIZE allows (14 bits), less the 8-byte header of a
// queue page request.
inline constexpr size_t kTextBytes = (size_t{1} << 14) - 8;

struct TextBuffer {
  char text[kTextBytes];
};
// A queue page: in, the sequence number to continue after (0: from the start); out, text.
union QueuePageBuffer {
  uint64_t after;
  char text[kTextBytes];
};

// Sent only to mounts of type fuse.strata (the tools check first), so the numbers are
// strata's own; the type letter keeps them apart from FS_IOC_* ('f'), which reach the daemon
// from tools such as lsattr.
inline constexpr unsigned kIoctlType = 'S';

// Counters as "name value" lines (`strata stats`).
inline constexpr unsigned long kStats = _IOR(kIoctlType, 1, TextBuffer);
// One page of the upload queue: a header line, then the entries after `after`. An empty page
// (the header alone) is the end; a read-only mount answers one line without a tab.
inline constexpr unsigned long kQueuePage = _IOWR(kIoctlType, 2, QueuePageBuffer);
// Requeues the dead letters; out: how many there were. EROFS on a read-only mount.
inline constexpr unsigned long kQueueRetry = _IOR(kIoctlType, 3, uint64_t);
// Testing (--fault-rate): in, the fraction of upload requests to fail, 0 to 1. ENOTSUP when
// the mount was started without --fault-rate, EINVAL outside [0, 1].
inline constexpr unsigned long kSetFaultRate = _IOW(kIoctlType, 4, double);

static_assert(sizeof(TextBuffer) <= _IOC_SIZEMASK && sizeof(QueuePageBuffer) <= _IOC_SIZEMASK,
              "the kernel forwards at most _IOC_SIZE bytes to a FUSE daemon");

}  // namespace strata::control
