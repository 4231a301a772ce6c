#include "backends/s3_store.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <vector>

#include "backends/s3_outcome.h"
#include "backends/s3_protocol.h"
#include "base/mutex.h"
#include "base/thread_annotations.h"

namespace strata {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct S3Store::Request {
  std::string method{};  // GET, HEAD, PUT, POST, DELETE
  std::string key{};     // the object; ignored when bucket_level
  bool bucket_level = false;
  Headers query{};    // raw names and values
  Headers headers{};  // lower-case names
  std::string_view body{};
  bool has_body = false;
  // When set, a 2xx response body is written here instead of Response::body.
  std::span<char> body_dest{};
  // The server was asked for at most body_dest.size() bytes (a bounded range): more is a body
  // garbled on the way (transient), not a buffer too small for what was asked.
  bool dest_fits_request = false;
  // Bytes of the bounded range an object GET asked for.
  std::optional<uint64_t> expected_bytes{};
  // An object GET of unknown size (no bounded range): its attempts are not cut at the deadline.
  bool unknown_size = false;
};

struct S3Store::Response {
  long http_status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; last value wins
  std::string body;                            // the body, unless it went to Request::body_dest
  uint64_t body_size = 0;                      // bytes received, wherever they went
};

// Idle curl easy handles. A handle keeps its connection open between requests, so reusing
// handles is what makes connections persistent. Thread-safe.
class S3Store::HandlePool {
 public:
  ~HandlePool() {
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }

  // Returns an idle handle or a new one; nullptr only when curl cannot allocate.
  CURL* Acquire() {
    {
      MutexLock lock(mu_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    return curl_easy_init();
  }

  void Release(CURL* handle) {
    MutexLock lock(mu_);
    idle_.push_back(handle);
  }

  // Borrows a handle, reset but with its connection kept, and returns it on every path.
  class Lease {
   public:
    explicit Lease(HandlePool& pool) : pool_(pool), curl_(pool.Acquire()) {
      if (curl_ != nullptr) curl_easy_reset(curl_);  // keeps the live connection
    }
    ~Lease() {
      if (curl_ != nullptr) pool_.Release(curl_);
    }
    // Closes the handle's connection instead of keeping it: after a transport failure or an
    // error answer it may hold leftovers (an unread body, a half-sent request) that would
    // garble the next exchange on it.
    void Discard() {
      if (curl_ != nullptr) curl_easy_cleanup(curl_);
      curl_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    CURL* get() const { return curl_; }

   private:
    HandlePool& pool_;
    CURL* curl_;
  };

 private:
  Mutex mu_;
  std::vector<CURL*> idle_ GUARDED_BY(mu_);
};

namespace {

constexpr long kReceiveBufferBytes = 2 * 1024 * 1024;  // fewer recv calls; per handle
constexpr long kUploadBufferBytes = 1024 * 1024;
constexpr size_t kMaxBatchDelete = 1000;

std::string Lower(std::string_view in) {
  std::string out(in);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Trim(std::string_view in) {
  while (!in.empty() && std::isspace(static_cast<unsigned char>(in.front()))) in.remove_prefix(1);
  while (!in.empty() && std::isspace(static_cast<unsigned char>(in.back()))) in.remove_suffix(1);
  return std::string(in);
}

// Metadata must travel as HTTP header values: printable ASCII only.
Status AddMetadataHeaders(const Metadata& metadata, Headers& headers) {
  for (const auto& [name, value] : metadata) {
    if (name.empty()) return Status::InvalidArgument("empty metadata name");
    for (unsigned char c : name) {
      if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') {
        return Status::InvalidArgument("metadata name not allowed in an HTTP header: " + name);
      }
    }
    for (unsigned char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return Status::InvalidArgument("metadata value of '" + name + "' must be printable ASCII");
      }
    }
    headers.emplace_back("x-amz-meta-" + Lower(name), value);
  }
  return Status::Ok();
}

Status AddPutHeaders(const PutOptions& options, Headers& headers) {
  headers.emplace_back("content-type",
                       options.content_type.empty() ? "binary/octet-stream" : options.content_type);
  if (!options.if_match.empty()) headers.emplace_back("if-match", options.if_match);
  if (options.if_none_match) headers.emplace_back("if-none-match", "*");
  return AddMetadataHeaders(options.metadata, headers);
}

std::string HeaderValue(const std::map<std::string, std::string>& headers, const char* name) {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

ObjectInfo InfoFromHeaders(std::string_view key, const std::map<std::string, std::string>& h) {
  ObjectInfo info;
  info.key = std::string(key);
  info.size = std::strtoull(HeaderValue(h, "content-length").c_str(), nullptr, 10);
  info.etag = s3::UnquoteEtag(HeaderValue(h, "etag"));
  info.last_modified = s3::ParseHttpDate(HeaderValue(h, "last-modified")).value_or(TimePoint{});
  info.content_type = HeaderValue(h, "content-type");
  constexpr std::string_view kMetaPrefix = "x-amz-meta-";
  for (const auto& [name, value] : h) {
    if (name.rfind(kMetaPrefix, 0) == 0) info.metadata[name.substr(kMetaPrefix.size())] = value;
  }
  return info;
}

// A GET's object info: for a 206 the whole object's size comes from Content-Range.
ObjectInfo InfoFromGet(std::string_view key, const S3Store::Response& response) {
  ObjectInfo info = InfoFromHeaders(key, response.headers);
  const std::string content_range = HeaderValue(response.headers, "content-range");
  const size_t slash = content_range.rfind('/');
  if (response.http_status == 206 && slash != std::string::npos) {
    info.size = std::strtoull(content_range.c_str() + slash + 1, nullptr, 10);
  }
  return info;
}

}  // namespace

// Where a response goes while curl receives it. Callbacks return a short count to abort the
// transfer instead of letting an exception cross into libcurl.
struct S3Store::ResponseSink {
  S3Store::Response* response;
  std::span<char> dest;  // for a 2xx body when not empty
  bool success_status = false;
  bool overflow = false;
};

namespace {

using ResponseSink = S3Store::ResponseSink;

constexpr uint64_t kMaxReserveBytes = 64 << 20;

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  const size_t n = size * count;
  S3Store::Response& response = *sink->response;
  if (!sink->dest.empty() && sink->success_status) {
    if (response.body_size + n > sink->dest.size()) {
      sink->overflow = true;
      return 0;
    }
    std::memcpy(sink->dest.data() + response.body_size, data, n);
  } else {
    try {
      response.body.append(data, n);
    } catch (const std::bad_alloc&) {
      return 0;
    }
  }
  response.body_size += n;
  return n;
}

size_t WriteHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  std::string_view line(data, size * count);
  try {
    if (line.rfind("HTTP/", 0) == 0) {
      // A new response (after 100 Continue, say): "HTTP/1.1 206 Partial Content".
      sink->response->headers.clear();
      const size_t space = line.find(' ');
      const int status = space == std::string_view::npos ? 0 : std::atoi(line.data() + space + 1);
      sink->success_status = status >= 200 && status < 300;
      return line.size();
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return line.size();
    std::string name = Lower(line.substr(0, colon));
    std::string value = Trim(line.substr(colon + 1));
    if (name == "content-length" && (sink->dest.empty() || !sink->success_status)) {
      sink->response->body.reserve(
          std::min<uint64_t>(kMaxReserveBytes, std::strtoull(value.c_str(), nullptr, 10)));
    }
    sink->response->headers[std::move(name)] = std::move(value);
  } catch (const std::bad_alloc&) {
    return 0;
  }
  return line.size();
}

struct BodySource {
  std::string_view data;
  size_t offset = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<BodySource*>(user);
  const size_t n = std::min(size * count, source->data.size() - source->offset);
  std::memcpy(buffer, source->data.data() + source->offset, n);
  source->offset += n;
  return n;
}

// curl rewinds the body when it resends a request by itself (a kept-alive connection that
// turned out closed, a reset while sending): without this it fails with "necessary data rewind
// wasn't possible".
int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* source = static_cast<BodySource*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > source->data.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  source->offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

bool ValidBucketName(std::string_view bucket, bool dns_compatible) {
  if (bucket.empty() || bucket.size() > 255) return false;
  if (dns_compatible && (bucket.size() < 3 || bucket.size() > 63)) return false;
  for (char c : bucket) {
    const bool dns_char = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    const bool legacy_char = (c >= 'A' && c <= 'Z') || c == '_';
    if (!dns_char && (dns_compatible || !legacy_char)) return false;
  }
  return true;
}

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Result<std::unique_ptr<S3Store>> S3Store::Create(S3Options options) {
  GlobalInitOnce();
  std::unique_ptr<S3Store> store(new S3Store(std::move(options)));
  const S3Options& o = store->options_;
  if (o.region.empty()) return Status::InvalidArgument("the region must not be empty");
  std::string endpoint =
      o.endpoint.empty() ? "https://s3." + o.region + ".amazonaws.com" : o.endpoint;
  const size_t scheme_end = endpoint.find("://");
  if (scheme_end == std::string::npos) {
    return Status::InvalidArgument("endpoint must start with http:// or https://: " + endpoint);
  }
  store->scheme_ = Lower(endpoint.substr(0, scheme_end));
  if (store->scheme_ != "http" && store->scheme_ != "https") {
    return Status::InvalidArgument("endpoint must start with http:// or https://: " + endpoint);
  }
  std::string host = endpoint.substr(scheme_end + 3);
  while (!host.empty() && host.back() == '/') host.pop_back();
  if (host.empty() || host.find('/') != std::string::npos || host.find('?') != std::string::npos) {
    return Status::InvalidArgument("endpoint must be scheme://host[:port] without a path: " +
                                   endpoint);
  }
  // Drop a port that is the scheme's default: it is not part of the signed Host header.
  const std::string default_port = store->scheme_ == "https" ? ":443" : ":80";
  if (host.size() > default_port.size() &&
      host.compare(host.size() - default_port.size(), default_port.size(), default_port) == 0) {
    host.resize(host.size() - default_port.size());
  }
  store->path_style_ = o.addressing == AddressingStyle::kPath ||
                       (o.addressing == AddressingStyle::kAuto && !o.endpoint.empty());
  if (!ValidBucketName(o.bucket, !store->path_style_)) {
    return Status::InvalidArgument(
        "invalid bucket name '" + o.bucket + "'" +
        (store->path_style_ ? "" : " (virtual-hosted addressing needs 3-63 of a-z 0-9 . -)"));
  }
  store->endpoint_url_ = store->scheme_ + "://" + host;
  store->host_ = store->path_style_ ? host : o.bucket + "." + host;
  return store;
}

S3Store::S3Store(S3Options options)
    : options_(std::move(options)), pool_(std::make_unique<HandlePool>()) {
  if (options_.clock == nullptr) own_clock_ = std::make_unique<SystemClock>();
  clock_ = options_.clock != nullptr ? options_.clock : own_clock_.get();
}

S3Store::~S3Store() = default;

std::string S3Store::Describe() const {
  return "s3://" + options_.bucket + " at " + endpoint_url_ +
         (path_style_ ? " (path-style)" : " (virtual-hosted)");
}

std::string S3Store::CanonicalPath(std::string_view key) const {
  std::string path;
  if (path_style_) {
    path += '/';
    path += UriEncode(options_.bucket, true);
    if (key.empty()) return path;
  }
  path += '/';
  path += UriEncode(key, false);
  return path;
}

S3Counters S3Store::counters() const {
  return S3Counters{requests_.load(), retries_.load(), connections_opened_.load(),
                    bytes_received_.load(), bytes_sent_.load()};
}

Result<S3Store::Response> S3Store::Execute(const Request& request, const ResponseCheck& check) {
  const bool unsigned_body = request.has_body && options_.unsigned_payload_from > 0 &&
                             request.body.size() >= options_.unsigned_payload_from;
  const std::string payload_hash = !request.has_body ? std::string(kEmptyPayloadSha256)
                                   : unsigned_body   ? std::string(kUnsignedPayload)
                                                     : Sha256Hex(request.body);
  // The operation's deadline (S3Options::request_timeout).
  using std::chrono::milliseconds;
  const bool has_deadline = options_.request_timeout.count() > 0;
  const bool bounded = !request.unknown_size && !request.has_body;
  const uint64_t data_bytes =
      request.has_body ? request.body.size() : request.expected_bytes.value_or(0);
  const milliseconds limit =
      options_.request_timeout +
      milliseconds(data_bytes * 1000 / std::max<uint64_t>(1, options_.min_transfer_rate));
  const Clock::MonoTime deadline = clock_->Now() + limit;
  auto remaining = [&] {
    return std::chrono::duration_cast<milliseconds>(deadline - clock_->Now());
  };
  std::optional<std::mt19937_64> rng;
  for (int attempt = 1;; ++attempt) {
    // At least 1 ms: 0 would mean "no limit" to curl.
    const milliseconds timeout =
        has_deadline && bounded ? std::max(milliseconds(1), remaining()) : milliseconds(0);
    Result<Response> response = ExecuteOnce(request, payload_hash, timeout);
    if (response.ok() && check) {
      // A body that arrived whole by its framing may still be cut or garbled inside.
      if (Status checked = check(*response); !checked.ok()) response = std::move(checked);
    }
    if (response.ok() || !response.status().retryable() || !options_.retry.ShouldRetry(attempt)) {
      return response;
    }
    if (!rng) rng.emplace(std::random_device{}());
    const auto delay = options_.retry.Backoff(attempt, *rng);
    if (has_deadline && remaining() <= delay) {
      spdlog::debug("s3: {} of '{}': no attempt {} within the {} ms deadline", request.method,
                    request.key, attempt + 1, limit.count());
      const Status& last = response.status();
      return Status::Error(last.kind(), last.message() + " (gave up after " +
                                            std::to_string(attempt) + " attempt(s): deadline of " +
                                            std::to_string(limit.count()) + " ms)")
          .WithRemote(last.http_status(), last.code());
    }
    spdlog::debug("s3: {} of '{}' failed ({}); retry {} in {} ms", request.method, request.key,
                  response.status().ToString(), attempt, delay.count());
    retries_.fetch_add(1, std::memory_order_relaxed);
    clock_->SleepFor(delay);
  }
}

template <typename T, typename Parse>
Result<T> S3Store::ExecuteParsed(const Request& request, Parse parse) {
  std::optional<T> out;
  Result<Response> response = Execute(request, [&](Response& r) -> Status {
    STRATA_ASSIGN_OR_RETURN(T parsed, parse(r));
    out = std::move(parsed);
    return Status::Ok();
  });
  if (!response.ok()) return response.status();
  return std::move(*out);
}

Result<S3Store::Response> S3Store::ExecuteOnce(const Request& request,
                                               const std::string& payload_hash,
                                               std::chrono::milliseconds timeout) {
  HandlePool::Lease lease(*pool_);
  CURL* curl = lease.get();
  if (curl == nullptr) return Status::Internal("curl_easy_init failed");

  const std::string path = CanonicalPath(request.bucket_level ? "" : request.key);
  const std::string amz_date = FormatAmzDate(std::chrono::system_clock::now());
  SigningRequest signing;
  signing.method = request.method;
  signing.canonical_uri = path;
  signing.query = request.query;
  signing.headers = request.headers;
  signing.headers.emplace_back("host", host_);
  signing.headers.emplace_back("x-amz-date", amz_date);
  signing.headers.emplace_back("x-amz-content-sha256", payload_hash);
  if (!options_.credentials.session_token.empty()) {
    signing.headers.emplace_back("x-amz-security-token", options_.credentials.session_token);
  }
  signing.payload_hash = payload_hash;
  const std::string authorization =
      SignV4(signing, options_.credentials, options_.region, "s3", amz_date);

  struct curl_slist* header_list = nullptr;
  for (const auto& [name, value] : signing.headers) {
    header_list = curl_slist_append(header_list, (name + ": " + value).c_str());
  }
  header_list = curl_slist_append(header_list, ("Authorization: " + authorization).c_str());
  header_list = curl_slist_append(header_list, "Expect:");  // no 100-continue round trip
  header_list = curl_slist_append(header_list, "Accept:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers_owner(header_list,
                                                                            curl_slist_free_all);

  std::string url = scheme_ + "://" + host_ + path;
  const std::string query = CanonicalQuery(request.query);
  if (!query.empty()) url += "?" + query;

  Response response;
  ResponseSink sink{&response, request.body_dest};
  BodySource body_source{request.body, 0};
  char error_buffer[CURL_ERROR_SIZE] = {0};

  SetCommonOptions(curl, url, error_buffer, sink);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // keys may hold "." and ".." segments
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(options_.low_speed_time.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  // The handle is reused: clear what an earlier request set.
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
  curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBufferBytes);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);

  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(curl, CURLOPT_READDATA, &body_source);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, SeekBody);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &body_source);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method == "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  requests_.fetch_add(1, std::memory_order_relaxed);
  const CURLcode code = curl_easy_perform(curl);
  long connects = 0;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
  connections_opened_.fetch_add(static_cast<uint64_t>(connects), std::memory_order_relaxed);
  bytes_received_.fetch_add(response.body_size, std::memory_order_relaxed);
  bytes_sent_.fetch_add(body_source.offset, std::memory_order_relaxed);
  if (sink.overflow) {
    lease.Discard();
    const std::string what = "response body larger than the " +
                             std::to_string(request.body_dest.size()) + "-byte buffer";
    if (request.dest_fits_request) return s3::GarbledBody(what, "more bytes than asked for");
    return Status::InvalidArgument(what);
  }
  if (code != CURLE_OK) {
    lease.Discard();
    return s3::StatusFromCurl(code, error_buffer, endpoint_url_);
  }

  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.http_status);
  if (response.http_status >= 200 && response.http_status < 300) {
    if (request.method != "HEAD") {
      const std::string length = HeaderValue(response.headers, "content-length");
      if (!length.empty() && std::strtoull(length.c_str(), nullptr, 10) != response.body_size) {
        lease.Discard();
        return Status::Transient("response body of " + std::to_string(response.body_size) +
                                 " bytes, expected " + length)
            .WithRemote(static_cast<int>(response.http_status), "ShortBody");
      }
    }
    return response;
  }
  const int http_status = static_cast<int>(response.http_status);
  if (http_status >= 500) lease.Discard();
  return s3::StatusFromHttpAnswer(http_status, response.body);
}

void S3Store::SetCommonOptions(CURL* curl, const std::string& url, char* error_buffer,
                               ResponseSink& sink) const {
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
}

Result<ObjectInfo> S3Store::Head(std::string_view key) {
  Request request{.method = "HEAD", .key = std::string(key)};
  STRATA_ASSIGN_OR_RETURN(Response response, Execute(request));
  return InfoFromHeaders(key, response.headers);
}

Result<GetResult> S3Store::Get(std::string_view key, const GetOptions& options) {
  STRATA_ASSIGN_OR_RETURN(Response response, GetImpl(key, options, {}));
  GetResult result;
  result.info = InfoFromGet(key, response);
  result.body = std::move(response.body);
  return result;
}

Result<GetIntoResult> S3Store::GetInto(std::string_view key, const GetOptions& options,
                                       std::span<char> dest) {
  if (dest.empty()) return Status::InvalidArgument("GetInto needs a non-empty buffer");
  STRATA_ASSIGN_OR_RETURN(Response response, GetImpl(key, options, dest));
  return GetIntoResult{InfoFromGet(key, response), response.body_size};
}

Result<S3Store::Response> S3Store::GetImpl(std::string_view key, const GetOptions& options,
                                           std::span<char> dest) {
  Request request{.method = "GET", .key = std::string(key), .body_dest = dest};
  request.unknown_size = !(options.range && options.range->length);
  std::optional<uint64_t> expected_length;
  if (options.range) {
    std::string range = "bytes=" + std::to_string(options.range->offset) + "-";
    if (options.range->length) {
      if (*options.range->length == 0) {
        return Status::InvalidArgument("empty range requested for '" + std::string(key) + "'");
      }
      range += std::to_string(options.range->offset + *options.range->length - 1);
      expected_length = options.range->length;
      request.expected_bytes = expected_length;
      request.dest_fits_request = !dest.empty() && *expected_length <= dest.size();
    }
    request.headers.emplace_back("range", range);
  }
  if (!options.if_match.empty()) {
    request.headers.emplace_back("if-match", "\"" + options.if_match + "\"");
  }
  return Execute(request, [&](Response& r) -> Status {
    if (r.http_status == 206) {
      // "bytes 0-9/443": the range must start where asked.
      const std::string content_range = HeaderValue(r.headers, "content-range");
      const size_t space = content_range.find(' ');
      if (space == std::string::npos || content_range.rfind('/') == std::string::npos ||
          std::strtoull(content_range.c_str() + space + 1, nullptr, 10) != options.range->offset) {
        return s3::GarbledBody("server answered range '" + content_range + "' for offset " +
                                   std::to_string(options.range->offset),
                               "wrong range");
      }
    } else if (options.range && options.range->offset != 0) {
      return Status::Internal("server ignored the Range header for '" + std::string(key) + "'");
    }
    if (expected_length && r.body_size > *expected_length) {
      return s3::GarbledBody("server returned more bytes than the range asked for", "too long");
    }
    return Status::Ok();
  });
}

Result<PutResult> S3Store::Put(std::string_view key, std::string_view body,
                               const PutOptions& options) {
  Request request{.method = "PUT", .key = std::string(key), .body = body, .has_body = true};
  STRATA_RETURN_IF_ERROR(AddPutHeaders(options, request.headers));
  STRATA_ASSIGN_OR_RETURN(Response response, Execute(request));
  return PutResult{s3::UnquoteEtag(HeaderValue(response.headers, "etag"))};
}

Result<std::string> S3Store::CreateMultipartUpload(std::string_view key,
                                                   const PutOptions& options) {
  Request request{.method = "POST", .key = std::string(key), .query = {{"uploads", ""}}};
  STRATA_RETURN_IF_ERROR(AddPutHeaders(options, request.headers));
  return ExecuteParsed<std::string>(
      request, [](Response& r) { return s3::ParseInitiateMultipartUpload(r.body); });
}

Result<PartInfo> S3Store::UploadPart(std::string_view key, std::string_view upload_id,
                                     int part_number, std::string_view body) {
  Request request{
      .method = "PUT",
      .key = std::string(key),
      .query = {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}},
      .body = body,
      .has_body = true};
  STRATA_ASSIGN_OR_RETURN(Response response, Execute(request));
  return PartInfo{part_number, s3::UnquoteEtag(HeaderValue(response.headers, "etag")), body.size()};
}

Result<PutResult> S3Store::CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                                   const std::vector<PartInfo>& parts) {
  const std::string body = s3::BuildCompleteMultipartUpload(parts);
  Request request{.method = "POST",
                  .key = std::string(key),
                  .query = {{"uploadId", std::string(upload_id)}},
                  .headers = {{"content-type", "application/xml"}},
                  .body = body,
                  .has_body = true};
  std::string etag;
  Result<Response> response = Execute(request, [&](Response& r) -> Status {
    // HTTP 200 with an <Error> body (InternalError: retried) is possible here.
    STRATA_ASSIGN_OR_RETURN(std::string parsed,
                            s3::ParseEtagResult(r.body, "CompleteMultipartUploadResult"));
    etag = std::move(parsed);
    return Status::Ok();
  });
  if (!response.ok()) return response.status();
  if (!etag.empty()) return PutResult{std::move(etag)};
  // Some servers (radosgw 16) answer <ETag></ETag>: take the header, else ask.
  if (std::string header = s3::UnquoteEtag(HeaderValue(response->headers, "etag"));
      !header.empty()) {
    return PutResult{std::move(header)};
  }
  STRATA_ASSIGN_OR_RETURN(ObjectInfo head, Head(key));
  return PutResult{std::move(head.etag)};
}

Status S3Store::AbortMultipartUpload(std::string_view key, std::string_view upload_id) {
  Request request{
      .method = "DELETE", .key = std::string(key), .query = {{"uploadId", std::string(upload_id)}}};
  return Execute(request).status();
}

Result<std::vector<PartInfo>> S3Store::ListParts(std::string_view key, std::string_view upload_id) {
  std::vector<PartInfo> parts;
  std::string marker;
  for (;;) {
    Request request{
        .method = "GET", .key = std::string(key), .query = {{"uploadId", std::string(upload_id)}}};
    if (!marker.empty()) request.query.emplace_back("part-number-marker", marker);
    STRATA_ASSIGN_OR_RETURN(s3::ListPartsPage page,
                            ExecuteParsed<s3::ListPartsPage>(
                                request, [](Response& r) { return s3::ParseListParts(r.body); }));
    parts.insert(parts.end(), page.parts.begin(), page.parts.end());
    if (!page.truncated) return parts;
    if (page.next_part_number_marker.empty() || page.next_part_number_marker == marker) {
      return Status::Internal("ListParts pagination did not advance");
    }
    marker = page.next_part_number_marker;
  }
}

Result<std::vector<MultipartUpload>> S3Store::ListMultipartUploads(std::string_view prefix) {
  std::vector<MultipartUpload> uploads;
  std::string key_marker;
  std::string upload_id_marker;
  for (;;) {
    Request request{.method = "GET",
                    .bucket_level = true,
                    .query = {{"uploads", ""}, {"encoding-type", "url"}}};
    if (!prefix.empty()) request.query.emplace_back("prefix", std::string(prefix));
    if (!key_marker.empty()) request.query.emplace_back("key-marker", key_marker);
    if (!upload_id_marker.empty()) request.query.emplace_back("upload-id-marker", upload_id_marker);
    STRATA_ASSIGN_OR_RETURN(s3::ListUploadsPage page,
                            ExecuteParsed<s3::ListUploadsPage>(request, [](Response& r) {
                              return s3::ParseListMultipartUploads(r.body);
                            }));
    uploads.insert(uploads.end(), page.uploads.begin(), page.uploads.end());
    if (!page.truncated) return uploads;
    if (page.next_key_marker == key_marker && page.next_upload_id_marker == upload_id_marker) {
      return Status::Internal("ListMultipartUploads pagination did not advance");
    }
    key_marker = page.next_key_marker;
    upload_id_marker = page.next_upload_id_marker;
  }
}

Result<ListPage> S3Store::List(const ListOptions& options) {
  if (options.max_keys <= 0) return Status::InvalidArgument("max_keys must be positive");
  Request request{.method = "GET",
                  .bucket_level = true,
                  .query = {{"list-type", "2"},
                            {"encoding-type", "url"},
                            {"max-keys", std::to_string(options.max_keys)}}};
  if (!options.prefix.empty()) request.query.emplace_back("prefix", options.prefix);
  if (!options.delimiter.empty()) request.query.emplace_back("delimiter", options.delimiter);
  if (!options.continuation_token.empty()) {
    request.query.emplace_back("continuation-token", options.continuation_token);
  }
  if (!options.start_after.empty()) request.query.emplace_back("start-after", options.start_after);
  return ExecuteParsed<ListPage>(request,
                                 [](Response& r) { return s3::ParseListObjectsV2(r.body); });
}

Result<PutResult> S3Store::Copy(std::string_view source_key, std::string_view dest_key,
                                const CopyOptions& options) {
  Request request{.method = "PUT", .key = std::string(dest_key), .has_body = true};
  request.headers.emplace_back("x-amz-copy-source",
                               "/" + options_.bucket + "/" + UriEncode(source_key, false));
  if (!options.if_match.empty()) {
    request.headers.emplace_back("x-amz-copy-source-if-match", "\"" + options.if_match + "\"");
  }
  if (options.directive == MetadataDirective::kReplace) {
    request.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
    request.headers.emplace_back("content-type", options.content_type.empty()
                                                     ? "binary/octet-stream"
                                                     : options.content_type);
    STRATA_RETURN_IF_ERROR(AddMetadataHeaders(options.metadata, request.headers));
  } else {
    request.headers.emplace_back("x-amz-metadata-directive", "COPY");
  }
  STRATA_ASSIGN_OR_RETURN(std::string etag, ExecuteParsed<std::string>(request, [](Response& r) {
                            return s3::ParseEtagResult(r.body, "CopyObjectResult");
                          }));
  return PutResult{std::move(etag)};
}

Status S3Store::Delete(std::string_view key) {
  Request request{.method = "DELETE", .key = std::string(key)};
  Result<Response> response = Execute(request);
  if (!response.ok() && response.status().code() != "NoSuchKey") return response.status();
  return Status::Ok();
}

Result<std::vector<DeleteFailure>> S3Store::DeleteBatch(const std::vector<std::string>& keys) {
  std::vector<DeleteFailure> failures;
  for (size_t start = 0; start < keys.size(); start += kMaxBatchDelete) {
    const size_t end = std::min(keys.size(), start + kMaxBatchDelete);
    const std::string body = s3::BuildDeleteObjects(std::vector<std::string>(
        keys.begin() + static_cast<ptrdiff_t>(start), keys.begin() + static_cast<ptrdiff_t>(end)));
    Request request{
        .method = "POST",
        .bucket_level = true,
        .query = {{"delete", ""}},
        .headers = {{"content-type", "application/xml"}, {"content-md5", Md5Base64(body)}},
        .body = body,
        .has_body = true};
    STRATA_ASSIGN_OR_RETURN(std::vector<DeleteFailure> page,
                            ExecuteParsed<std::vector<DeleteFailure>>(request, [](Response& r) {
                              return s3::ParseDeleteResult(r.body);
                            }));
    failures.insert(failures.end(), page.begin(), page.end());
  }
  return failures;
}

Status S3Store::CreateBucket() {
  std::string body;
  if (options_.region != "us-east-1") {
    body = "<CreateBucketConfiguration><LocationConstraint>" + options_.region +
           "</LocationConstraint></CreateBucketConfiguration>";
  }
  Request request{.method = "PUT", .bucket_level = true, .body = body, .has_body = true};
  Result<Response> response = Execute(request);
  if (!response.ok() && response.status().code() != "BucketAlreadyOwnedByYou") {
    return response.status();
  }
  return Status::Ok();
}

Status S3Store::DeleteBucket() {
  Request request{.method = "DELETE", .bucket_level = true};
  return Execute(request).status();
}

Result<int> S3Store::ProbeEndpoint() {
  HandlePool::Lease lease(*pool_);
  CURL* curl = lease.get();
  if (curl == nullptr) return Status::Internal("curl_easy_init failed");
  Response response;
  ResponseSink sink{&response, {}};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  SetCommonOptions(curl, endpoint_url_ + "/", error_buffer, sink);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()) * 2);
  requests_.fetch_add(1, std::memory_order_relaxed);
  const CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) return s3::StatusFromCurl(code, error_buffer, endpoint_url_);
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  return static_cast<int>(http_status);
}

Result<S3Url> ParseS3Url(std::string_view url) {
  constexpr std::string_view kScheme = "s3://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::InvalidArgument("expected s3://BUCKET[/PREFIX], got '" + std::string(url) + "'");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  S3Url parsed;
  parsed.bucket = std::string(rest.substr(0, slash));
  if (parsed.bucket.empty()) {
    return Status::InvalidArgument("no bucket in '" + std::string(url) +
                                   "': expected s3://BUCKET[/PREFIX]");
  }
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
    parsed.prefix = std::string(prefix);
    if (!parsed.prefix.empty() && parsed.prefix.back() != '/') parsed.prefix += '/';
  }
  return parsed;
}

}  // namespace strata
