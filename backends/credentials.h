// Credential resolution: finds the static AWS access key pair (and optional session token) to
// sign S3 requests with, the way the AWS CLI does for static keys, in this order:
//   1. explicit options (CredentialOptions key id + secret, e.g. from the command line);
//   2. the environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//      skipped when CredentialOptions.profile names a profile, as the AWS CLI skips it for
//      --profile, so an exported key pair never silently overrides the profile asked for;
//   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
//      $HOME/.aws/credentials), section [profile] where profile is CredentialOptions.profile,
//      else AWS_PROFILE, else "default".
// Role assumption, SSO, credential_process and instance metadata are not supported.
//
// The environment is read only through the EnvLookup passed in, so tests never touch the
// process environment or the real home directory. ResolveCredentials reads the credentials
// file once per call and keeps nothing; it is safe to call from any thread as long as `env`
// is. Returned Credentials.source names where the keys came from (file and profile
// included) and never contains the secret or the session token.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "backends/sigv4.h"
#include "base/status.h"

namespace strata {

struct CredentialOptions {
  std::string access_key_id;  // explicit options win when both key id and secret are set
  std::string secret_access_key;
  std::string session_token;
  std::string profile;  // empty: AWS_PROFILE, else "default"
};

// Looks up an environment variable; tests pass a map-backed one. nullopt when unset. An empty
// value counts as unset, as it does for the AWS CLI.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// std::getenv based. Not safe against a concurrent setenv/putenv in the same process.
EnvLookup ProcessEnvironment();

// Errors:
//   kInvalidArgument: only one of key id / secret given (options, environment or profile), or a
//     session token in the options without a key pair; the message names what is missing.
//   kNotFound: a profile asked for explicitly (option or AWS_PROFILE) that is missing from the
//     file ("profile X not found in FILE ...") or has no keys in it; or nothing anywhere, with a
//     message listing each place tried.
//   kIo: the credentials file exists but cannot be read.
[[nodiscard]] Result<Credentials> ResolveCredentials(const CredentialOptions& options,
                                                     const EnvLookup& env);

// Shows an access key id as the AWS CLI does: "****************MPLE" (all but the last 4 chars
// masked). Keys of 4 characters or fewer are masked entirely.
std::string MaskAccessKey(std::string_view access_key_id);

}  // namespace strata
