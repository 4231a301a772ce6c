#include "backends/s3_protocol.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <pugixml.hpp>

namespace strata::s3 {
namespace {

// Parses a whole document; the root element is the first child.
Result<pugi::xml_node> ParseDocument(pugi::xml_document& doc, std::string_view xml) {
  pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
  if (!parsed) {
    // A body cut short or garbled on the way: asking again can help.
    return Status::Transient(std::string("malformed XML from server: ") + parsed.description())
        .WithRemote(0, "GarbledBody");
  }
  return doc.document_element();
}

// When the root is an <Error>, the Status it describes; otherwise OK.
Status ErrorRootStatus(pugi::xml_node root, int http_status) {
  if (std::strcmp(root.name(), "Error") != 0) return Status::Ok();
  return StatusFromS3Error(http_status, root.child_value("Code"), root.child_value("Message"));
}

Result<pugi::xml_node> ExpectRoot(pugi::xml_document& doc, std::string_view xml,
                                  std::string_view root_name) {
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root, ParseDocument(doc, xml));
  STRATA_RETURN_IF_ERROR(ErrorRootStatus(root, 200));
  if (root.name() != root_name) {
    return Status::Internal("unexpected XML from server: <" + std::string(root.name()) +
                            "> instead of <" + std::string(root_name) + ">");
  }
  return root;
}

bool IsTrue(const char* text) { return std::strcmp(text, "true") == 0; }

uint64_t ToU64(const char* text) { return std::strtoull(text, nullptr, 10); }

std::string XmlText(pugi::xml_node node, const char* child, bool url_encoded) {
  std::string_view value = node.child_value(child);
  return url_encoded ? UrlDecode(value) : std::string(value);
}

std::string Serialize(const pugi::xml_document& doc) {
  struct StringWriter : pugi::xml_writer {
    std::string out;
    void write(const void* data, size_t size) override {
      out.append(static_cast<const char*>(data), size);
    }
  } writer;
  doc.save(writer, "", pugi::format_raw | pugi::format_no_declaration);
  return std::move(writer.out);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<ErrorBody> ParseError(std::string_view xml) {
  if (xml.empty()) return std::nullopt;
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return std::nullopt;
  pugi::xml_node root = doc.document_element();
  if (std::strcmp(root.name(), "Error") != 0) return std::nullopt;
  return ErrorBody{root.child_value("Code"), root.child_value("Message")};
}

Status StatusFromS3Error(int http_status, std::string_view code, std::string_view message) {
  std::string msg(message);
  auto make = [&](ErrorKind kind) {
    return Status::Error(kind, msg).WithRemote(http_status, std::string(code));
  };
  static constexpr std::string_view kNotFound[] = {"NoSuchKey", "NoSuchBucket", "NoSuchUpload",
                                                   "NotFound"};
  static constexpr std::string_view kDenied[] = {
      "AccessDenied",   "SignatureDoesNotMatch", "InvalidAccessKeyId",   "ExpiredToken",
      "InvalidToken",   "AllAccessDisabled",     "RequestTimeTooSkewed", "InvalidSecurity",
      "AccountProblem", "UserSuspended"};
  static constexpr std::string_view kTransient[] = {
      "SlowDown",        "InternalError",        "ServiceUnavailable",
      "RequestTimeout",  "Throttling",           "ThrottlingException",
      "TooManyRequests", "RequestLimitExceeded", "OperationAborted"};
  static constexpr std::string_view kInvalid[] = {
      "InvalidRange",   "InvalidArgument", "InvalidPart",      "InvalidPartOrder",
      "EntityTooSmall", "EntityTooLarge",  "KeyTooLongError",  "InvalidBucketName",
      "MalformedXML",   "InvalidRequest",  "MetadataTooLarge", "InvalidDigest",
      "BadDigest",      "InvalidURI"};
  for (auto c : kNotFound)
    if (code == c) return make(ErrorKind::kNotFound);
  for (auto c : kDenied)
    if (code == c) return make(ErrorKind::kAccessDenied);
  for (auto c : kTransient)
    if (code == c) return make(ErrorKind::kTransient);
  for (auto c : kInvalid)
    if (code == c) return make(ErrorKind::kInvalidArgument);
  if (code == "PreconditionFailed") return make(ErrorKind::kPreconditionFailed);
  if (code == "NotImplemented") return make(ErrorKind::kNotSupported);
  // Unknown or absent code (HEAD responses have no body): decide by status.
  if (http_status == 404) return make(ErrorKind::kNotFound);
  if (http_status == 401 || http_status == 403) return make(ErrorKind::kAccessDenied);
  if (http_status == 412) return make(ErrorKind::kPreconditionFailed);
  if (http_status == 501) return make(ErrorKind::kNotSupported);
  if (http_status == 408 || http_status == 429 || http_status >= 500) {
    return make(ErrorKind::kTransient);
  }
  if (http_status == 400 || http_status == 416) return make(ErrorKind::kInvalidArgument);
  return make(ErrorKind::kInternal);
}

std::optional<TimePoint> ParseIso8601(std::string_view text) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0;
  double seconds = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%lf", &year, &month, &day, &hour, &minute, &seconds) !=
      6) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = 0;
  const time_t whole = timegm(&tm);
  if (whole == static_cast<time_t>(-1)) return std::nullopt;
  auto since_epoch =
      std::chrono::seconds(whole) +
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(seconds));
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(since_epoch));
}

std::optional<TimePoint> ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  const time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::string UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::string UnquoteEtag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

Result<ListPage> ParseListObjectsV2(std::string_view xml) {
  pugi::xml_document doc;
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root, ExpectRoot(doc, xml, "ListBucketResult"));
  const bool encoded = std::strcmp(root.child_value("EncodingType"), "url") == 0;
  ListPage page;
  for (pugi::xml_node c : root.children("Contents")) {
    ObjectInfo info;
    info.key = XmlText(c, "Key", encoded);
    info.size = ToU64(c.child_value("Size"));
    info.etag = UnquoteEtag(c.child_value("ETag"));
    info.last_modified = ParseIso8601(c.child_value("LastModified")).value_or(TimePoint{});
    page.objects.push_back(std::move(info));
  }
  for (pugi::xml_node p : root.children("CommonPrefixes")) {
    page.common_prefixes.push_back(XmlText(p, "Prefix", encoded));
  }
  page.truncated = IsTrue(root.child_value("IsTruncated"));
  page.next_continuation_token = root.child_value("NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return Status::Internal("truncated listing without NextContinuationToken");
  }
  return page;
}

Result<ListPartsPage> ParseListParts(std::string_view xml) {
  pugi::xml_document doc;
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root, ExpectRoot(doc, xml, "ListPartsResult"));
  ListPartsPage page;
  for (pugi::xml_node p : root.children("Part")) {
    PartInfo part;
    part.part_number = std::atoi(p.child_value("PartNumber"));
    part.etag = UnquoteEtag(p.child_value("ETag"));
    part.size = ToU64(p.child_value("Size"));
    page.parts.push_back(std::move(part));
  }
  page.truncated = IsTrue(root.child_value("IsTruncated"));
  page.next_part_number_marker = root.child_value("NextPartNumberMarker");
  return page;
}

Result<ListUploadsPage> ParseListMultipartUploads(std::string_view xml) {
  pugi::xml_document doc;
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root, ExpectRoot(doc, xml, "ListMultipartUploadsResult"));
  const bool encoded = std::strcmp(root.child_value("EncodingType"), "url") == 0;
  ListUploadsPage page;
  for (pugi::xml_node u : root.children("Upload")) {
    MultipartUpload upload;
    upload.key = XmlText(u, "Key", encoded);
    upload.upload_id = u.child_value("UploadId");
    upload.initiated = ParseIso8601(u.child_value("Initiated")).value_or(TimePoint{});
    page.uploads.push_back(std::move(upload));
  }
  page.truncated = IsTrue(root.child_value("IsTruncated"));
  page.next_key_marker = XmlText(root, "NextKeyMarker", encoded);
  page.next_upload_id_marker = root.child_value("NextUploadIdMarker");
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view xml) {
  pugi::xml_document doc;
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root,
                          ExpectRoot(doc, xml, "InitiateMultipartUploadResult"));
  std::string id = root.child_value("UploadId");
  if (id.empty()) return Status::Internal("InitiateMultipartUploadResult without UploadId");
  return id;
}

Result<std::string> ParseEtagResult(std::string_view xml, std::string_view root_element) {
  pugi::xml_document doc;
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root, ExpectRoot(doc, xml, root_element));
  return UnquoteEtag(root.child_value("ETag"));
}

Result<std::vector<DeleteFailure>> ParseDeleteResult(std::string_view xml) {
  pugi::xml_document doc;
  STRATA_ASSIGN_OR_RETURN(pugi::xml_node root, ExpectRoot(doc, xml, "DeleteResult"));
  std::vector<DeleteFailure> failures;
  for (pugi::xml_node e : root.children("Error")) {
    failures.push_back(
        DeleteFailure{e.child_value("Key"),
                      StatusFromS3Error(200, e.child_value("Code"), e.child_value("Message"))});
  }
  return failures;
}

std::string BuildCompleteMultipartUpload(const std::vector<PartInfo>& parts) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  for (const PartInfo& part : parts) {
    pugi::xml_node p = root.append_child("Part");
    p.append_child("PartNumber").text().set(part.part_number);
    p.append_child("ETag").text().set(("\"" + part.etag + "\"").c_str());
  }
  return Serialize(doc);
}

std::string BuildDeleteObjects(const std::vector<std::string>& keys) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("Delete");
  root.append_child("Quiet").text().set("true");
  for (const std::string& key : keys) {
    root.append_child("Object").append_child("Key").text().set(key.c_str());
  }
  return Serialize(doc);
}

}  // namespace strata::s3
