#include "backends/s3_outcome.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <string>

namespace strata::s3 {
namespace {

struct CurlCase {
  const char* what;
  CURLcode code;
  bool transient;
  const char* remote_code;
};

// What libcurl reports for each way an exchange can fail on the network.
TEST(S3OutcomeTest, TransportFailuresAreTransientConfigurationErrorsAreNot) {
  const CurlCase cases[] = {
      {"connection refused", CURLE_COULDNT_CONNECT, true, "ConnectFailed"},
      {"host not resolved", CURLE_COULDNT_RESOLVE_HOST, true, "ResolveFailed"},
      {"reset before the status line", CURLE_GOT_NOTHING, true, "ConnectionReset"},
      {"reset while receiving", CURLE_RECV_ERROR, true, "ConnectionReset"},
      {"reset while sending the body", CURLE_SEND_ERROR, true, "ConnectionReset"},
      {"reset mid-body, body not rewindable", CURLE_SEND_FAIL_REWIND, true, "ConnectionReset"},
      {"timeout (connect, low speed)", CURLE_OPERATION_TIMEDOUT, true, "Timeout"},
      {"short body (Content-Length)", CURLE_PARTIAL_FILE, true, "ShortBody"},
      {"protocol error (leftovers after a 5xx)", CURLE_WEIRD_SERVER_REPLY, true, "ProtocolError"},
      {"bad content encoding", CURLE_BAD_CONTENT_ENCODING, true, "ProtocolError"},
      {"TLS handshake cut", CURLE_SSL_CONNECT_ERROR, true, "TlsError"},
      {"HTTP/2 stream reset", CURLE_HTTP2_STREAM, true, "ConnectionReset"},
      {"anything else on the way", CURLE_TOO_MANY_REDIRECTS, true, "TransportError"},
      {"certificate not accepted", CURLE_PEER_FAILED_VERIFICATION, false, "TlsError"},
      {"malformed URL", CURLE_URL_MALFORMAT, false, "BadEndpoint"},
      {"unsupported scheme", CURLE_UNSUPPORTED_PROTOCOL, false, "BadEndpoint"},
      {"out of memory", CURLE_OUT_OF_MEMORY, false, "CurlError"},
  };
  for (const CurlCase& c : cases) {
    const Status st = StatusFromCurl(c.code, "", "http://127.0.0.1:1");
    EXPECT_FALSE(st.ok()) << c.what;
    EXPECT_EQ(st.retryable(), c.transient) << c.what << ": " << st.ToString();
    EXPECT_EQ(st.code(), c.remote_code) << c.what;
    EXPECT_EQ(st.http_status(), 0) << c.what;
  }
}

TEST(S3OutcomeTest, CurlsOwnTextIsUsedWhenNoDetailIsGiven) {
  const Status st = StatusFromCurl(CURLE_COULDNT_CONNECT, "", "http://127.0.0.1:1");
  EXPECT_NE(st.message().find("http://127.0.0.1:1"), std::string::npos);
  EXPECT_NE(st.message().find(curl_easy_strerror(CURLE_COULDNT_CONNECT)), std::string::npos);
  EXPECT_NE(StatusFromCurl(CURLE_RECV_ERROR, "Connection reset by peer", "e")
                .message()
                .find("Connection reset by peer"),
            std::string::npos);
}

struct HttpCase {
  const char* what;
  int status;
  std::string body;
  ErrorKind kind;
};

std::string ErrorXml(const char* code) {
  return std::string("<?xml version=\"1.0\"?><Error><Code>") + code +
         "</Code><Message>m</Message></Error>";
}

TEST(S3OutcomeTest, HttpAnswersByStatusAndCode) {
  const HttpCase cases[] = {
      {"500 with InternalError", 500, ErrorXml("InternalError"), ErrorKind::kTransient},
      {"503 SlowDown", 503, ErrorXml("SlowDown"), ErrorKind::kTransient},
      {"500 without body (HEAD)", 500, "", ErrorKind::kTransient},
      {"503 without body (HEAD)", 503, "", ErrorKind::kTransient},
      {"502 with HTML from a proxy", 502, "<html><body>Bad Gateway</body></html>",
       ErrorKind::kTransient},
      {"500 with a garbled body", 500, "<Error><Co", ErrorKind::kTransient},
      {"500 whose code would be permanent", 500, ErrorXml("InvalidArgument"),
       ErrorKind::kTransient},
      {"501 NotImplemented", 501, ErrorXml("NotImplemented"), ErrorKind::kNotSupported},
      {"501 without body", 501, "", ErrorKind::kNotSupported},
      {"408 without body", 408, "", ErrorKind::kTransient},
      {"400 RequestTimeout", 400, ErrorXml("RequestTimeout"), ErrorKind::kTransient},
      {"429 without body", 429, "", ErrorKind::kTransient},
      {"400 InvalidArgument", 400, ErrorXml("InvalidArgument"), ErrorKind::kInvalidArgument},
      {"400 KeyTooLongError", 400, ErrorXml("KeyTooLongError"), ErrorKind::kInvalidArgument},
      {"400 without body", 400, "", ErrorKind::kInvalidArgument},
      {"403 SignatureDoesNotMatch", 403, ErrorXml("SignatureDoesNotMatch"),
       ErrorKind::kAccessDenied},
      {"403 without body (HEAD)", 403, "", ErrorKind::kAccessDenied},
      {"404 NoSuchKey", 404, ErrorXml("NoSuchKey"), ErrorKind::kNotFound},
      {"404 NoSuchBucket", 404, ErrorXml("NoSuchBucket"), ErrorKind::kNotFound},
      {"404 without body (HEAD)", 404, "", ErrorKind::kNotFound},
      {"409 unknown code", 409, ErrorXml("BucketNotEmpty"), ErrorKind::kInternal},
      {"412 PreconditionFailed", 412, ErrorXml("PreconditionFailed"),
       ErrorKind::kPreconditionFailed},
      {"412 without body (HEAD)", 412, "", ErrorKind::kPreconditionFailed},
      {"416 InvalidRange", 416, ErrorXml("InvalidRange"), ErrorKind::kInvalidArgument},
  };
  for (const HttpCase& c : cases) {
    const Status st = StatusFromHttpAnswer(c.status, c.body);
    EXPECT_EQ(st.kind(), c.kind) << c.what << ": " << st.ToString();
    EXPECT_EQ(st.http_status(), c.status) << c.what;
  }
}

TEST(S3OutcomeTest, GarbledBodyIsTransient) {
  const Status st = GarbledBody("ListObjectsV2", "unexpected end of data");
  EXPECT_TRUE(st.retryable());
  EXPECT_EQ(st.code(), "GarbledBody");
}

}  // namespace
}  // namespace strata::s3
