#include "tools/mount_command.h"

#include <fcntl.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "backends/faulty_store.h"
#include "backends/logging.h"
#include "cache/cache_stats.h"
#include "cache/chunk_fetcher.h"
#include "cache/disk_tier.h"
#include "cache/memory_tier.h"
#include "cache/read_stream.h"
#include "cache/staging_area.h"
#include "cache/upload_queue.h"
#include "cache/write_behind_tier.h"
#include "fs/filesystem.h"
#include "fs/fuse_adapter.h"
#include "fs/metadata_cache.h"
#include "tools/store_errors.h"

namespace strata {
namespace {

// Memory beyond the memory cache: chunks being read ahead, and chunks waiting for the disk.
constexpr uint64_t kReadaheadBytes = 32ull << 20;

// Everything `mount` decided before forking.
struct MountPlan {
  S3Url url;
  S3Options s3;
  std::string mountpoint;  // absolute
  std::string cache_dir;   // absolute
  uint64_t cache_size = 0;
  uint64_t cache_min_free = 0;
  uint64_t memory_cache = 0;
  uint32_t chunk_size = 0;
  uint64_t max_readahead = 0;
  uint64_t cache_write_queue = 0;
  uint64_t staging_size = 0;
  uint64_t multipart_threshold = 0;
  uint64_t part_size = 0;
  MetadataOptions metadata;
  FilesystemOptions fs;
  FuseMountOptions fuse;
};

// One line on stderr; exit status 1, or 2 when the command line itself is wrong.
int Fail(const std::string& message, int status = 1) {
  std::cerr << "strata mount: " << message << "\n";
  return status;
}

bool IsMountPoint(const std::string& path) {
  std::ifstream mounts("/proc/self/mounts");
  std::string device, dir, rest;
  while (mounts >> device >> dir && std::getline(mounts, rest)) {
    if (dir == path) return true;
  }
  return false;
}

// Creates the cache directory (0700) and proves it writable with a probe file.
Status PrepareCacheDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Io("cannot create cache directory " + dir + ": " + ec.message());
  if (chmod(dir.c_str(), 0700) != 0) {
    return Status::Io("cannot set permissions of cache directory " + dir + ": " +
                      std::strerror(errno));
  }
  const std::string probe = dir + "/.write-probe";
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    return Status::Io("cache directory " + dir + " is not writable: " + std::strerror(errno));
  }
  close(fd);
  unlink(probe.c_str());
  return Status::Ok();
}

Result<MountPlan> Plan(const MountArgs& args, const StoreCli& cli, const EnvLookup& env) {
  MountPlan plan;
  Result<S3Url> url = ParseS3Url(args.source);
  if (!url.ok()) return url.status();
  plan.url = *url;
  Result<S3Options> s3 = cli.ToOptions(url->bucket, env);
  if (!s3.ok()) return s3.status();
  plan.s3 = *s3;

  struct {
    const std::string& text;
    uint64_t* out;
    const char* what;
  } sizes[] = {{args.cache_size, &plan.cache_size, "--cache-size"},
               {args.cache_min_free, &plan.cache_min_free, "--cache-min-free"},
               {args.memory_cache, &plan.memory_cache, "--memory-cache"},
               {args.max_readahead, &plan.max_readahead, "--max-readahead"},
               {args.cache_write_queue, &plan.cache_write_queue, "--cache-write-queue"},
               {args.staging_size, &plan.staging_size, "--staging-size"},
               {args.multipart_threshold, &plan.multipart_threshold, "--multipart-threshold"},
               {args.part_size, &plan.part_size, "--part-size"}};
  for (auto& size : sizes) {
    Result<uint64_t> parsed = ParseSize(size.text);
    if (!parsed.ok())
      return Status::InvalidArgument(size.what + (": " + parsed.status().message()));
    *size.out = *parsed;
  }
  Result<uint64_t> chunk = ParseSize(args.chunk_size);
  if (!chunk.ok()) return Status::InvalidArgument("--chunk-size: " + chunk.status().message());
  if (*chunk < (64 << 10) || *chunk > (64 << 20)) {
    return Status::InvalidArgument("--chunk-size must be between 64K and 64M");
  }
  plan.chunk_size = static_cast<uint32_t>(*chunk);
  if (plan.cache_size < plan.chunk_size) {
    return Status::InvalidArgument("--cache-size must hold at least one chunk");
  }
  if (plan.part_size < (5ull << 20) || plan.part_size > (5ull << 30)) {
    return Status::InvalidArgument("--part-size must be between 5M and 5G (S3's limits)");
  }
  if (plan.multipart_threshold < plan.part_size) {
    return Status::InvalidArgument("--multipart-threshold must be at least --part-size");
  }
  if (plan.staging_size == 0) return Status::InvalidArgument("--staging-size must be above 0");
  char* end = nullptr;
  const unsigned long umask_value = std::strtoul(args.umask.c_str(), &end, 8);
  if (end == args.umask.c_str() || *end != '\0' || umask_value > 0777) {
    return Status::InvalidArgument("--umask must be octal, e.g. 022");
  }

  std::error_code ec;
  plan.mountpoint = std::filesystem::absolute(args.mountpoint, ec).lexically_normal().string();
  while (plan.mountpoint.size() > 1 && plan.mountpoint.back() == '/') plan.mountpoint.pop_back();
  if (!std::filesystem::is_directory(plan.mountpoint, ec)) {
    return Status::InvalidArgument("mount point " + plan.mountpoint +
                                   " does not exist or is not a directory");
  }
  if (IsMountPoint(plan.mountpoint)) {
    return Status::InvalidArgument("mount point " + plan.mountpoint +
                                   " is already mounted: unmount it first");
  }
  plan.cache_dir =
      std::filesystem::absolute(args.cache_dir.empty() ? DefaultCacheDir() : args.cache_dir, ec)
          .lexically_normal()
          .string();

  plan.metadata = MetadataOptions{
      .bucket = url->bucket,
      .prefix = url->prefix,
      .attr_ttl = std::chrono::milliseconds(static_cast<int64_t>(args.attr_ttl_s * 1000)),
      .negative_ttl = std::chrono::milliseconds(static_cast<int64_t>(args.negative_ttl_s * 1000)),
      .head_every_entry = args.head_attrs};
  plan.fs = FilesystemOptions{.uid = args.uid.value_or(getuid()),
                              .gid = args.gid.value_or(getgid()),
                              .umask = static_cast<mode_t>(umask_value),
                              .attr_ttl = plan.metadata.attr_ttl};
  plan.fuse = FuseMountOptions{
      .mountpoint = plan.mountpoint,
      .fsname = "strata:" + url->bucket + (url->prefix.empty() ? "" : "/" + url->prefix),
      .read_only = args.read_only,
      .allow_other = args.allow_other,
      .debug = args.fuse_debug,
      .attr_ttl = plan.metadata.attr_ttl};
  return plan;
}

// Tells the waiting parent how the start went; the parent prints it and exits.
class StartReport {
 public:
  explicit StartReport(int fd) : fd_(fd) {}
  void Send(const std::string& message) {
    if (fd_ < 0) {
      // In the foreground nobody waits on a pipe: say it here.
      if (message != "ok") std::cerr << "strata mount: " << message << "\n";
      return;
    }
    IgnoreError(WriteAll(message), "the parent reports a closed pipe as a failure");
    close(fd_);
    fd_ = -1;
  }

 private:
  Status WriteAll(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = write(fd_, data.data(), data.size());
      if (n <= 0) return Status::Io("pipe");
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  int fd_;
};

// The parent after fork: waits for the child's report. "ok" means the mount is served.
int WaitForDaemon(int fd) {
  std::string report;
  char buffer[512];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) report.append(buffer, static_cast<size_t>(n));
  close(fd);
  if (report == "ok") return 0;
  if (report.empty()) report = "the daemon exited during start-up (see the log)";
  std::cerr << "strata mount: " << report << "\n";
  return 1;
}

// What Serve needs besides the plan: built before forking, used by the serving process.
struct Daemon {
  const MountPlan& plan;
  const MountArgs& args;
  S3Store& store;
  ObjectStore& upload_store;  // the store, or a FaultyStore around it (--fault-rate)
  MetadataCache& metadata;
  Filesystem& fs;
  ChunkFetcher*& fetcher_slot;
  CacheStats& stats;
  std::atomic<uint64_t>& upload_rate;  // bytes per second over the last seconds
  FuseSession& session;
};

// How long a new daemon waits for the cache directory's previous user: a daemon that was just
// unmounted may still be writing out chunks (seconds) or draining its queue (--drain-timeout).
std::chrono::milliseconds LockWait(const MountArgs& args) {
  return std::chrono::milliseconds(10000 + static_cast<int64_t>(args.drain_timeout_s * 1000));
}

// Samples the bytes uploaded once a second into `rate` until `stop` is set.
class RateSampler {
 public:
  RateSampler(UploadQueue& queue, std::atomic<uint64_t>& rate)
      : thread_([this, &queue, &rate] {
          constexpr int kWindow = 5;
          std::vector<uint64_t> samples;
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
            samples.push_back(queue.stats().bytes_uploaded);
            if (samples.size() > kWindow + 1) samples.erase(samples.begin());
            if (samples.size() > 1) {
              rate = (samples.back() - samples.front()) / (samples.size() - 1);
            }
          }
        }) {}
  ~RateSampler() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Opens the cache (and for a writable mount the staging area and the upload queue, replaying
// what an earlier run left), starts the fetcher and serves until unmounted; then drains the
// queue for up to --drain-timeout. `report` gets "ok" once serving, or why it could not start.
int Serve(Daemon& d, StartReport& report) {
  const MountPlan& plan = d.plan;
  Result<std::unique_ptr<DiskTier>> disk =
      DiskTier::Open(DiskTierOptions{.root = plan.cache_dir + "/chunks-v1",
                                     .max_bytes = plan.cache_size,
                                     .min_free_bytes = plan.cache_min_free,
                                     // An unmounted daemon may still be writing out its last
                                     // chunks, or draining its upload queue.
                                     .lock_wait = LockWait(d.args)},
                     d.stats);
  if (!disk.ok()) {
    report.Send("cache directory " + plan.cache_dir + ": " + disk.status().ToString());
    return 1;
  }
  // What this cache learned of each object version's attributes (a cache: rebuilt when bad).
  std::unique_ptr<AttrStore> attrs;
  if (Status st = MakePrivateDir(plan.cache_dir + "/attrs-v1"); !st.ok()) {
    report.Send("cache directory " + plan.cache_dir + ": " + st.ToString());
    return 1;
  }
  Result<std::unique_ptr<AttrStore>> opened_attrs = AttrStore::Open(
      AttrStoreOptions{.path = plan.cache_dir + "/attrs-v1/" + plan.url.bucket + ".db"});
  if (!opened_attrs.ok()) {
    report.Send("attribute cache in " + plan.cache_dir + ": " + opened_attrs.status().ToString());
    return 1;
  }
  attrs = std::move(*opened_attrs);
  d.metadata.AttachAttrStore(attrs.get());
  std::shared_ptr<StagingArea> staging;
  std::unique_ptr<UploadQueue> queue;
  if (!d.args.read_only) {
    Result<std::shared_ptr<StagingArea>> opened =
        StagingArea::Open(StagingOptions{.dir = plan.cache_dir + "/staging-v1",
                                         .lock_wait = LockWait(d.args),
                                         .max_bytes = plan.staging_size,
                                         .min_free_bytes = plan.cache_min_free});
    if (!opened.ok()) {
      report.Send("staging directory: " + opened.status().ToString());
      return 1;
    }
    staging = *opened;
    Result<std::unique_ptr<UploadQueue>> replayed = UploadQueue::Open(
        d.upload_store,
        UploadQueueOptions{.dir = plan.cache_dir + "/queue-v1",
                           .workers = d.args.upload_workers,
                           .multipart_threshold = plan.multipart_threshold,
                           .part_size = plan.part_size,
                           .owned_prefixes = {plan.url.prefix},
                           .on_done = [&d](const QueueRecord& record, const std::string& etag) {
                             d.fs.OnUploaded(record, etag);
                           }});
    if (!replayed.ok()) {
      report.Send("upload queue in " + plan.cache_dir +
                  "/queue-v1: " + replayed.status().ToString());
      return 1;
    }
    queue = std::move(*replayed);
    const UploadQueueStats pending = queue->stats();
    if (pending.depth + pending.dead_letters > 0) {
      spdlog::info("upload queue: resuming {} pending and {} dead entries", pending.depth,
                   pending.dead_letters);
    }
    DiskTier& tier = **disk;
    const std::string bucket = plan.url.bucket;
    d.fs.EnableWrites(
        WriteServices{.staging = staging,
                      .queue = queue.get(),
                      .sync_upload = d.args.sync_upload,
                      .pin = [&tier, bucket](const std::string& key) -> std::function<void()> {
                        tier.Pin(bucket, key);
                        return [&tier, bucket, key] { tier.Unpin(bucket, key); };
                      }});
    queue->Start();
  }
  // Few shards: with multi-MiB chunks a shard must hold a whole read-ahead window in its
  // probation segment, or read-ahead chunks would evict each other before being read.
  // --memory-cache bounds all chunk data the daemon holds: the memory tier gets what read-ahead,
  // the write-behind queue and the buffers kept for reuse do not use (they hold chunks on top
  // of it).
  const ChunkFetcher::Options fetcher_options{.chunk_size = plan.chunk_size,
                                              .readahead_budget_bytes = kReadaheadBytes};
  const uint64_t overhead = kReadaheadBytes + plan.cache_write_queue +
                            fetcher_options.kept_buffers * uint64_t{plan.chunk_size};
  const uint64_t memory_budget = std::max<uint64_t>(
      plan.memory_cache > overhead ? plan.memory_cache - overhead : 0, 4ull * plan.chunk_size);
  MemoryTier memory(
      MemoryTier::Options{.budget_bytes = memory_budget, .shards = 2, .protected_fraction = 0.5},
      d.stats);
  // Readers never wait for the cache disk: chunks it cannot take in time are not written.
  WriteBehindTier disk_behind(**disk, plan.cache_write_queue, d.stats);
  ChunkFetcher fetcher(d.store, {&memory, &disk_behind}, fetcher_options, d.stats);
  d.fetcher_slot = &fetcher;
  std::optional<RateSampler> sampler;
  if (queue) sampler.emplace(*queue, d.upload_rate);
  spdlog::info("serving {} on {} ({})", d.store.Describe(), plan.mountpoint,
               d.args.read_only ? "read-only" : "read-write");
  report.Send("ok");
  Status served = d.session.Run();
  // Unmount first: nothing can reach the filesystem while the queue drains.
  d.session.Unmount();
  d.fetcher_slot = nullptr;
  int rc = 0;
  if (!served.ok()) {
    spdlog::error("{}", served.ToString());
    rc = 1;
  }
  if (queue) {
    const auto timeout = std::chrono::duration_cast<Clock::Duration>(
        std::chrono::duration<double>(d.args.drain_timeout_s));
    const Status drained = queue->Drain(timeout);
    const UploadQueueStats left = queue->stats();
    if (drained.ok()) {
      spdlog::info("upload queue drained");
    } else {
      spdlog::warn(
          "upload queue not drained ({}): {} pending and {} dead entries stay queued "
          "for the next mount with this cache directory",
          drained.ToString(), left.depth, left.dead_letters);
    }
  }
  spdlog::info("unmounted {}", plan.mountpoint);
  return rc;
}

}  // namespace

int RunMount(const MountArgs& args, const StoreCli& cli, const EnvLookup& env,
             const std::string& log_level, const std::string& log_file) {
  // Chunks are multi-MiB buffers freed by other threads than those that allocated them; with
  // one glibc arena per thread, freed chunks linger in many arenas and the daemon's memory grows
  // well past --memory-cache. Two arenas keep it within the budget at the same throughput
  // (tests/bench/read_path.sh prints the peak).
  mallopt(M_ARENA_MAX, 2);
  Result<MountPlan> planned = Plan(args, cli, env);
  if (!planned.ok()) {
    const bool usage = planned.status().kind() == ErrorKind::kInvalidArgument;
    return Fail(planned.status().message(), usage ? 2 : 1);
  }
  MountPlan& plan = *planned;

  Result<Credentials> creds = ResolveCredentials(cli.ToCredentialOptions(), env);
  if (!creds.ok()) return Fail(creds.status().message());
  plan.s3.credentials = *creds;
  plan.s3.retry.max_attempts = 3;  // fail fast while checking; raised once serving
  Result<std::unique_ptr<S3Store>> created = S3Store::Create(plan.s3);
  if (!created.ok()) return Fail(created.status().message());
  S3Store& probe = **created;
  Result<ListPage> first = probe.List(ListOptions{.prefix = plan.url.prefix, .max_keys = 1});
  if (!first.ok()) {
    // Wrong credentials, a missing bucket, an endpoint that cannot be reached: say so and stop.
    // A server that answers, only badly for now (5xx, a reset or garbled answer after the
    // connection was made), is having a bad moment: mount, and let requests retry.
    const Status& st = first.status();
    const bool unreachable = st.code() == "ConnectFailed" || st.code() == "ResolveFailed" ||
                             st.code() == "Timeout" || st.code() == "TlsError";
    if (!st.retryable() || unreachable) {
      return Fail(ExplainStoreError(st, *creds, probe.options(), probe.endpoint_url()));
    }
    std::cerr << "strata mount: warning: " << probe.endpoint_url()
              << " answers, but not well: " << st.ToString() << "; mounting anyway\n";
  }
  if (Status st = PrepareCacheDir(plan.cache_dir); !st.ok()) return Fail(st.message());

  // The store the daemon serves with: patient with transient errors.
  plan.s3.retry.max_attempts = cli.max_attempts;
  Result<std::unique_ptr<S3Store>> serving = S3Store::Create(plan.s3);
  if (!serving.ok()) return Fail(serving.status().message());
  S3Store& store = **serving;

  const std::string log_path =
      !log_file.empty() || args.foreground ? log_file : plan.cache_dir + "/strata.log";
  if (Status st = SetupLogging(log_level, log_path); !st.ok()) return Fail(st.message());

  CacheStats stats;
  ChunkFetcher* fetcher = nullptr;  // set by Serve once the fetcher runs
  std::atomic<uint64_t> upload_rate{0};
  FaultyStore faulty(store, /*seed=*/static_cast<uint64_t>(getpid()));
  ObjectStore& upload_store = args.fault_rate ? static_cast<ObjectStore&>(faulty) : store;
  if (args.fault_rate) {
    faulty.FailFraction(*args.fault_rate);
    plan.fuse.set_fault_rate = [&faulty](double rate) {
      if (!(rate >= 0 && rate <= 1)) {
        return Status::InvalidArgument("fault rate must be between 0 and 1");
      }
      faulty.Clear();
      if (rate > 0) faulty.FailFraction(rate);
      spdlog::warn("fault injection: failing {} of upload requests", rate);
      return Status::Ok();
    };
  }
  const ReadStream::Options stream_options{.max_readahead_bytes = plan.max_readahead};
  SystemClock clock;
  MetadataCache metadata(store, clock, plan.metadata);
  Filesystem fs(
      metadata,
      [&fetcher, &stream_options](const ObjectVersion& version) {
        return std::make_unique<ReadStream>(*fetcher, version, stream_options);
      },
      [&stats, &store, &upload_rate, &args] {
        const S3Counters s3 = store.counters();
        return (args.read_only ? std::string()
                               : "queue_upload_bytes_per_second " +
                                     std::to_string(upload_rate.load()) + "\n") +
               stats.Format() + "s3_requests " + std::to_string(s3.requests) + "\n" +
               "s3_retries " + std::to_string(s3.retries) + "\n" + "s3_connections_opened " +
               std::to_string(s3.connections_opened) + "\n" + "s3_bytes_received " +
               std::to_string(s3.bytes_received) + "\n";
      },
      plan.fs);
  Result<std::unique_ptr<FuseSession>> session = FuseSession::Mount(fs, plan.fuse);
  if (!session.ok()) return Fail(session.status().message());

  Daemon daemon{plan, args,    store, upload_store, metadata,
                fs,   fetcher, stats, upload_rate,  **session};
  if (args.foreground) {
    StartReport report(-1);
    return Serve(daemon, report);
  }
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return Fail(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) return Fail(std::string("fork: ") + std::strerror(errno));
  if (pid > 0) {
    // The parent: the mount belongs to the child now; leave without unmounting.
    close(pipe_fds[1]);
    const int status = WaitForDaemon(pipe_fds[0]);
    std::cout.flush();
    std::cerr.flush();
    _exit(status);
  }
  close(pipe_fds[0]);
  setsid();
  if (chdir("/") != 0) spdlog::warn("chdir /: {}", std::strerror(errno));
  const int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    if (null_fd > STDERR_FILENO) close(null_fd);
  }
  StartReport report(pipe_fds[1]);
  return Serve(daemon, report);
}

}  // namespace strata
