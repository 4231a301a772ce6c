// How the outcome of one HTTP exchange with S3 becomes a Status: the transport result (a
// libcurl code) and, when an answer arrived, its status and body. Pure functions with no I/O,
// pinned down by a table-driven unit test, so that what is retried is decided in one place.
//
// The rule: every failure of the exchange itself is transient (retryable): a refused or reset
// connection, a reset before the status line or in the middle of a request or response body, a
// timeout, a body shorter than announced or cut in its chunked framing, a garbled body, a
// protocol error (often the leftovers of an earlier error answer on a kept-alive connection),
// and every 5xx answer with or without a body. Permanent are only what resending cannot fix:
// a malformed endpoint URL, a TLS certificate that is not accepted, and 4xx answers other than
// 408 (Request Timeout) and 429 (Too Many Requests), which StatusFromS3Error maps by code.
#pragma once

#include <string_view>

#include "base/status.h"

namespace strata::s3 {

// `curl_code` is a CURLcode other than CURLE_OK; `detail` is curl's error text (may be empty);
// `endpoint` names the server in the message. The Status carries a transport code
// ("ConnectFailed", "ConnectionReset", "Timeout", "ShortBody", "ProtocolError", ...) and HTTP
// status 0.
Status StatusFromCurl(int curl_code, std::string_view detail, std::string_view endpoint);

// An answer outside 2xx: the S3 <Error> body decides when it parses, else the HTTP status.
// `body` may be empty (HEAD), HTML from a proxy, or garbage.
Status StatusFromHttpAnswer(int http_status, std::string_view body);

// A 2xx body that cannot be parsed (cut short or garbled on the way) as a transient Status.
Status GarbledBody(std::string_view what, std::string_view detail);

}  // namespace strata::s3
