// Connection settings of the local S3 server the integration tests run against, from the
// environment that tests/run.sh exports (STRATA_TEST_ENDPOINT, STRATA_TEST_ACCESS_KEY,
// STRATA_TEST_SECRET_KEY). Tests skip with a message when it is not set.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backends/s3_store.h"

namespace strata::testing {

// nullopt when STRATA_TEST_ENDPOINT is unset.
std::optional<S3Options> TestS3Options(const std::string& bucket);

// A bucket name unique to this process, e.g. "strata-it-12345-ab12".
std::string UniqueBucketName(const std::string& stem);

// Creates the bucket (if needed) and returns a store for it; fails the test on error.
std::unique_ptr<S3Store> OpenTestBucket(const std::string& bucket);

// Deletes every object and in-progress upload, then the bucket. Best effort.
void DestroyTestBucket(S3Store& store);

}  // namespace strata::testing
