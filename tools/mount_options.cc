#include "tools/mount_options.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace strata {

void MountArgs::AddTo(CLI::App& app) {
  app.add_option("source", source, "s3://BUCKET[/PREFIX]")->required();
  app.add_option("mountpoint", mountpoint, "An existing empty directory")->required();
  app.add_flag("-f,--foreground", foreground, "Stay in the foreground (default: daemonize)");
  app.add_flag("--read-only,!--read-write", read_only, "Mount read-only (default: read-write)");
  const std::string cache = "Cache";
  app.add_option("--cache-dir", cache_dir,
                 "Disk cache directory, created 0700 (default: /var/cache/strata for root, "
                 "else $XDG_CACHE_HOME/strata or ~/.cache/strata)")
      ->group(cache);
  app.add_option("--cache-size", cache_size, "Disk cache size limit")
      ->group(cache)
      ->capture_default_str();
  app.add_option("--cache-min-free", cache_min_free,
                 "Free space to leave on the cache's filesystem")
      ->group(cache)
      ->capture_default_str();
  app.add_option("--memory-cache", memory_cache, "Memory cache size")
      ->group(cache)
      ->capture_default_str();
  app.add_option("--chunk-size", chunk_size, "Cache chunk size (also the unit of ranged GETs)")
      ->group(cache)
      ->capture_default_str();
  app.add_option("--max-readahead", max_readahead, "Largest read-ahead window per file")
      ->group(cache)
      ->capture_default_str();
  app.add_option("--cache-write-queue", cache_write_queue,
                 "Chunks waiting for the cache disk; beyond it a chunk is not written to disk "
                 "(a later read fetches it again) rather than slow the reader")
      ->group(cache)
      ->capture_default_str();
  const std::string meta = "Metadata";
  app.add_option("--attr-ttl", attr_ttl_s,
                 "Seconds to trust cached attributes and listings; changes by other clients "
                 "show after this")
      ->group(meta)
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--negative-ttl", negative_ttl_s, "Seconds to remember that a name is absent")
      ->group(meta)
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_flag("--head-attrs", head_attrs,
               "HEAD every listed file to read s3fs attributes (mode, uid, gid, mtime)")
      ->group(meta);
  const std::string write = "Writing";
  app.add_option("--staging-size", staging_size,
                 "Space for files being written; beyond it writes fail with ENOSPC")
      ->group(write)
      ->capture_default_str();
  app.add_flag("--sync-upload", sync_upload,
               "close and fsync return once the data is in S3 (default: once durable on the "
               "local disk, uploaded in the background)")
      ->group(write);
  app.add_option("--drain-timeout", drain_timeout_s,
                 "Seconds to wait for pending uploads at unmount; the rest stays queued on "
                 "disk for the next mount")
      ->group(write)
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--upload-workers", upload_workers, "Uploads in parallel")
      ->group(write)
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--multipart-threshold", multipart_threshold,
                 "Files of at least this size are uploaded in parts (resumable)")
      ->group(write)
      ->capture_default_str();
  app.add_option("--part-size", part_size, "Multipart part size (at least 5M)")
      ->group(write)
      ->capture_default_str();
  app.add_option("--fault-rate", fault_rate,
                 "Testing: fail this fraction of upload requests with a transient error; "
                 "`strata fault-rate MOUNTPOINT F` changes it later")
      ->group(write)
      ->check(CLI::Range(0.0, 1.0));
  const std::string perms = "Permissions";
  app.add_option("--uid", uid, "Owner of files without s3fs attributes (default: yours)")
      ->group(perms);
  app.add_option("--gid", gid, "Group of files without s3fs attributes (default: yours)")
      ->group(perms);
  app.add_option("--umask", umask, "Octal umask for default permissions")
      ->group(perms)
      ->capture_default_str();
  app.add_flag("--allow-other", allow_other,
               "Let other users access the mount (non-root: needs user_allow_other in "
               "/etc/fuse.conf)")
      ->group(perms);
  app.add_flag("--fuse-debug", fuse_debug, "Trace FUSE requests on stderr (with -f)");
}

Result<uint64_t> ParseSize(const std::string& text) {
  char* end = nullptr;
  const double number = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || number < 0 || !std::isfinite(number)) {
    return Status::InvalidArgument("not a size: '" + text + "' (examples: 512M, 10G, 4096)");
  }
  std::string unit(end);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit.resize(unit.size() - 2);
  if (unit.ends_with("B")) unit.resize(unit.size() - 1);
  double scale = 1;
  if (unit == "K") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else if (!unit.empty()) {
    return Status::InvalidArgument("unknown size unit in '" + text + "' (use K, M, G or T)");
  }
  return static_cast<uint64_t>(number * scale);
}

std::string DefaultCacheDir() {
  if (geteuid() == 0) return "/var/cache/strata";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/strata";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/tmp") + "/.cache/strata";
}

std::vector<std::string> TranslateFstabArgs(const std::vector<std::string>& argv) {
  if (argv.size() < 3 || argv[1].rfind("s3://", 0) != 0) return argv;
  static const char* kGeneric[] = {"rw",          "dev",      "nodev",      "suid",    "nosuid",
                                   "exec",        "noexec",   "auto",       "noauto",  "user",
                                   "nouser",      "users",    "_netdev",    "nofail",  "defaults",
                                   "async",       "sync",     "atime",      "noatime", "relatime",
                                   "strictatime", "lazytime", "nodiratime", "diratime"};
  std::vector<std::string> out = {argv[0], "mount", argv[1], argv[2]};
  for (size_t i = 3; i < argv.size(); ++i) {
    if (argv[i] != "-o" || i + 1 == argv.size()) {
      out.push_back(argv[i]);
      continue;
    }
    const std::string& list = argv[++i];
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      std::string opt = list.substr(start, comma - start);
      start = comma + 1;
      if (opt.empty() || opt.rfind("x-", 0) == 0 || opt.rfind("comment=", 0) == 0) continue;
      if (std::find(std::begin(kGeneric), std::end(kGeneric), opt) != std::end(kGeneric)) {
        continue;
      }
      if (opt == "ro") opt = "read-only";
      for (char& c : opt) {
        if (c == '=') break;
        if (c == '_') c = '-';
      }
      out.push_back("--" + opt);
    }
  }
  return out;
}

}  // namespace strata
