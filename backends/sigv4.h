// AWS Signature Version 4 for S3 requests signed in the Authorization header, plus the small
// encoding and hashing helpers S3 requests need (SHA-256, HMAC, MD5, hex, base64, RFC 3986
// percent-encoding).
//
// Everything here is a pure function of its arguments: no globals, no caches, no I/O, no clock
// (the caller passes the request time). Safe to call from any thread at once. The signing key
// is derived afresh on every SignV4 call (four HMACs; cheap next to a network round trip).
//
// Typical use by an S3 client:
//   std::string amz_date = FormatAmzDate(now);
//   SigningRequest req{"GET", "/bucket/" + UriEncode(key, false), {},
//                      {{"host", host}, {"x-amz-date", amz_date},
//                       {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)}},
//                      std::string(kEmptyPayloadSha256)};
//   headers.push_back({"Authorization", SignV4(req, creds, region, "s3", amz_date)});
// The request sent must carry exactly the signed headers with the same values, the same
// query and path, and x-amz-content-sha256 equal to payload_hash. With temporary credentials
// (creds.session_token not empty) the caller must also send and sign x-amz-security-token;
// SignV4 does not add headers.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never log
  std::string session_token;      // empty unless temporary credentials
  // Where they came from, for humans, never containing the secret: "command-line options",
  // "environment (AWS_ACCESS_KEY_ID)", "shared credentials file /root/.aws/credentials,
  // profile default".
  std::string source;
};

// RFC 3986 percent-encoding as SigV4 wants it: unreserved A-Z a-z 0-9 - . _ ~ kept, every other
// byte %XX upper-case hex (UTF-8 is encoded byte by byte; ' ' is %20, never '+').
// encode_slash=false keeps '/' (for S3 object paths).
std::string UriEncode(std::string_view in, bool encode_slash);

std::string Sha256Hex(std::string_view data);                         // lower-case hex
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string HexEncode(std::string_view bytes);                        // lower-case hex
std::string Base64Encode(std::string_view bytes);                     // standard, padded
std::string Md5Base64(std::string_view data);                         // for Content-MD5
std::string Md5Hex(std::string_view data);                            // lower-case hex

// "20130524T000000Z" for a system_clock time point (UTC), truncated to the second.
std::string FormatAmzDate(std::chrono::system_clock::time_point t);

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SigningRequest {
  std::string method;         // "GET"
  std::string canonical_uri;  // already URI-encoded path, e.g. "/bucket/my%20key" or "/test.txt"
  // Raw (NOT encoded) name/value pairs; a flag like "uploads" has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  // Names in any case; must include "host"; all given headers are signed. A name given twice
  // is signed as one header whose values are joined with ',' in the order given.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or kUnsignedPayload
};

// The query string as it is signed (and as it must be sent): every name and value encoded with
// UriEncode(..., true), pairs sorted by encoded name, then value, joined as "a=1&b=&c=3".
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

// The canonical request text: method, URI, canonical query, canonical headers (names
// lower-cased, values trimmed with inner runs of spaces collapsed, sorted by name), signed
// header list and payload hash, separated by '\n'. Query pairs are encoded with
// UriEncode(..., true) and sorted by encoded name, then value; an empty value gives "name=".
std::string CanonicalRequest(const SigningRequest& req);

// "AWS4-HMAC-SHA256\n<amz_date>\n<yyyymmdd>/<region>/<service>/aws4_request\n<hex sha256>".
// REQUIRES: amz_date is in FormatAmzDate form.
std::string StringToSign(std::string_view canonical_request, std::string_view amz_date,
                         std::string_view region, std::string_view service);

// Returns the value of the Authorization header: "AWS4-HMAC-SHA256
// Credential=AKID/20130524/us-east-1/s3/aws4_request,
// SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=<64 hex>".
// REQUIRES: amz_date is in FormatAmzDate form and equals the x-amz-date header value sent.
std::string SignV4(const SigningRequest& req, const Credentials& creds, std::string_view region,
                   std::string_view service, std::string_view amz_date);

}  // namespace strata
