// MountArgs: the options of `strata mount`, their defaults, and the translation of the form
// mount(8) uses for an /etc/fstab line of type fuse.strata
// (`strata SOURCE MOUNTPOINT -o opt,opt=value`) into ordinary command-line arguments.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace strata {

struct MountArgs {
  std::string source;  // s3://BUCKET[/PREFIX]
  std::string mountpoint;
  bool foreground = false;
  bool read_only = false;
  std::string cache_dir;  // default: DefaultCacheDir()
  std::string cache_size = "10G";
  std::string cache_min_free = "2G";
  std::string memory_cache = "512M";
  std::string chunk_size = "8M";  // ChunkFetcher::Options' default: keep the two equal
  std::string max_readahead = "64M";
  std::string cache_write_queue = "64M";
  double attr_ttl_s = 5;
  double negative_ttl_s = 2;
  bool head_attrs = false;  // one HEAD per listed file for s3fs attributes
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::string umask = "022";
  bool allow_other = false;
  bool fuse_debug = false;
  // Writing.
  std::string staging_size = "4G";  // staged files (open for writing) at most
  bool sync_upload = false;         // close/fsync return once in S3
  double drain_timeout_s = 30;      // unmount/SIGTERM: wait this long for the queue
  int upload_workers = 4;
  std::string multipart_threshold = "64M";
  std::string part_size = "16M";
  std::optional<double> fault_rate;  // testing: fail this fraction of upload requests

  void AddTo(CLI::App& app);
};

// "10G", "512M", "64k", "4096", "1.5GiB" -> bytes (K/M/G/T are powers of 1024).
Result<uint64_t> ParseSize(const std::string& text);

// $XDG_CACHE_HOME/strata, else ~/.cache/strata; /var/cache/strata for root.
std::string DefaultCacheDir();

// When argv is the fstab form (argv[1] is an s3:// URL), rewrites it as
// {"strata", "mount", SOURCE, MOUNTPOINT, --opt=value...}; otherwise returns argv unchanged.
// Generic mount options (rw, nodev, nosuid, _netdev, noauto, x-systemd.*, ...) are dropped.
std::vector<std::string> TranslateFstabArgs(const std::vector<std::string>& argv);

}  // namespace strata
