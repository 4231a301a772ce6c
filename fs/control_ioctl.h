// The control surface of a running mount: extended attributes of its root that `strata stats`
// and `strata queue` read and set. One list, for the FUSE adapter that answers them and the
// tools that ask.
#pragma once

#include <string_view>

namespace strata::control {

inline constexpr const char* kStats = "user.strata.stats";  // get: counters, "name value" lines
inline constexpr const char* kQueue = "user.strata.queue";  // get: the first page of the queue
// get "user.strata.queue.after.SEQ": the page of the queue listing after sequence number SEQ
inline constexpr std::string_view kQueuePagePrefix = "user.strata.queue.after.";
inline constexpr const char* kQueueRetry = "user.strata.queue.retry";  // set: requeue dead letters
inline constexpr const char* kFaultRate = "user.strata.fault_rate";    // set: testing, --fault-rate

}  // namespace strata::control
