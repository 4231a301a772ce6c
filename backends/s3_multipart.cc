#include "backends/s3_multipart.h"

#include "backends/sigv4.h"

namespace strata {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view StripQuotes(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    return etag.substr(1, etag.size() - 2);
  }
  return etag;
}

}  // namespace

bool EtagMatches(std::string_view wanted, std::string_view current) {
  return StripQuotes(wanted) == StripQuotes(current);
}

std::string MultipartEtag(const std::vector<PartInfo>& parts) {
  std::string digests;
  for (const PartInfo& part : parts) {
    std::string_view hex = StripQuotes(part.etag);
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      digests.push_back(static_cast<char>(HexValue(hex[i]) * 16 + HexValue(hex[i + 1])));
    }
  }
  return Md5Hex(digests) + "-" + std::to_string(parts.size());
}

}  // namespace strata
