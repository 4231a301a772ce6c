#include "backends/s3_outcome.h"

#include <curl/curl.h>

#include <string>

#include "backends/s3_protocol.h"

namespace strata::s3 {

Status StatusFromCurl(int curl_code, std::string_view detail_in, std::string_view endpoint_in) {
  const auto code = static_cast<CURLcode>(curl_code);
  const std::string detail =
      detail_in.empty() ? std::string(curl_easy_strerror(code)) : std::string(detail_in);
  const std::string endpoint(endpoint_in);
  auto transient = [&](const char* remote_code, std::string message) {
    return Status::Transient(std::move(message)).WithRemote(0, remote_code);
  };
  switch (code) {
    case CURLE_OK:
      return Status::Ok();
    case CURLE_COULDNT_CONNECT:
      return transient("ConnectFailed", "cannot connect to " + endpoint + ": " + detail);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return transient("ResolveFailed", "cannot resolve the host of " + endpoint + ": " + detail);
    case CURLE_OPERATION_TIMEDOUT:
      return transient("Timeout", "timed out talking to " + endpoint + ": " + detail);
    case CURLE_PARTIAL_FILE:
      return transient("ShortBody", "the response body ended early: " + detail);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_SEND_FAIL_REWIND:  // a reset while the body was sent, and no way to resend it
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_AGAIN:
      return transient("ConnectionReset", "connection to " + endpoint + " failed: " + detail);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_RANGE_ERROR:
      return transient("ProtocolError", "unreadable answer from " + endpoint + ": " + detail);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_SHUTDOWN_FAILED:
      return transient("TlsError", "TLS with " + endpoint + " failed: " + detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
      return Status::InvalidArgument("TLS certificate of " + endpoint + " not accepted: " + detail)
          .WithRemote(0, "TlsError");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument("bad endpoint URL " + endpoint + ": " + detail)
          .WithRemote(0, "BadEndpoint");
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FAILED_INIT:
    case CURLE_ABORTED_BY_CALLBACK:
      return Status::Internal("HTTP client error talking to " + endpoint + ": " + detail)
          .WithRemote(0, "CurlError");
    default:
      // Any other failure happened on the way (a network or protocol problem): try again.
      return transient("TransportError", "talking to " + endpoint + " failed: " + detail);
  }
}

Status StatusFromHttpAnswer(int http_status, std::string_view body) {
  if (std::optional<ErrorBody> error = ParseError(body)) {
    Status st = StatusFromS3Error(http_status, error->code, error->message);
    // A 5xx is the server's trouble whatever its body says.
    if (http_status >= 500 && !st.retryable() && st.kind() != ErrorKind::kNotSupported) {
      return Status::Transient(st.message()).WithRemote(http_status, st.code());
    }
    return st;
  }
  if (http_status == 408) {
    return Status::Transient("HTTP 408").WithRemote(http_status, "RequestTimeout");
  }
  return StatusFromS3Error(http_status, "", "HTTP " + std::to_string(http_status));
}

Status GarbledBody(std::string_view what, std::string_view detail) {
  return Status::Transient(std::string(what) + ": " + std::string(detail))
      .WithRemote(0, "GarbledBody");
}

}  // namespace strata::s3
