#include "backends/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace strata {
namespace {

// The worked examples of AWS's "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk (AWS Signature Version 4)" page (Amazon S3 API
// Reference): bucket examplebucket, virtual-hosted style, these example credentials, this date.
constexpr std::string_view kAmzDate = "20130524T000000Z";
constexpr std::string_view kRegion = "us-east-1";
constexpr std::string_view kService = "s3";
constexpr std::string_view kHost = "examplebucket.s3.amazonaws.com";

Credentials ExampleCredentials() {
  return Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "",
                     "test"};
}

std::string ExpectedAuthorization(std::string_view signed_headers, std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
         "SignedHeaders=" +
         std::string(signed_headers) + ", Signature=" + std::string(signature);
}

TEST(SigV4ExampleTest, GetObjectWithRange) {
  // Header names in mixed case and out of order: canonicalization must lower-case and sort.
  SigningRequest req{
      "GET",
      "/test.txt",
      {},
      {{"x-amz-date", std::string(kAmzDate)},
       {"Range", "bytes=0-9"},
       {"Host", std::string(kHost)},
       {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)}},
      std::string(kEmptyPayloadSha256),
  };

  const std::string canonical = CanonicalRequest(req);
  EXPECT_EQ(
      canonical,
      "GET\n"
      "/test.txt\n"
      "\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "range:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(canonical, kAmzDate, kRegion, kService),
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(
      SignV4(req, ExampleCredentials(), kRegion, kService, kAmzDate),
      ExpectedAuthorization("host;range;x-amz-content-sha256;x-amz-date",
                            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
}

TEST(SigV4ExampleTest, PutObject) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string payload_hash = Sha256Hex(body);
  ASSERT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");

  SigningRequest req{
      "PUT",
      "/" + UriEncode("test$file.text", false),
      {},
      {{"Host", std::string(kHost)},
       {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
       {"x-amz-date", std::string(kAmzDate)},
       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
       {"x-amz-content-sha256", payload_hash}},
      payload_hash,
  };

  const std::string canonical = CanonicalRequest(req);
  EXPECT_EQ(
      canonical,
      "PUT\n"
      "/test%24file.text\n"
      "\n"
      "date:Fri, 24 May 2013 00:00:00 GMT\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
      "x-amz-date:20130524T000000Z\n"
      "x-amz-storage-class:REDUCED_REDUNDANCY\n"
      "\n"
      "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(StringToSign(canonical, kAmzDate, kRegion, kService),
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(
      SignV4(req, ExampleCredentials(), kRegion, kService, kAmzDate),
      ExpectedAuthorization("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST(SigV4ExampleTest, GetBucketLifecycle) {
  SigningRequest req{
      "GET",
      "/",
      {{"lifecycle", ""}},
      {{"Host", std::string(kHost)},
       {"x-amz-date", std::string(kAmzDate)},
       {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)}},
      std::string(kEmptyPayloadSha256),
  };

  const std::string canonical = CanonicalRequest(req);
  EXPECT_EQ(
      canonical,
      "GET\n"
      "/\n"
      "lifecycle=\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(canonical, kAmzDate, kRegion, kService),
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(
      SignV4(req, ExampleCredentials(), kRegion, kService, kAmzDate),
      ExpectedAuthorization("host;x-amz-content-sha256;x-amz-date",
                            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

TEST(SigV4ExampleTest, GetBucketListObjects) {
  // Query given out of order: the canonical query sorts by name.
  SigningRequest req{
      "GET",
      "/",
      {{"prefix", "J"}, {"max-keys", "2"}},
      {{"Host", std::string(kHost)},
       {"x-amz-date", std::string(kAmzDate)},
       {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)}},
      std::string(kEmptyPayloadSha256),
  };

  const std::string canonical = CanonicalRequest(req);
  EXPECT_EQ(
      canonical,
      "GET\n"
      "/\n"
      "max-keys=2&prefix=J\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(canonical, kAmzDate, kRegion, kService),
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(
      SignV4(req, ExampleCredentials(), kRegion, kService, kAmzDate),
      ExpectedAuthorization("host;x-amz-content-sha256;x-amz-date",
                            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

TEST(SigV4Test, HeaderValuesTrimmedAndCollapsed) {
  SigningRequest req{"GET", "/", {}, {{"Host", "h"}, {"X-Amz-Meta-Note", "  a   b \t c  "}}, "p"};
  EXPECT_EQ(CanonicalRequest(req),
            "GET\n/\n\nhost:h\nx-amz-meta-note:a b c\n\nhost;x-amz-meta-note\np");
}

TEST(SigV4Test, RepeatedHeaderJoinedWithComma) {
  SigningRequest req{
      "GET", "/", {}, {{"x-amz-meta-a", "1"}, {"host", "h"}, {"X-Amz-Meta-A", "2"}}, "p"};
  EXPECT_EQ(CanonicalRequest(req), "GET\n/\n\nhost:h\nx-amz-meta-a:1,2\n\nhost;x-amz-meta-a\np");
}

TEST(SigV4Test, QueryEncodedThenSortedByNameThenValue) {
  SigningRequest req{"GET",
                     "/",
                     {{"prefix", "a b/c+d"},
                      {"uploads", ""},
                      {"b", "2"},
                      {"b", "1"},
                      {"list-type", "2"},
                      {"%", "x"}},
                     {{"host", "h"}},
                     std::string(kUnsignedPayload)};
  EXPECT_EQ(CanonicalRequest(req),
            "GET\n/\n%25=x&b=1&b=2&list-type=2&prefix=a%20b%2Fc%2Bd&uploads=\nhost:h\n\nhost\n"
            "UNSIGNED-PAYLOAD");
}

TEST(SigV4Test, CanonicalQueryAlone) {
  EXPECT_EQ(CanonicalQuery({}), "");
  EXPECT_EQ(CanonicalQuery({{"prefix", "a b"}, {"delete", ""}, {"b", "2"}, {"b", "1"}}),
            "b=1&b=2&delete=&prefix=a%20b");
}

TEST(SigV4Test, SessionTokenHeaderIsSignedLikeAnyOther) {
  SigningRequest req{"GET",
                     "/test.txt",
                     {},
                     {{"host", std::string(kHost)},
                      {"x-amz-date", std::string(kAmzDate)},
                      {"x-amz-security-token", "token"}},
                     std::string(kUnsignedPayload)};
  const std::string auth = SignV4(req, ExampleCredentials(), kRegion, kService, kAmzDate);
  EXPECT_NE(auth.find("SignedHeaders=host;x-amz-date;x-amz-security-token, "), std::string::npos)
      << auth;
}

TEST(UriEncodeTest, KeepsUnreserved) { EXPECT_EQ(UriEncode("AZaz09-._~", true), "AZaz09-._~"); }

TEST(UriEncodeTest, EncodesEverythingElse) {
  EXPECT_EQ(UriEncode(" ", true), "%20");
  EXPECT_EQ(UriEncode("+", true), "%2B");
  EXPECT_EQ(UriEncode("%", true), "%25");
  EXPECT_EQ(UriEncode("=", true), "%3D");
  EXPECT_EQ(UriEncode("&", true), "%26");
  EXPECT_EQ(UriEncode("$", true), "%24");
  EXPECT_EQ(UriEncode("*", true), "%2A");
  EXPECT_EQ(UriEncode(std::string("\0\xff", 2), true), "%00%FF");
}

TEST(UriEncodeTest, Utf8EncodedBytewiseUpperCase) {
  EXPECT_EQ(UriEncode("\xc3\xa9", true), "%C3%A9");                              // é
  EXPECT_EQ(UriEncode("\xe6\x97\xa5\xe6\x9c\xac", true), "%E6%97%A5%E6%9C%AC");  // 日本
}

TEST(UriEncodeTest, SlashDependsOnFlag) {
  EXPECT_EQ(UriEncode("dir/my file~1.txt", false), "dir/my%20file~1.txt");
  EXPECT_EQ(UriEncode("dir/my file~1.txt", true), "dir%2Fmy%20file~1.txt");
}

TEST(DigestTest, Sha256) { EXPECT_EQ(Sha256Hex(""), kEmptyPayloadSha256); }

TEST(DigestTest, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(DigestTest, Md5) {
  EXPECT_EQ(Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Md5Base64("The quick brown fox jumps over the lazy dog"), "nhB9nTcrtoJr2B01QqQZ1g==");
  EXPECT_EQ(Md5Hex("The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6");
}

TEST(EncodingTest, HexEncode) {
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
}

TEST(EncodingTest, Base64Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(FormatAmzDateTest, Formats) {
  using namespace std::chrono;
  EXPECT_EQ(FormatAmzDate(system_clock::time_point{}), "19700101T000000Z");
  EXPECT_EQ(FormatAmzDate(sys_days{2013y / May / 24}), "20130524T000000Z");
  EXPECT_EQ(FormatAmzDate(sys_days{2024y / February / 29} + 23h + 59min + 59s + 999ms),
            "20240229T235959Z");
  EXPECT_EQ(FormatAmzDate(sys_days{2106y / March / 1} + 1h + 2min + 3s), "21060301T010203Z");
}

}  // namespace
}  // namespace strata
