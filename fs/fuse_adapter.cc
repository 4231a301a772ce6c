#define FUSE_USE_VERSION 34
#include "fs/fuse_adapter.h"

#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <vector>

#include "fs/control_ioctl.h"
#include "fs/posix_error.h"

namespace strata {

struct FuseSession::Context {
  Filesystem* fs;
  double attr_timeout;
  std::function<Status(double)> set_fault_rate;
};

namespace {

using Context = FuseSession::Context;

Context& Ctx(fuse_req_t req) { return *static_cast<Context*>(fuse_req_userdata(req)); }

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

void ReplyError(fuse_req_t req, const Status& status, const char* op) {
  const int err = ToErrno(status);
  if (err == EIO) {
    spdlog::warn("{}: {}", op, status.ToString());
  } else {
    spdlog::debug("{}: {} ({})", op, status.ToString(), std::strerror(err));
  }
  fuse_reply_err(req, err);
}

fuse_entry_param ToEntry(const EntryReply& reply, double timeout) {
  fuse_entry_param e{};
  e.ino = reply.ino;
  e.attr = reply.attr;
  e.attr_timeout = timeout;
  e.entry_timeout = timeout;
  return e;
}

void OnInit(void* /*userdata*/, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  // Attributes come with the listing: no need for the kernel to look up each entry first.
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // O_TRUNC arrives with open instead of as a separate truncate: one commit, not two.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // Up to 1 MiB per READ request (libfuse derives the kernel's max_pages from max_write):
  // a quarter of the requests, and of their overhead, for large sequential reads.
  conn->max_write = 1u << 20;
  conn->max_readahead = std::max<unsigned>(conn->max_readahead, 1u << 20);
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Context& ctx = Ctx(req);
  Result<EntryReply> reply = ctx.fs->Lookup(parent, name);
  if (!reply.ok()) {
    if (reply.status().IsNotFound()) {
      spdlog::debug("lookup: {}", reply.status().ToString());
      // A negative entry the kernel may cache for the attribute timeout.
      fuse_entry_param e{};
      e.entry_timeout = ctx.attr_timeout;
      fuse_reply_entry(req, &e);
      return;
    }
    return ReplyError(req, reply.status(), "lookup");
  }
  fuse_entry_param e = ToEntry(*reply, ctx.attr_timeout);
  if (fuse_reply_entry(req, &e) != 0) ctx.fs->Forget(reply->ino, 1);  // the kernel never saw it
}

void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Ctx(req).fs->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Ctx(req).fs->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OnGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Context& ctx = Ctx(req);
  Result<struct stat> st = ctx.fs->GetAttr(ino);
  if (!st.ok()) return ReplyError(req, st.status(), "getattr");
  fuse_reply_attr(req, &*st, ctx.attr_timeout);
}

void OnReadLink(fuse_req_t req, fuse_ino_t ino) {
  Result<std::string> target = Ctx(req).fs->ReadLink(ino);
  if (!target.ok()) return ReplyError(req, target.status(), "readlink");
  fuse_reply_readlink(req, target->c_str());
}

void OnOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Result<uint64_t> handle = Ctx(req).fs->OpenDir(ino);
  if (!handle.ok()) return ReplyError(req, handle.status(), "opendir");
  fi->fh = *handle;
  fi->cache_readdir = 0;
  if (fuse_reply_open(req, fi) != 0) Ctx(req).fs->ReleaseDir(*handle);
}

// Offsets: 1 = after ".", 2 = after "..", 2 + i + 1 = after entry i.
void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi,
             bool plus) {
  Context& ctx = Ctx(req);
  std::vector<char> buffer(size);
  size_t used = 0;
  auto add = [&](const char* name, const struct stat& st, off_t next, const EntryReply* entry) {
    size_t need;
    if (plus) {
      fuse_entry_param e{};
      if (entry != nullptr) e = ToEntry(*entry, ctx.attr_timeout);
      e.attr = st;
      need = fuse_add_direntry_plus(req, buffer.data() + used, size - used, name, &e, next);
    } else {
      need = fuse_add_direntry(req, buffer.data() + used, size - used, name, &st, next);
    }
    if (need > size - used) return false;
    used += need;
    return true;
  };
  off_t pos = offset;
  struct stat dot {};
  dot.st_ino = ino;
  dot.st_mode = S_IFDIR;
  // "." and ".." carry no lookup count in readdirplus (the kernel skips them).
  if (pos == 0 && !add(".", dot, ++pos, nullptr)) return (void)fuse_reply_buf(req, nullptr, 0);
  if (pos == 1 && !add("..", dot, ++pos, nullptr)) {
    return (void)fuse_reply_buf(req, buffer.data(), used);
  }
  // No more entries than the buffer can hold, not the rest of the directory: a large directory
  // is read in many calls. The smallest entry is a 24-byte fuse_dirent with 8 bytes of name;
  // readdirplus adds a 128-byte fuse_entry_out.
  const size_t min_entry = plus ? 160 : 32;
  Result<std::vector<DirEntryView>> entries =
      ctx.fs->DirEntries(fi->fh, static_cast<size_t>(pos - 2), size / min_entry + 1);
  if (!entries.ok()) return ReplyError(req, entries.status(), "readdir");
  for (const DirEntryView& entry : *entries) {
    if (plus) {
      // Size first with an empty entry: raise the lookup count only for entries that fit.
      fuse_entry_param probe{};
      if (fuse_add_direntry_plus(req, nullptr, 0, entry.name.c_str(), &probe, 0) > size - used) {
        break;
      }
      if (!entry.attributes_known) {
        // No entry: the kernel looks the name up when it needs its attributes, and the lookup
        // learns them (one HEAD per object version, ever).
        struct stat st {};
        st.st_ino = ctx.fs->InodeHint(fi->fh, entry);
        st.st_mode = FileTypeBits(entry.type);
        add(entry.name.c_str(), st, pos + 1, nullptr);
      } else {
        EntryReply reply = ctx.fs->EntryForReaddir(fi->fh, entry);
        add(entry.name.c_str(), reply.attr, pos + 1, &reply);
      }
    } else {
      struct stat st {};
      st.st_ino = ctx.fs->InodeHint(fi->fh, entry);
      st.st_mode = FileTypeBits(entry.type);
      if (!add(entry.name.c_str(), st, pos + 1, nullptr)) break;
    }
    ++pos;
  }
  fuse_reply_buf(req, buffer.data(), used);
}

void OnReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDir(req, ino, size, off, fi, false);
}

void OnReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDir(req, ino, size, off, fi, true);
}

void OnReleaseDir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  Ctx(req).fs->ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Result<OpenReply> reply = Ctx(req).fs->Open(ino, fi->flags);
  if (!reply.ok()) return ReplyError(req, reply.status(), "open");
  fi->fh = reply->handle;
  fi->keep_cache = reply->keep_cache ? 1 : 0;
  if (fuse_reply_open(req, fi) != 0) Ctx(req).fs->Release(reply->handle);
}

void OnRead(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t off, fuse_file_info* fi) {
  Result<std::vector<ReadStream::Slice>> slices =
      Ctx(req).fs->ReadSlices(fi->fh, static_cast<uint64_t>(off), size);
  if (!slices.ok()) return ReplyError(req, slices.status(), "read");
  if (slices->empty()) return (void)fuse_reply_buf(req, nullptr, 0);
  // The reply points into the cached chunks (kept alive by `slices` until it returns): the
  // bytes are copied once, by the kernel, not first into a buffer of ours.
  const size_t count = slices->size();
  std::vector<char> storage(sizeof(fuse_bufvec) + (count - 1) * sizeof(fuse_buf));
  auto* vec = new (storage.data()) fuse_bufvec{};
  vec->count = count;
  for (size_t i = 0; i < count; ++i) {
    const ReadStream::Slice& slice = (*slices)[i];
    vec->buf[i] = fuse_buf{};
    vec->buf[i].size = slice.length;
    vec->buf[i].mem = const_cast<char*>(slice.chunk->data()) + slice.offset;
  }
  fuse_reply_data(req, vec, FUSE_BUF_NO_SPLICE);
}

void OnRelease(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  Ctx(req).fs->Release(fi->fh);
  fuse_reply_err(req, 0);
}

void ReplyStatus(fuse_req_t req, const Status& status, const char* op) {
  if (!status.ok()) return ReplyError(req, status, op);
  fuse_reply_err(req, 0);
}

void ReplyEntry(fuse_req_t req, const Result<EntryReply>& reply, const char* op) {
  if (!reply.ok()) return ReplyError(req, reply.status(), op);
  fuse_entry_param e = ToEntry(*reply, Ctx(req).attr_timeout);
  if (fuse_reply_entry(req, &e) != 0) Ctx(req).fs->Forget(reply->ino, 1);
}

void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Context& ctx = Ctx(req);
  if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);
  auto created = ctx.fs->Create(parent, name, mode, fi->flags, CallerOf(req));
  if (!created.ok()) return ReplyError(req, created.status(), "create");
  fi->fh = created->second.handle;
  fi->keep_cache = 0;
  fuse_entry_param e = ToEntry(created->first, ctx.attr_timeout);
  if (fuse_reply_create(req, &e, fi) != 0) {
    ctx.fs->Release(fi->fh);
    ctx.fs->Forget(created->first.ino, 1);
  }
}

void OnMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Context& ctx = Ctx(req);
  if (!S_ISREG(mode)) {
    // FIFOs, sockets and devices: empty objects with their type in the s3fs headers.
    return ReplyEntry(req, ctx.fs->MkNod(parent, name, mode, rdev, CallerOf(req)), "mknod");
  }
  auto created = ctx.fs->Create(parent, name, mode, O_WRONLY | O_EXCL, CallerOf(req));
  if (!created.ok()) return ReplyError(req, created.status(), "mknod");
  const Status flushed = ctx.fs->Flush(created->second.handle);
  ctx.fs->Release(created->second.handle);
  if (!flushed.ok()) {
    ctx.fs->Forget(created->first.ino, 1);
    return ReplyError(req, flushed, "mknod");
  }
  fuse_entry_param e = ToEntry(created->first, ctx.attr_timeout);
  if (fuse_reply_entry(req, &e) != 0) ctx.fs->Forget(created->first.ino, 1);
}

void OnWrite(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  const Status st =
      Ctx(req).fs->Write(fi->fh, static_cast<uint64_t>(off), std::span<const char>(buf, size));
  if (!st.ok()) return ReplyError(req, st, "write");
  fuse_reply_write(req, size);
}

void OnFlush(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  ReplyStatus(req, Ctx(req).fs->Flush(fi->fh), "flush");
}

void OnFsync(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* fi) {
  ReplyStatus(req, Ctx(req).fs->Fsync(fi->fh), "fsync");
}

void OnFsyncDir(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  // Namespace changes are durable (queued) when their call returns.
  fuse_reply_err(req, 0);
}

void OnSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Context& ctx = Ctx(req);
  SetAttrRequest request;
  if (to_set & FUSE_SET_ATTR_SIZE) request.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_MODE) request.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) request.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) request.gid = attr->st_gid;
  const TimePoint now = std::chrono::system_clock::now();
  auto time_of = [](const timespec& ts) {
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
  };
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    request.atime = now;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    request.atime = time_of(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    request.mtime = now;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    request.mtime = time_of(attr->st_mtim);
  }
  std::optional<uint64_t> handle;
  if (fi != nullptr) handle = fi->fh;
  Result<struct stat> st = ctx.fs->SetAttr(ino, request, handle);
  if (!st.ok()) return ReplyError(req, st.status(), "setattr");
  fuse_reply_attr(req, &*st, ctx.attr_timeout);
}

void OnMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  ReplyEntry(req, Ctx(req).fs->MkDir(parent, name, mode, CallerOf(req)), "mkdir");
}

void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Ctx(req).fs->Unlink(parent, name), "unlink");
}

void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Ctx(req).fs->RmDir(parent, name), "rmdir");
}

void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  ReplyStatus(req, Ctx(req).fs->Rename(parent, name, newparent, newname, flags), "rename");
}

void OnSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  ReplyEntry(req, Ctx(req).fs->Symlink(link, parent, name, CallerOf(req)), "symlink");
}

void OnLink(fuse_req_t req, fuse_ino_t /*ino*/, fuse_ino_t /*newparent*/, const char* /*newname*/) {
  // An object has one key: S3 has no hard links.
  fuse_reply_err(req, EPERM);
}

void OnStatFs(fuse_req_t req, fuse_ino_t /*ino*/) {
  struct statvfs st = Ctx(req).fs->StatFs();
  fuse_reply_statfs(req, &st);
}

// The control channel (control_ioctl.h). The kernel forwards only restricted ioctls: `in` holds
// _IOC_SIZE(cmd) bytes for a command that writes, and the reply may fill `out_size` bytes.
void OnIoctl(fuse_req_t req, fuse_ino_t ino, int signed_cmd, void* /*arg*/, fuse_file_info* /*fi*/,
             unsigned flags, const void* in, size_t in_size, size_t out_size) {
  Context& ctx = Ctx(req);
  const auto cmd = static_cast<unsigned>(signed_cmd);
  if (ino != FUSE_ROOT_ID || (flags & FUSE_IOCTL_UNRESTRICTED) != 0) {
    return (void)fuse_reply_err(req, ENOTTY);
  }
  auto reply_text = [req, out_size](const std::string& text) {
    if (text.size() > out_size) {
      spdlog::warn("control: a reply of {} bytes does not fit in {}", text.size(), out_size);
      return (void)fuse_reply_err(req, EOVERFLOW);
    }
    fuse_reply_ioctl(req, static_cast<int>(text.size()), text.data(), text.size());
  };
  // The kernel checks no permission for an ioctl (setting an attribute needed write access to
  // the root): changes are for the user the daemon runs as, and root.
  const uid_t caller = fuse_req_ctx(req)->uid;
  const bool may_change = caller == 0 || caller == geteuid();
  switch (cmd) {
    case control::kStats:
      return reply_text(ctx.fs->control().StatsText());
    case control::kQueuePage: {
      uint64_t after = 0;
      if (in_size < sizeof after) return (void)fuse_reply_err(req, EINVAL);
      std::memcpy(&after, in, sizeof after);
      return reply_text(ctx.fs->control().QueueText(after, out_size));
    }
    case control::kQueueRetry: {
      if (!may_change) return (void)fuse_reply_err(req, EPERM);
      Result<uint64_t> retried = ctx.fs->control().RetryQueue();
      if (!retried.ok()) return ReplyError(req, retried.status(), "queue retry");
      spdlog::info("requeued {} dead letter(s)", *retried);
      const uint64_t count = *retried;
      return (void)fuse_reply_ioctl(req, 0, &count, std::min(sizeof count, out_size));
    }
    case control::kSetFaultRate: {
      if (!may_change) return (void)fuse_reply_err(req, EPERM);
      if (!ctx.set_fault_rate) return (void)fuse_reply_err(req, ENOTSUP);
      double rate = 0;
      if (in_size < sizeof rate) return (void)fuse_reply_err(req, EINVAL);
      std::memcpy(&rate, in, sizeof rate);
      const Status st = ctx.set_fault_rate(rate);
      if (!st.ok()) return ReplyError(req, st, "fault rate");
      return (void)fuse_reply_ioctl(req, 0, nullptr, 0);
    }
    default:
      // Not ours (lsattr's FS_IOC_GETFLAGS, for one).
      return (void)fuse_reply_err(req, ENOTTY);
  }
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetAttr;
  ops.readlink = OnReadLink;
  ops.opendir = OnOpenDir;
  ops.readdir = OnReadDir;
  ops.readdirplus = OnReadDirPlus;
  ops.releasedir = OnReleaseDir;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.release = OnRelease;
  ops.statfs = OnStatFs;
  ops.create = OnCreate;
  ops.mknod = OnMknod;
  ops.write = OnWrite;
  ops.flush = OnFlush;
  ops.fsync = OnFsync;
  ops.fsyncdir = OnFsyncDir;
  ops.setattr = OnSetAttr;
  ops.mkdir = OnMkdir;
  ops.unlink = OnUnlink;
  ops.rmdir = OnRmdir;
  ops.rename = OnRename;
  ops.symlink = OnSymlink;
  ops.link = OnLink;
  ops.ioctl = OnIoctl;
  // No getxattr, setxattr, listxattr or removexattr: see the header.
  return ops;
}();

}  // namespace

Result<std::unique_ptr<FuseSession>> FuseSession::Mount(Filesystem& fs, FuseMountOptions options) {
  std::unique_ptr<FuseSession> session(new FuseSession(fs, std::move(options)));
  const FuseMountOptions& o = session->options_;
  std::vector<std::string> args = {"strata", "-o",
                                   std::string(o.read_only ? "ro" : "rw") +
                                       ",default_permissions,subtype=strata,fsname=" + o.fsname};
  if (o.allow_other) args.insert(args.end(), {"-o", "allow_other"});
  if (o.debug) args.push_back("-d");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  session->session_ = fuse_session_new(&fargs, &kOps, sizeof kOps, session->context_.get());
  // libfuse may have copied the arguments (fuse_opt_add_arg): they are ours to free.
  fuse_opt_free_args(&fargs);
  if (session->session_ == nullptr) {
    return Status::InvalidArgument("libfuse rejected the mount options");
  }
  if (fuse_session_mount(session->session_, o.mountpoint.c_str()) != 0) {
    return Status::InvalidArgument("cannot mount on " + o.mountpoint +
                                   " (is it an existing, empty, unmounted directory? is "
                                   "/dev/fuse usable? allow_other needs user_allow_other in "
                                   "/etc/fuse.conf for non-root users)");
  }
  session->mounted_ = true;
  return session;
}

FuseSession::FuseSession(Filesystem& fs, FuseMountOptions options)
    : fs_(fs),
      options_(std::move(options)),
      context_(std::make_unique<Context>(
          Context{&fs_, std::chrono::duration<double>(options_.attr_ttl).count(),
                  options_.set_fault_rate})) {}

FuseSession::~FuseSession() {
  if (session_ == nullptr) return;
  if (signal_handlers_) fuse_remove_signal_handlers(session_);
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

void FuseSession::Unmount() {
  if (session_ == nullptr || !mounted_) return;
  fuse_session_unmount(session_);
  mounted_ = false;
}

Status FuseSession::Run() {
  if (fuse_set_signal_handlers(session_) != 0) {
    return Status::Internal("cannot install signal handlers");
  }
  signal_handlers_ = true;
  fuse_loop_config config{};
  config.clone_fd = 0;
  config.max_idle_threads = static_cast<unsigned>(options_.max_threads);
  const int rc = fuse_session_loop_mt(session_, &config);
  if (rc != 0 && rc != SIGTERM && rc != SIGINT && rc != SIGHUP) {
    return Status::Io("the FUSE session ended with error " + std::to_string(rc));
  }
  return Status::Ok();
}

}  // namespace strata
