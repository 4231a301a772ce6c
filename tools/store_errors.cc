#include "tools/store_errors.h"

namespace strata {

std::string ExplainStoreError(const Status& status, const Credentials& creds,
                              const S3Options& options, const std::string& endpoint_url) {
  const std::string& code = status.code();
  const std::string key = MaskAccessKey(creds.access_key_id);
  if (code == "SignatureDoesNotMatch") {
    return "signature mismatch: check the secret key for " + creds.source;
  }
  if (code == "InvalidAccessKeyId") {
    return "the server does not know access key " + key + ": check the access key id from " +
           creds.source;
  }
  if (code == "NoSuchBucket") return "bucket '" + options.bucket + "' does not exist";
  if (code == "RequestTimeTooSkewed") {
    return "the server says this machine's clock is wrong: fix the system time";
  }
  if (code == "ExpiredToken" || code == "InvalidToken") {
    return "the session token from " + creds.source + " is expired or invalid";
  }
  if (code == "ConnectFailed") return "cannot connect to " + endpoint_url;
  if (code == "ResolveFailed") return "cannot resolve the host name of " + endpoint_url;
  if (code == "Timeout") return "no answer from " + endpoint_url + " in time";
  if (code == "TlsError") return "TLS failed with " + endpoint_url + ": " + status.message();
  if (status.kind() == ErrorKind::kAccessDenied) {
    return "access denied for access key " + key + " on bucket '" + options.bucket +
           "': check the bucket policy and the key's permissions";
  }
  return status.ToString();
}

}  // namespace strata
