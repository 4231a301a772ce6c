// S3Store behaviour beyond the shared conformance suite: connection reuse, concurrency, error
// kinds for bad credentials and missing buckets, addressing styles (against the local radosgw),
// and retries of transient failures (against a scripted HTTP server on loopback).
#include "backends/s3_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/s3_test_env.h"
#include "tests/integration/scripted_http_server.h"

namespace strata {
namespace {

using testing::ScriptedHttpServer;
using testing::ScriptedResponse;

class S3StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::TestS3Options("x")) GTEST_SKIP() << "STRATA_TEST_ENDPOINT not set";
    bucket_ = testing::UniqueBucketName("strata-s3");
    store_ = testing::OpenTestBucket(bucket_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    if (store_) testing::DestroyTestBucket(*store_);
  }

  std::unique_ptr<S3Store> StoreWith(void (*tweak)(S3Options&)) {
    S3Options options = *testing::TestS3Options(bucket_);
    tweak(options);
    Result<std::unique_ptr<S3Store>> store = S3Store::Create(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::string bucket_;
  std::unique_ptr<S3Store> store_;
};

TEST_F(S3StoreTest, ReusesOneConnectionForSequentialRequests) {
  const uint64_t before = store_->counters().connections_opened;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(store_->Put("k" + std::to_string(i), "body", {}).ok());
    ASSERT_TRUE(store_->Head("k" + std::to_string(i)).ok());
  }
  const uint64_t opened = store_->counters().connections_opened - before;
  EXPECT_LE(opened, 1u) << "80 sequential requests should share one kept-alive connection";
}

TEST_F(S3StoreTest, ManyThreadsShareTheStore) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        const std::string body = key + std::string(1000 + i, 'x');
        if (!store_->Put(key, body, {}).ok()) failures++;
        Result<GetResult> got = store_->Get(key, {});
        if (!got.ok() || got->body != body) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(store_->counters().connections_opened, static_cast<uint64_t>(kThreads + 1));
}

TEST_F(S3StoreTest, GetIntoWritesIntoTheCallersBuffer) {
  std::string body(300000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7 + i / 251);
  ASSERT_TRUE(store_->Put("big", body, {}).ok());
  std::vector<char> buffer(100000, 'z');
  Result<GetIntoResult> got =
      store_->GetInto("big", {.range = ByteRange{123, 100000}}, std::span<char>(buffer));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->bytes, 100000u);
  EXPECT_EQ(got->info.size, body.size());
  EXPECT_EQ(std::string(buffer.begin(), buffer.end()), body.substr(123, 100000));

  // The tail of the object is shorter than the buffer.
  got = store_->GetInto("big", {.range = ByteRange{250000, 100000}}, std::span<char>(buffer));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->bytes, 50000u);
  EXPECT_EQ(std::string(buffer.data(), 50000), body.substr(250000));

  // A body larger than the buffer is an error, not a silent truncation.
  Result<GetIntoResult> too_big = store_->GetInto("big", {}, std::span<char>(buffer));
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().kind(), ErrorKind::kInvalidArgument);

  // Error bodies are parsed, not written into the buffer.
  Result<GetIntoResult> missing = store_->GetInto("nope", {}, std::span<char>(buffer));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "NoSuchKey");
}

TEST_F(S3StoreTest, UnsignedPayloadIsAcceptedAndStillAuthenticated) {
  auto store = StoreWith([](S3Options& o) { o.unsigned_payload_from = 1; });
  const std::string body(3 << 20, 'u');
  ASSERT_TRUE(store->Put("unsigned", body, {}).ok());
  Result<GetResult> got = store->Get("unsigned", {});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, body);
  auto bad = StoreWith([](S3Options& o) {
    o.unsigned_payload_from = 1;
    o.credentials.secret_access_key = "wrong";
  });
  Result<PutResult> refused = bad->Put("unsigned-bad", body, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().kind(), ErrorKind::kAccessDenied);
}

TEST_F(S3StoreTest, WrongSecretIsSignatureMismatchWithoutRetry) {
  auto bad = StoreWith([](S3Options& o) { o.credentials.secret_access_key = "wrong"; });
  Result<ObjectInfo> head = bad->Head("anything");
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().kind(), ErrorKind::kAccessDenied);
  Result<ListPage> list = bad->List({});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), "SignatureDoesNotMatch");
  EXPECT_EQ(bad->counters().retries, 0u);
}

TEST_F(S3StoreTest, UnknownAccessKey) {
  auto bad = StoreWith([](S3Options& o) { o.credentials.access_key_id = "NOSUCHKEY"; });
  Result<ListPage> list = bad->List({});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(list.status().code(), "InvalidAccessKeyId");
}

TEST_F(S3StoreTest, MissingBucket) {
  auto missing = StoreWith([](S3Options& o) { o.bucket = "strata-no-such-bucket"; });
  Result<ListPage> list = missing->List({});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(list.status().code(), "NoSuchBucket");
}

TEST_F(S3StoreTest, VirtualHostedAddressing) {
  // radosgw runs with "rgw dns name = localhost"; curl resolves *.localhost to loopback.
  auto virtual_store = StoreWith([](S3Options& o) {
    const std::string port = o.endpoint.substr(o.endpoint.rfind(':'));
    o.endpoint = "http://localhost" + port;
    o.addressing = AddressingStyle::kVirtual;
  });
  ASSERT_TRUE(virtual_store->Put("dir/virtual key", "v", {}).ok());
  Result<GetResult> got = store_->Get("dir/virtual key", {});  // read back path-style
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "v");
  Result<ListPage> list = virtual_store->List({.prefix = "dir/"});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects.size(), 1u);
}

TEST_F(S3StoreTest, ClosedPortIsTransientAndRetried) {
  FakeClock clock;
  S3Options options = *testing::TestS3Options(bucket_);
  options.endpoint = "http://127.0.0.1:1";
  options.clock = &clock;
  options.retry.max_attempts = 4;
  auto store = S3Store::Create(options);
  ASSERT_TRUE(store.ok());
  Result<ObjectInfo> head = (*store)->Head("k");
  ASSERT_FALSE(head.ok());
  EXPECT_TRUE(head.status().retryable());
  EXPECT_EQ(head.status().code(), "ConnectFailed");
  EXPECT_EQ((*store)->counters().requests, 4u);
  EXPECT_EQ((*store)->counters().retries, 3u);
}

// ---- Retries against a scripted server ----

std::unique_ptr<S3Store> StoreFor(const ScriptedHttpServer& server, FakeClock& clock,
                                  int max_attempts = 5) {
  S3Options options;
  options.bucket = "bucket";
  options.endpoint = server.endpoint();
  options.credentials = {"AKID", "SECRET", "", "test"};
  options.clock = &clock;
  options.retry.max_attempts = max_attempts;
  return std::move(S3Store::Create(options)).value();
}

ScriptedResponse SlowDown() {
  return {.status = 503,
          .body = "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"};
}

ScriptedResponse Object(std::string body) {
  return {.status = 200, .headers = {{"ETag", "\"abc\""}}, .body = std::move(body)};
}

TEST(S3StoreRetryTest, SlowDownIsRetriedWithBackoff) {
  ScriptedHttpServer server({SlowDown(), SlowDown(), Object("hello")});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<GetResult> got = store->Get("key", {});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "hello");
  EXPECT_EQ(got->info.etag, "abc");
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(store->counters().retries, 2u);
  RetryPolicy policy;
  EXPECT_LE(clock.total_slept(), policy.BackoffCeiling(1) + policy.BackoffCeiling(2));
  // Every attempt is signed afresh.
  for (const std::string& head : server.request_heads()) {
    EXPECT_NE(head.find("Authorization: AWS4-HMAC-SHA256 Credential=AKID/"), std::string::npos);
  }
}

TEST(S3StoreRetryTest, ResetConnectionIsRetried) {
  ScriptedHttpServer server({{.close_without_answer = true}, Object("after reset")});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<GetResult> got = store->Get("key", {});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "after reset");
}

TEST(S3StoreRetryTest, ShortBodyIsNeverReturned) {
  ScriptedResponse cut = Object(std::string(100000, 'a'));
  cut.cut_after = 5000;
  {
    ScriptedHttpServer server({cut});
    FakeClock clock;
    auto store = StoreFor(server, clock, /*max_attempts=*/1);
    Result<GetResult> got = store->Get("key", {});
    ASSERT_FALSE(got.ok());
    EXPECT_TRUE(got.status().retryable());
    EXPECT_EQ(got.status().code(), "ShortBody");
  }
  {
    ScriptedHttpServer server({cut, Object(std::string(100000, 'a'))});
    FakeClock clock;
    auto store = StoreFor(server, clock);
    Result<GetResult> got = store->Get("key", {});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->body.size(), 100000u);
  }
}

TEST(S3StoreRetryTest, GivesUpAfterMaxAttempts) {
  ScriptedHttpServer server({SlowDown(), SlowDown(), SlowDown(), SlowDown()});
  FakeClock clock;
  auto store = StoreFor(server, clock, /*max_attempts=*/3);
  Status st = store->Put("key", "body", {}).status();
  EXPECT_TRUE(st.retryable());
  EXPECT_EQ(st.code(), "SlowDown");
  EXPECT_EQ(server.requests(), 3);
}

// A server that takes requests and never answers: every operation ends at its deadline
// (request_timeout, plus a second per min_transfer_rate bytes), however many attempts it would
// allow. A HEAD is cut at the deadline; an upload is ended by the low-speed limit, and no attempt
// starts after the deadline.
TEST(S3StoreRetryTest, AFrozenServerFailsEachOperationAtItsDeadline) {
  ScriptedHttpServer server(std::vector<ScriptedResponse>(50, {.never_answer = true}));
  S3Options options;
  options.bucket = "bucket";
  options.endpoint = server.endpoint();
  options.credentials = {"AKID", "SECRET", "", "test"};
  options.request_timeout = std::chrono::milliseconds(1000);
  options.min_transfer_rate = 1 << 20;
  options.low_speed_time = std::chrono::seconds(2);
  options.retry.max_attempts = 100;
  auto store = std::move(S3Store::Create(options)).value();
  auto timed = [](auto operation, const std::string& deadline) {
    const auto start = std::chrono::steady_clock::now();
    const Status st = operation();
    const auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "failed after " << seconds << " s: " << st.ToString() << "\n";
    EXPECT_FALSE(st.ok());
    EXPECT_TRUE(st.retryable()) << "queued uploads retry it later";
    EXPECT_EQ(st.code(), "Timeout");
    EXPECT_NE(st.message().find("deadline of " + deadline + " ms"), std::string::npos)
        << st.message();
    EXPECT_LT(seconds, 30) << "a hang, not a deadline";
  };
  timed([&] { return store->Head("key").status(); }, "1000");
  const std::string body(2 << 20, 'b');  // two more seconds for 2 MiB
  timed([&] { return store->Put("key", body, {}).status(); }, "3000");
}

TEST(S3StoreRetryTest, PermanentErrorsAreNotRetried) {
  ScriptedHttpServer server(
      {{.status = 404, .body = "<Error><Code>NoSuchKey</Code><Message>none</Message></Error>"}});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<GetResult> got = store->Get("key", {});
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().IsNotFound());
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(clock.total_slept(), Clock::Duration(0));
}

TEST(S3StoreRetryTest, KeepsOneConnectionAcrossRequests) {
  ScriptedHttpServer server({Object("1"), Object("2"), Object("3")});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->Get("k", {}).ok());
  EXPECT_EQ(server.connections(), 1);
}

TEST(S3StoreRetryTest, KeysAreEncodedOnceInThePath) {
  ScriptedHttpServer server({Object("x")});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  ASSERT_TRUE(store->Get("a b/+%=&?#/../ü", {}).ok());
  const std::string head = server.request_heads().at(0);
  EXPECT_EQ(head.substr(0, head.find("\r\n")),
            "GET /bucket/a%20b/%2B%25%3D%26%3F%23/../%C3%BC HTTP/1.1");
}

ScriptedResponse ListBody(std::string keys_xml) {
  return {.status = 200,
          .headers = {{"Content-Type", "application/xml"}},
          .body =
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><IsTruncated>false"
              "</IsTruncated>" +
              keys_xml + "</ListBucketResult>"};
}

const char* kTwoKeys =
    "<Contents><Key>a</Key><Size>1</Size></Contents><Contents><Key>b</Key><Size>2</Size>"
    "</Contents>";

TEST(S3StoreRetryTest, ResetWhileSendingTheBodyIsTransientAndTheBodyIsSentAgain) {
  const std::string body(256 * 1024, 'x');
  {
    ScriptedHttpServer server(
        std::vector<ScriptedResponse>{ScriptedResponse{.reset_after_request_bytes = 1000}});
    FakeClock clock;
    auto store = StoreFor(server, clock, /*max_attempts=*/1);
    Status st = store->Put("key", body, {}).status();
    EXPECT_TRUE(st.retryable()) << st.ToString();
  }
  ScriptedHttpServer server(
      {{.reset_after_request_bytes = 1000}, {.status = 200, .headers = {{"ETag", "\"e\""}}}});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<PutResult> put = store->Put("key", body, {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, "e");
  EXPECT_EQ(server.requests(), 2);
}

TEST(S3StoreRetryTest, PutAfterTheServerClosedAKeptAliveConnection) {
  // The connection curl keeps is closed by the server after the first answer: the next
  // request with a body must go out whole on a new connection.
  ScriptedResponse closing = Object("1");
  closing.close_after_answer = true;
  ScriptedHttpServer server(
      {closing, {.status = 200, .headers = {{"ETag", "\"e\""}}}, Object("2")});
  FakeClock clock;
  auto store = StoreFor(server, clock, /*max_attempts=*/1);
  ASSERT_TRUE(store->Get("k", {}).ok());
  Result<PutResult> put = store->Put("key", std::string(1 << 20, 'y'), {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(store->Get("k", {}).ok());
}

TEST(S3StoreRetryTest, TruncatedChunkedListIsRetried) {
  ScriptedResponse cut = ListBody(kTwoKeys);
  cut.chunked = true;
  cut.cut_after = 60;
  {
    ScriptedHttpServer server({cut});
    FakeClock clock;
    auto store = StoreFor(server, clock, /*max_attempts=*/1);
    Status st = store->List(ListOptions{}).status();
    EXPECT_TRUE(st.retryable()) << st.ToString();
  }
  ScriptedResponse whole = ListBody(kTwoKeys);
  whole.chunked = true;
  ScriptedHttpServer server({cut, whole});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<ListPage> page = store->List(ListOptions{});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(server.requests(), 2);
}

TEST(S3StoreRetryTest, GarbledListBodyIsRetried) {
  ScriptedResponse garbled = ListBody(kTwoKeys);
  garbled.body.replace(garbled.body.size() / 2, 8, "<<<<\x01\x02>>");
  ScriptedHttpServer server({garbled, ListBody(kTwoKeys)});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<ListPage> page = store->List(ListOptions{});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(server.requests(), 2);
}

TEST(S3StoreRetryTest, ServerErrorsToHeadAreRetried) {
  // A HEAD answer has no body: only the status says what happened.
  ScriptedHttpServer server(
      {{.status = 503},
       {.status = 500},
       {.status = 200,
        .headers = {{"ETag", "\"abc\""}, {"Last-Modified", "Wed, 12 Oct 2009 17:50:00 GMT"}},
        .body = "0123456789"}});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<ObjectInfo> info = store->Head("key");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 10u);
  EXPECT_EQ(server.requests(), 3);
}

TEST(S3StoreRetryTest, ServerErrorWithAnUnreadableBodyIsRetried) {
  ScriptedHttpServer server({{.status = 502, .body = "<html>bad gateway</html>"},
                             {.status = 500, .body = "<Err"},
                             Object("ok")});
  FakeClock clock;
  auto store = StoreFor(server, clock);
  Result<GetResult> got = store->Get("key", {});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "ok");
}

}  // namespace
}  // namespace strata
