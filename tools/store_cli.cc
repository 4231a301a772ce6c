#include "tools/store_cli.h"

namespace strata {

void StoreCli::AddTo(CLI::App& app) {
  const std::string group = "S3 connection";
  app.add_option("--endpoint", endpoint,
                 "S3 endpoint URL, e.g. http://127.0.0.1:7480 (default: $AWS_ENDPOINT_URL, "
                 "else AWS for the region)")
      ->group(group);
  app.add_option("--region", region,
                 "Region to sign for (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)")
      ->group(group);
  app.add_flag("--path-style", path_style,
               "Path-style URLs (http://host/bucket/key); the default with --endpoint")
      ->group(group);
  app.add_flag("--virtual-hosted", virtual_hosted,
               "Virtual-hosted URLs (http://bucket.host/key); the default on AWS")
      ->group(group)
      ->excludes("--path-style");
  app.add_option("--profile", profile,
                 "Profile in the shared credentials file (default: $AWS_PROFILE, else default)")
      ->group(group);
  app.add_option("--access-key-id", access_key_id,
                 "Access key id (default: $AWS_ACCESS_KEY_ID, then the credentials file)")
      ->group(group);
  app.add_option("--secret-access-key", secret_access_key,
                 "Secret key; visible to other local users in the process list, prefer "
                 "$AWS_SECRET_ACCESS_KEY or the credentials file")
      ->group(group);
  app.add_option("--session-token", session_token, "Session token of temporary credentials")
      ->group(group);
  app.add_option("--ca-file", ca_file, "PEM file of CA certificates to trust for https")
      ->group(group)
      ->check(CLI::ExistingFile);
  app.add_flag("--no-verify-tls", no_verify_tls,
               "Do not verify the server's TLS certificate (insecure; tests only)")
      ->group(group);
  app.add_flag("--unsigned-payload", unsigned_payload,
               "Do not hash request bodies of 1 MiB or more into the signature (saves CPU on "
               "large uploads; integrity then rests on TLS or TCP)")
      ->group(group);
  app.add_option("--connect-timeout", connect_timeout_s, "Seconds to wait for a connection")
      ->group(group)
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--request-timeout", request_timeout_s,
                 "Seconds one S3 operation may take, retries included, plus one per 256 KiB of "
                 "data it moves; then it fails (EIO) instead of waiting on. 0: no limit")
      ->group(group)
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--max-attempts", max_attempts,
                 "Attempts per request for transient errors, first try included")
      ->group(group)
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
}

Result<S3Options> StoreCli::ToOptions(const std::string& bucket, const EnvLookup& env) const {
  S3Options options;
  options.bucket = bucket;
  options.endpoint = endpoint.empty() ? env("AWS_ENDPOINT_URL").value_or("") : endpoint;
  options.region = region;
  if (options.region.empty()) {
    options.region = env("AWS_REGION").value_or(env("AWS_DEFAULT_REGION").value_or("us-east-1"));
  }
  options.addressing = path_style       ? AddressingStyle::kPath
                       : virtual_hosted ? AddressingStyle::kVirtual
                                        : AddressingStyle::kAuto;
  options.ca_file = ca_file;
  if (unsigned_payload) options.unsigned_payload_from = 1 << 20;
  options.verify_tls = !no_verify_tls;
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(connect_timeout_s * 1000));
  options.request_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(request_timeout_s * 1000));
  options.retry.max_attempts = max_attempts;
  return options;
}

CredentialOptions StoreCli::ToCredentialOptions() const {
  return CredentialOptions{access_key_id, secret_access_key, session_token, profile};
}

}  // namespace strata
