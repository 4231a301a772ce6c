// The channel from the strata commands to a running mount: extended attributes of its root
// (see stats_command.h and queue_command.h for the names).
#pragma once

#include <ostream>
#include <string>

namespace strata {

// Reads the attribute `name` of `mountpoint` into *value. Returns 0, or 1 after a message on
// `err` that begins with "strata COMMAND: " (e.g. MOUNTPOINT is not a strata mount).
int ReadMountAttribute(const std::string& mountpoint, const char* name, const char* command,
                       std::string* value, std::ostream& err);

}  // namespace strata
