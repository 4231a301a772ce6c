// Plain-words explanations of S3 failures for people starting strata: what went wrong and what
// to check ("signature mismatch: check the secret key for profile X"). Pure functions.
#pragma once

#include <string>

#include "backends/credentials.h"
#include "backends/s3_store.h"

namespace strata {

// `creds` and `options` are what the failed request used (for naming the key source, bucket
// and endpoint; the secret is never included).
std::string ExplainStoreError(const Status& status, const Credentials& creds,
                              const S3Options& options, const std::string& endpoint_url);

}  // namespace strata
