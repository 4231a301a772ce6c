// S3Store: the ObjectStore of one S3 bucket, over libcurl with SigV4 signing.
//
// Thread-safe: any number of threads may call it at once. Each call borrows a curl handle from
// a pool and returns it afterwards, so connections stay open (keep-alive) and are reused by the
// next call instead of opening a TCP connection per request. Transient failures (5xx, 429,
// SlowDown, resets, refused connections, timeouts, short bodies) are retried with capped
// exponential backoff and full jitter (RetryPolicy); other errors return at once. Secrets never
// reach the log.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "backends/object_store.h"
#include "backends/sigv4.h"
#include "base/clock.h"
#include "base/retry.h"

namespace strata {

enum class AddressingStyle {
  kAuto,     // virtual-hosted on AWS (no endpoint given), path-style on a custom endpoint
  kPath,     // http://host/bucket/key
  kVirtual,  // http://bucket.host/key
};

struct S3Options {
  std::string bucket{};
  // "http://127.0.0.1:7480" or "https://s3.example.com:443". Empty: AWS,
  // https://s3.<region>.amazonaws.com.
  std::string endpoint{};
  std::string region = "us-east-1";
  AddressingStyle addressing = AddressingStyle::kAuto;
  Credentials credentials{};
  bool verify_tls = true;
  std::string ca_file{};  // PEM bundle; empty: the system's
  // Bodies of at least this many bytes are sent with x-amz-content-sha256: UNSIGNED-PAYLOAD
  // instead of their SHA-256 (which costs a pass over the body, about 2 ms per MB of CPU). The
  // signature then covers the request but not the body; TLS (or, on loopback, TCP) carries its
  // integrity. 0: always sign the body (the default).
  uint64_t unsigned_payload_from = 0;
  std::chrono::milliseconds connect_timeout{5000};
  // A transfer slower than low_speed_bytes per second for low_speed_time is aborted (and
  // retried as transient).
  long low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{30};
  // Deadline of one operation, all its attempts and backoff sleeps included: request_timeout,
  // plus one second per min_transfer_rate bytes of a body sent or of a bounded range asked for.
  // No attempt starts after it, and the operation then fails with its last error (transient, so
  // that queued uploads retry later). An attempt of a request without a body (metadata, ranged
  // GETs: what readers wait for) is also cut at the deadline (CURLOPT_TIMEOUT_MS); uploads and
  // GETs of unknown size are not cut while they make progress (low_speed_* ends a stalled one),
  // so that a slow link still uploads. 0: no deadline.
  std::chrono::milliseconds request_timeout{30000};
  uint64_t min_transfer_rate = 256 << 10;  // bytes per second; > 0
  RetryPolicy retry{};
  Clock* clock = nullptr;  // for backoff sleeps; nullptr: real time. Must outlive the store.
};

// Counters since the store was created; read them any time.
struct S3Counters {
  uint64_t requests = 0;            // HTTP requests sent, retries included
  uint64_t retries = 0;             // attempts after the first
  uint64_t connections_opened = 0;  // new TCP connections (keep-alive shows as few)
  uint64_t bytes_received = 0;      // response bodies
  uint64_t bytes_sent = 0;          // request bodies
};

class S3Store final : public ObjectStore {
 public:
  // Validates the options (bucket name, endpoint URL). Does not contact the server.
  static Result<std::unique_ptr<S3Store>> Create(S3Options options);
  ~S3Store() override;

  S3Store(const S3Store&) = delete;
  S3Store& operator=(const S3Store&) = delete;

  std::string Describe() const override;

  Result<ObjectInfo> Head(std::string_view key) override;
  Result<GetResult> Get(std::string_view key, const GetOptions& options) override;
  Result<GetIntoResult> GetInto(std::string_view key, const GetOptions& options,
                                std::span<char> dest) override;
  Result<PutResult> Put(std::string_view key, std::string_view body,
                        const PutOptions& options) override;
  Result<std::string> CreateMultipartUpload(std::string_view key,
                                            const PutOptions& options) override;
  Result<PartInfo> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                              std::string_view body) override;
  Result<PutResult> CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                            const std::vector<PartInfo>& parts) override;
  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) override;
  Result<std::vector<PartInfo>> ListParts(std::string_view key,
                                          std::string_view upload_id) override;
  Result<std::vector<MultipartUpload>> ListMultipartUploads(std::string_view prefix) override;
  Result<ListPage> List(const ListOptions& options) override;
  Result<PutResult> Copy(std::string_view source_key, std::string_view dest_key,
                         const CopyOptions& options) override;
  Status Delete(std::string_view key) override;
  Result<std::vector<DeleteFailure>> DeleteBatch(const std::vector<std::string>& keys) override;

  // Bucket administration, for tools and tests (not part of ObjectStore).
  Status CreateBucket();
  Status DeleteBucket();

  // One unsigned GET of the endpoint's root, without retries: any HTTP answer proves the
  // endpoint is reachable. Returns the HTTP status, or a transport error (ConnectFailed, ...).
  Result<int> ProbeEndpoint();

  S3Counters counters() const;
  const S3Options& options() const { return options_; }
  // "http://127.0.0.1:7480"
  const std::string& endpoint_url() const { return endpoint_url_; }

 private:
  struct Request;
  class HandlePool;

 public:
  struct Response;      // public for the curl callbacks in s3_store.cc
  struct ResponseSink;  // likewise

 private:
  explicit S3Store(S3Options options);

  // Checks a 2xx response (parses its body); a transient error means "cut or garbled on the
  // way" and is retried like a transport failure.
  using ResponseCheck = std::function<Status(Response& response)>;

  // Sends `request`, retrying transient failures (and transient `check` failures) per
  // options_.retry. An HTTP status outside 2xx becomes an error Status (s3_outcome.h).
  Result<Response> Execute(const Request& request, const ResponseCheck& check = {});
  // Execute, then `parse(response)` -> Result<T> inside the retry loop.
  template <typename T, typename Parse>
  Result<T> ExecuteParsed(const Request& request, Parse parse);
  Result<Response> GetImpl(std::string_view key, const GetOptions& options, std::span<char> dest);
  // One attempt; `timeout` > 0 cuts it after that long.
  Result<Response> ExecuteOnce(const Request& request, const std::string& payload_hash,
                               std::chrono::milliseconds timeout);

  std::string CanonicalPath(std::string_view key) const;
  // URL, timeouts, TLS and the response callbacks: what every request sets.
  void SetCommonOptions(void* curl, const std::string& url, char* error_buffer,
                        ResponseSink& sink) const;
  std::string HostHeader() const;

  const S3Options options_;
  bool path_style_ = true;
  std::string scheme_;  // "http" or "https"
  std::string host_;    // "127.0.0.1:7480" (port only when not the scheme's default)
  std::string endpoint_url_;
  std::unique_ptr<SystemClock> own_clock_;
  Clock* clock_;
  std::unique_ptr<HandlePool> pool_;

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> connections_opened_{0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_sent_{0};
};

// Parses "s3://bucket" or "s3://bucket/some/prefix" into bucket and prefix (prefix without a
// leading slash, with a trailing one when not empty).
struct S3Url {
  std::string bucket;
  std::string prefix;
};
Result<S3Url> ParseS3Url(std::string_view url);

}  // namespace strata
