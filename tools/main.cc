// The strata binary: the composition root. Parses the command line, sets up logging, builds the
// store from its options and runs one command.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "backends/logging.h"
#include "tools/check_command.h"
#include "tools/fault_rate_command.h"
#include "tools/mount_command.h"
#include "tools/mount_options.h"
#include "tools/queue_command.h"
#include "tools/stats_command.h"
#include "tools/store_cli.h"

namespace {

constexpr const char* kVersion = "0.1.0";

int Main(int argc, char** argv) {
  // mount(8) runs fstab lines of type fuse.strata as `strata SOURCE MOUNTPOINT -o opts`.
  std::vector<std::string> args =
      strata::TranslateFstabArgs(std::vector<std::string>(argv, argv + argc));
  CLI::App app{"strata: mount an S3 bucket as a filesystem, with a local chunk cache.", "strata"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kVersion);
  std::string log_level = "warn";
  std::string log_file;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.add_option("--log-file", log_file, "Write the log here instead of stderr");

  strata::StoreCli store_cli;
  strata::CheckArgs check_args;
  CLI::App* check = app.add_subcommand(
      "check",
      "Self-test before mounting: credentials, endpoint, bucket, listing, and a write, read, "
      "list and delete of a probe object. Exit status 0 only when every step passes.");
  check->add_option("url", check_args.url, "s3://BUCKET[/PREFIX]")->required();
  check->add_flag("--read-only", check_args.read_only,
                  "Skip the write, read-back and delete of the probe object");
  store_cli.AddTo(*check);

  strata::MountArgs mount_args;
  CLI::App* mount = app.add_subcommand(
      "mount",
      "Mount s3://BUCKET[/PREFIX] on MOUNTPOINT (read-write unless --read-only). Daemonizes once "
      "the mount is live "
      "unless -f. Unmount with umount or fusermount3 -u. As an /etc/fstab line: "
      "s3://BUCKET/PREFIX /mnt/x fuse.strata endpoint=URL,cache_size=20G,_netdev 0 0");
  mount_args.AddTo(*mount);
  store_cli.AddTo(*mount);

  std::string stats_mountpoint;
  CLI::App* stats = app.add_subcommand("stats", "Print the counters of a running mount");
  stats->add_option("mountpoint", stats_mountpoint)->required();

  std::string queue_mountpoint, queue_action;
  CLI::App* queue = app.add_subcommand(
      "queue",
      "List the upload queue of a running mount (pending and dead-letter entries: key, size, "
      "age, attempts, last error); `retry` requeues the dead letters");
  queue->add_option("mountpoint", queue_mountpoint)->required();
  queue->add_option("action", queue_action, "retry")->check(CLI::IsMember({"retry"}));

  std::string fault_mountpoint, fault_rate;
  CLI::App* fault = app.add_subcommand(
      "fault-rate",
      "Testing: change the fraction F of upload requests that a mount started with --fault-rate "
      "fails (1 = S3 unreachable for uploads)");
  fault->add_option("mountpoint", fault_mountpoint)->required();
  fault->add_option("F", fault_rate, "a fraction from 0 to 1")->required();

  try {
    std::reverse(args.begin(), args.end());
    args.pop_back();  // the program name
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Every invalid command line: one line and exit status 2 (CLI11's own codes are 100+).
    std::cerr << "strata: " << e.what() << " (see --help)\n";
    return 2;
  }
  if (strata::Status st = strata::SetupLogging(log_level, log_file); !st.ok()) {
    std::cerr << "strata: " << st.message() << "\n";
    return 2;
  }
  if (check->parsed()) {
    return strata::RunCheck(check_args, store_cli, strata::ProcessEnvironment(), std::cout);
  }
  if (mount->parsed()) {
    return strata::RunMount(mount_args, store_cli, strata::ProcessEnvironment(), log_level,
                            log_file);
  }
  if (stats->parsed()) return strata::RunStats(stats_mountpoint, std::cout, std::cerr);
  if (queue->parsed()) {
    return strata::RunQueue(queue_mountpoint, queue_action == "retry", std::cout, std::cerr);
  }
  if (fault->parsed()) return strata::RunFaultRate(fault_mountpoint, fault_rate, std::cerr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
