// `strata check s3://BUCKET[/PREFIX]`: the self-test a user runs before mounting. Resolves the
// credentials, probes the endpoint, checks that the bucket exists and is readable, lists the
// prefix and, unless read-only, writes, reads back, lists and deletes a probe object to prove
// read-after-write. One line per step; the exit status is 0 only when every step passed.
#pragma once

#include <ostream>
#include <string>

#include "backends/credentials.h"
#include "tools/store_cli.h"

namespace strata {

struct CheckArgs {
  std::string url;  // s3://BUCKET[/PREFIX]
  bool read_only = false;
};

// Returns the process exit status. `out` gets the step lines, `env` is the environment.
int RunCheck(const CheckArgs& args, const StoreCli& cli, const EnvLookup& env, std::ostream& out);

}  // namespace strata
