// StoreCli: the command-line options every strata command that talks to S3 shares (endpoint,
// region, addressing, credentials, TLS, timeouts), and their resolution into S3Options.
// Used from main() only; not thread-safe.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "backends/credentials.h"
#include "backends/s3_store.h"

namespace strata {

struct StoreCli {
  std::string endpoint;  // default: $AWS_ENDPOINT_URL, else AWS
  std::string region;    // default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1
  bool path_style = false;
  bool virtual_hosted = false;
  std::string profile;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string ca_file;
  bool no_verify_tls = false;
  bool unsigned_payload = false;
  double connect_timeout_s = 5;
  double request_timeout_s = 30;
  int max_attempts = 10;

  // Adds the options to `app` in a group named "S3 connection".
  void AddTo(CLI::App& app);

  // Everything but the credentials, which the caller resolves (and reports) itself.
  Result<S3Options> ToOptions(const std::string& bucket, const EnvLookup& env) const;
  CredentialOptions ToCredentialOptions() const;
};

}  // namespace strata
