#include "backends/s3_protocol.h"

#include <gtest/gtest.h>

namespace strata::s3 {
namespace {

TEST(S3ProtocolTest, ErrorCodesMapToKinds) {
  EXPECT_EQ(StatusFromS3Error(404, "NoSuchKey", "").kind(), ErrorKind::kNotFound);
  EXPECT_EQ(StatusFromS3Error(404, "NoSuchBucket", "").kind(), ErrorKind::kNotFound);
  EXPECT_EQ(StatusFromS3Error(403, "SignatureDoesNotMatch", "").kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(StatusFromS3Error(403, "InvalidAccessKeyId", "").kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(StatusFromS3Error(412, "PreconditionFailed", "").kind(),
            ErrorKind::kPreconditionFailed);
  EXPECT_EQ(StatusFromS3Error(416, "InvalidRange", "").kind(), ErrorKind::kInvalidArgument);
  for (const char* code : {"SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable"}) {
    Status st = StatusFromS3Error(503, code, "");
    EXPECT_TRUE(st.retryable()) << code;
    EXPECT_EQ(st.code(), code);
  }
  // HEAD answers have no body: the status decides.
  EXPECT_EQ(StatusFromS3Error(404, "", "").kind(), ErrorKind::kNotFound);
  EXPECT_EQ(StatusFromS3Error(403, "", "").kind(), ErrorKind::kAccessDenied);
  EXPECT_TRUE(StatusFromS3Error(500, "", "").retryable());
  EXPECT_TRUE(StatusFromS3Error(429, "", "").retryable());
  EXPECT_FALSE(StatusFromS3Error(400, "", "").retryable());
}

TEST(S3ProtocolTest, ParsesErrorBody) {
  auto error =
      ParseError(R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>)"
                 R"(<Message>The resource you requested does not exist</Message></Error>)");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "NoSuchKey");
  EXPECT_EQ(error->message, "The resource you requested does not exist");
  EXPECT_FALSE(ParseError("").has_value());
  EXPECT_FALSE(ParseError("<html>bad gateway</html>").has_value());
}

TEST(S3ProtocolTest, ParsesListObjectsV2WithUrlEncoding) {
  const char* xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix>dir%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>2</MaxKeys>
  <Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>dir/a%20b%2Bc.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>dir/%C3%BC</Key><LastModified>2009-10-12T17:50:31.500Z</LastModified>
    <ETag>"0123-2"</ETag><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>dir/sub%20dir/</Prefix></CommonPrefixes>
</ListBucketResult>)";
  Result<ListPage> page = ParseListObjectsV2(xml);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "dir/a b+c.txt");
  EXPECT_EQ(page->objects[0].etag, "fba9dede5f27731c9771645a39863328");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(page->objects[0].last_modified), 1255369830);
  EXPECT_EQ(page->objects[1].key, "dir/\xC3\xBC");
  EXPECT_EQ(page->objects[1].etag, "0123-2");
  EXPECT_EQ(page->objects[1].last_modified - page->objects[0].last_modified,
            std::chrono::milliseconds(1500));
  ASSERT_EQ(page->common_prefixes.size(), 1u);
  EXPECT_EQ(page->common_prefixes[0], "dir/sub dir/");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3ProtocolTest, ListWithoutEncodingKeepsPercent) {
  Result<ListPage> page = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "<Contents><Key>100%25</Key><Size>1</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->objects[0].key, "100%25");
}

TEST(S3ProtocolTest, TruncatedListingNeedsToken) {
  EXPECT_FALSE(
      ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
          .ok());
}

TEST(S3ProtocolTest, MalformedXmlIsATransientError) {
  // A body cut short (a truncated chunked LIST) or garbled on the way: asking again can help.
  Result<ListPage> page = ParseListObjectsV2("<ListBucketResult><Contents>");
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().kind(), ErrorKind::kTransient);
  EXPECT_EQ(page.status().code(), "GarbledBody");
}

TEST(S3ProtocolTest, ErrorInsideHttp200IsReported) {
  // CompleteMultipartUpload and CopyObject may fail after sending 200 OK.
  Result<std::string> etag = ParseEtagResult(
      "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
      "</Error>",
      "CompleteMultipartUploadResult");
  ASSERT_FALSE(etag.ok());
  EXPECT_TRUE(etag.status().retryable());
  Result<std::string> good = ParseEtagResult(
      "<CopyObjectResult><LastModified>2009-10-28T22:32:00Z</LastModified>"
      "<ETag>\"9b2cf535f27731c974343645a3985328\"</ETag></CopyObjectResult>",
      "CopyObjectResult");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "9b2cf535f27731c974343645a3985328");
}

TEST(S3ProtocolTest, MultipartDocuments) {
  Result<std::string> id = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "VXBsb2FkIElE");

  Result<ListPartsPage> parts = ParseListParts(
      "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2"
      "</NextPartNumberMarker><Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag>"
      "<Size>5242880</Size></Part><Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag>"
      "<Size>7</Size></Part></ListPartsResult>");
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->parts.size(), 2u);
  EXPECT_EQ(parts->parts[1].part_number, 2);
  EXPECT_EQ(parts->parts[1].etag, "bb");
  EXPECT_EQ(parts->parts[0].size, 5242880u);
  EXPECT_EQ(parts->next_part_number_marker, "2");

  Result<ListUploadsPage> uploads = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><EncodingType>url</EncodingType><IsTruncated>false"
      "</IsTruncated><Upload><Key>a%20b</Key><UploadId>u1</UploadId>"
      "<Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload></ListMultipartUploadsResult>");
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->uploads.size(), 1u);
  EXPECT_EQ(uploads->uploads[0].key, "a b");
  EXPECT_EQ(uploads->uploads[0].upload_id, "u1");

  EXPECT_EQ(BuildCompleteMultipartUpload({{1, "aa", 0}, {2, "bb", 0}}),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag></Part>"
            "</CompleteMultipartUpload>");
}

TEST(S3ProtocolTest, DeleteDocuments) {
  EXPECT_EQ(BuildDeleteObjects({"a&b", "<c>"}),
            "<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object>"
            "<Object><Key>&lt;c&gt;</Key></Object></Delete>");
  Result<std::vector<DeleteFailure>> failures = ParseDeleteResult(
      "<DeleteResult><Error><Key>x</Key><Code>AccessDenied</Code><Message>no</Message>"
      "</Error></DeleteResult>");
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->size(), 1u);
  EXPECT_EQ((*failures)[0].key, "x");
  EXPECT_EQ((*failures)[0].status.kind(), ErrorKind::kAccessDenied);
}

TEST(S3ProtocolTest, Dates) {
  auto http = ParseHttpDate("Wed, 12 Oct 2009 17:50:00 GMT");
  ASSERT_TRUE(http.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*http), 1255369800);
  EXPECT_FALSE(ParseHttpDate("yesterday").has_value());
  EXPECT_FALSE(ParseIso8601("2009-10").has_value());
}

TEST(S3ProtocolTest, UrlDecodeAndEtag) {
  EXPECT_EQ(UrlDecode("a%20b%2fc+d%"), "a b/c+d%");
  EXPECT_EQ(UrlDecode("%zz"), "%zz");
  EXPECT_EQ(UnquoteEtag("\"abc\""), "abc");
  EXPECT_EQ(UnquoteEtag("abc"), "abc");
}

}  // namespace
}  // namespace strata::s3
