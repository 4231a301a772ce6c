// S3 wire formats: the XML bodies S3 sends and accepts, its date formats, and the mapping from
// an S3 error (HTTP status + error code) to a Status. Pure functions with no I/O, so every
// parser is unit-tested on captured responses without a server. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/object_store.h"
#include "base/status.h"

namespace strata::s3 {

// The <Error> body of a failed request.
struct ErrorBody {
  std::string code;     // "NoSuchKey"
  std::string message;  // "The specified key does not exist."
};

// Parses an <Error> document; nullopt when `xml` is not one (empty bodies of HEAD, HTML, ...).
std::optional<ErrorBody> ParseError(std::string_view xml);

// Maps an S3 failure to a Status whose kind callers branch on; keeps status and code for logs.
Status StatusFromS3Error(int http_status, std::string_view code, std::string_view message);

// "2009-10-12T17:50:30.000Z" (XML bodies).
std::optional<TimePoint> ParseIso8601(std::string_view text);
// "Wed, 12 Oct 2009 17:50:00 GMT" (Last-Modified header).
std::optional<TimePoint> ParseHttpDate(std::string_view text);

// Percent-decoding of keys sent with encoding-type=url ('+' stays '+').
std::string UrlDecode(std::string_view text);

// Strips one pair of surrounding double quotes from an ETag.
std::string UnquoteEtag(std::string_view etag);

Result<ListPage> ParseListObjectsV2(std::string_view xml);

struct ListPartsPage {
  std::vector<PartInfo> parts;
  bool truncated = false;
  std::string next_part_number_marker;
};
Result<ListPartsPage> ParseListParts(std::string_view xml);

struct ListUploadsPage {
  std::vector<MultipartUpload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
Result<ListUploadsPage> ParseListMultipartUploads(std::string_view xml);

// InitiateMultipartUploadResult -> upload id.
Result<std::string> ParseInitiateMultipartUpload(std::string_view xml);

// CompleteMultipartUploadResult or CopyObjectResult -> ETag. Both requests can answer
// HTTP 200 with an <Error> body; that is returned as the matching error Status.
Result<std::string> ParseEtagResult(std::string_view xml, std::string_view root_element);

// DeleteResult -> the keys that failed.
Result<std::vector<DeleteFailure>> ParseDeleteResult(std::string_view xml);

std::string BuildCompleteMultipartUpload(const std::vector<PartInfo>& parts);
std::string BuildDeleteObjects(const std::vector<std::string>& keys);

}  // namespace strata::s3
