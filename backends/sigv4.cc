#include "backends/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

namespace strata {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr char kHexDigitsLower[] = "0123456789abcdef";
constexpr char kHexDigitsUpper[] = "0123456789ABCDEF";

// The hash and HMAC primitives fail only when OpenSSL cannot allocate or the digest is not
// available (MD5 under a FIPS-only provider). Neither is recoverable for a signer, and these
// helpers return plain strings, so stop loudly instead of signing with garbage.
void CheckOpenssl(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "strata: OpenSSL %s failed\n", what);
    std::abort();
  }
}

std::string Digest(const EVP_MD* md, std::string_view data, const char* what) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  CheckOpenssl(
      md != nullptr && EVP_Digest(data.data(), data.size(), out, &out_len, md, nullptr) == 1, what);
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsHeaderSpace(char c) { return c == ' ' || c == '\t'; }

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trims leading and trailing blanks and collapses every inner run of blanks to one space.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsHeaderSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Lower-cased name -> canonical value, sorted by name. Repeated names are joined with ','.
std::map<std::string, std::string> CanonicalHeaderMap(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : headers) {
    auto [it, inserted] = out.try_emplace(LowerAscii(name), CanonicalHeaderValue(value));
    if (!inserted) {
      it->second.push_back(',');
      it->second.append(CanonicalHeaderValue(value));
    }
  }
  return out;
}

std::string SignedHeaderList(const std::map<std::string, std::string>& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    if (!out.empty()) out.push_back(';');
    out.append(name);
  }
  return out;
}

std::string CanonicalRequestFromMap(const SigningRequest& req,
                                    const std::map<std::string, std::string>& headers) {
  std::string out;
  out.append(req.method).push_back('\n');
  out.append(req.canonical_uri).push_back('\n');
  out.append(CanonicalQuery(req.query)).push_back('\n');
  for (const auto& [name, value] : headers) {
    out.append(name).append(":").append(value).push_back('\n');
  }
  out.push_back('\n');
  out.append(SignedHeaderList(headers)).push_back('\n');
  out.append(req.payload_hash);
  return out;
}

// "20130524/us-east-1/s3/aws4_request"
std::string CredentialScope(std::string_view amz_date, std::string_view region,
                            std::string_view service) {
  std::string out(amz_date.substr(0, 8));
  out.append("/").append(region).append("/").append(service).append("/aws4_request");
  return out;
}

std::string SigningKey(std::string_view secret_access_key, std::string_view amz_date,
                       std::string_view region, std::string_view service) {
  std::string secret = "AWS4";
  secret.append(secret_access_key);
  std::string key = HmacSha256(secret, amz_date.substr(0, 8));
  key = HmacSha256(key, region);
  key = HmacSha256(key, service);
  return HmacSha256(key, "aws4_request");
}

}  // namespace

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string UriEncode(std::string_view in, bool encode_slash) {
  std::string out;
  out.reserve(in.size());
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHexDigitsUpper[c >> 4]);
      out.push_back(kHexDigitsUpper[c & 0xf]);
    }
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kHexDigitsLower[c >> 4]);
    out.push_back(kHexDigitsLower[c & 0xf]);
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 0x3f]);
    out.push_back(kAlphabet[(n >> 12) & 0x3f]);
    out.push_back(kAlphabet[(n >> 6) & 0x3f]);
    out.push_back(kAlphabet[n & 0x3f]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 0x3f]);
    out.push_back(kAlphabet[(n >> 12) & 0x3f]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 0x3f] : '=');
    out.push_back('=');
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  return HexEncode(Digest(EVP_sha256(), data, "SHA-256"));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  const unsigned char* mac =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &out_len);
  CheckOpenssl(mac != nullptr, "HMAC-SHA256");
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

std::string Md5Base64(std::string_view data) {
  return Base64Encode(Digest(EVP_md5(), data, "MD5"));
}

std::string Md5Hex(std::string_view data) { return HexEncode(Digest(EVP_md5(), data, "MD5")); }

std::string FormatAmzDate(std::chrono::system_clock::time_point t) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  const auto tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

std::string CanonicalRequest(const SigningRequest& req) {
  return CanonicalRequestFromMap(req, CanonicalHeaderMap(req.headers));
}

std::string StringToSign(std::string_view canonical_request, std::string_view amz_date,
                         std::string_view region, std::string_view service) {
  std::string out(kAlgorithm);
  out.push_back('\n');
  out.append(amz_date).push_back('\n');
  out.append(CredentialScope(amz_date, region, service)).push_back('\n');
  out.append(Sha256Hex(canonical_request));
  return out;
}

std::string SignV4(const SigningRequest& req, const Credentials& creds, std::string_view region,
                   std::string_view service, std::string_view amz_date) {
  const std::map<std::string, std::string> headers = CanonicalHeaderMap(req.headers);
  const std::string string_to_sign =
      StringToSign(CanonicalRequestFromMap(req, headers), amz_date, region, service);
  const std::string signature = HexEncode(
      HmacSha256(SigningKey(creds.secret_access_key, amz_date, region, service), string_to_sign));

  std::string out(kAlgorithm);
  out.append(" Credential=").append(creds.access_key_id).append("/");
  out.append(CredentialScope(amz_date, region, service));
  out.append(", SignedHeaders=").append(SignedHeaderList(headers));
  out.append(", Signature=").append(signature);
  return out;
}

}  // namespace strata
