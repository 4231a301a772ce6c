// Logging setup for the strata binary: spdlog's default logger, to stderr or a file.
// Call once at start-up, before other threads log. Messages never carry secrets: credentials
// are logged only as their source and a masked access key id.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace strata {

// level: trace, debug, info, warn, error, off. file: empty for stderr.
Status SetupLogging(std::string_view level, const std::string& file);

}  // namespace strata
