// FuseSession: serves a Filesystem through the libfuse low-level API. The only place that sees
// fuse_lowlevel.h and errno: each callback calls Filesystem, maps Status to errno (ToErrno) and
// replies once. No lock is held while replying to the kernel. Callbacks never throw.
//
// Extended attributes are not implemented: libfuse answers ENOSYS, after which the kernel
// answers every later *xattr call of the mount itself (EOPNOTSUPP) instead of asking. The
// control channel is ioctls on the root directory (control_ioctl.h).
//
// Life cycle: Mount() makes the mount live (so failures such as a busy mount point are reported
// before the caller daemonizes); Run() serves requests on several threads until the filesystem
// is unmounted or SIGTERM/SIGINT/SIGHUP arrives; the destructor unmounts.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "fs/filesystem.h"

struct fuse_session;

namespace strata {

struct FuseMountOptions {
  std::string mountpoint;
  std::string fsname;     // shown by mount(8) and df, e.g. "strata:bucket/prefix"
  bool read_only = true;  // "ro" for the kernel; a writable Filesystem is mounted with false
  bool allow_other = false;
  bool debug = false;  // libfuse's request trace on stderr
  int max_threads = 16;
  std::chrono::milliseconds attr_ttl{std::chrono::seconds(5)};
  // Testing aid: set by `--fault-rate`, called for `strata fault-rate MOUNTPOINT F` (the
  // control ioctl kSetFaultRate). Empty: that command fails with ENOTSUP.
  std::function<Status(double rate)> set_fault_rate{};
};

class FuseSession {
 public:
  // `fs` must outlive the session.
  static Result<std::unique_ptr<FuseSession>> Mount(Filesystem& fs, FuseMountOptions options);
  ~FuseSession();

  FuseSession(const FuseSession&) = delete;
  FuseSession& operator=(const FuseSession&) = delete;

  // Serves until unmounted or signalled. Returns OK on a clean exit.
  Status Run();
  // Unmounts now (the destructor would later). Requests then fail with ENOTCONN.
  void Unmount();

  struct Context;  // what the callbacks see: defined in fuse_adapter.cc

 private:
  FuseSession(Filesystem& fs, FuseMountOptions options);

  Filesystem& fs_;
  const FuseMountOptions options_;
  std::unique_ptr<Context> context_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signal_handlers_ = false;
};

}  // namespace strata
