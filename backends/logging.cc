#include "backends/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace strata {

Status SetupLogging(std::string_view level, const std::string& file) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("unknown log level '" + std::string(level) +
                                   "' (trace, debug, info, warn, error, off)");
  }
  try {
    spdlog::drop("strata");  // set up again, e.g. when a daemon moves its log to a file
    std::shared_ptr<spdlog::logger> logger =
        file.empty() ? spdlog::stderr_logger_mt("strata")
                     : spdlog::basic_logger_mt("strata", file, /*truncate=*/false);
    logger->set_level(parsed);
    // Debugging is for finding out what happened up to a crash: then every line is flushed.
    logger->flush_on(std::min(parsed, spdlog::level::warn));
    spdlog::set_default_logger(std::move(logger));
  } catch (const spdlog::spdlog_ex& e) {
    return Status::Io("cannot open log file '" + file + "': " + e.what());
  }
  return Status::Ok();
}

}  // namespace strata
