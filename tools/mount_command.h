// `strata mount s3://BUCKET[/PREFIX] MOUNTPOINT`: validates everything it can (options,
// credentials, bucket, mount point, cache directory) and says why before anything is left
// running; mounts; then, unless --foreground, forks a daemon that opens the cache, starts the
// fetcher threads and serves the mount. The command returns once the daemon reports that it is
// serving, or with its error. Unmounting (umount, fusermount3 -u) or SIGTERM stops the daemon.
#pragma once

#include "backends/credentials.h"
#include "tools/mount_options.h"
#include "tools/store_cli.h"

namespace strata {

// Returns the process exit status.
int RunMount(const MountArgs& args, const StoreCli& cli, const EnvLookup& env,
             const std::string& log_level, const std::string& log_file);

}  // namespace strata
