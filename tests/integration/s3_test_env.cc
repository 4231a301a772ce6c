#include "tests/integration/s3_test_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

namespace strata::testing {

std::optional<S3Options> TestS3Options(const std::string& bucket) {
  const char* endpoint = std::getenv("STRATA_TEST_ENDPOINT");
  if (endpoint == nullptr || *endpoint == '\0') return std::nullopt;
  const char* key = std::getenv("STRATA_TEST_ACCESS_KEY");
  const char* secret = std::getenv("STRATA_TEST_SECRET_KEY");
  S3Options options;
  options.bucket = bucket;
  options.endpoint = endpoint;
  options.addressing = AddressingStyle::kPath;
  options.credentials.access_key_id = key != nullptr ? key : "";
  options.credentials.secret_access_key = secret != nullptr ? secret : "";
  options.credentials.source = "test environment";
  return options;
}

std::string UniqueBucketName(const std::string& stem) {
  std::random_device device;
  std::string suffix;
  for (int i = 0; i < 6; ++i) suffix += "0123456789abcdef"[device() % 16];
  return stem + "-" + std::to_string(getpid()) + "-" + suffix;
}

std::unique_ptr<S3Store> OpenTestBucket(const std::string& bucket) {
  std::optional<S3Options> options = TestS3Options(bucket);
  if (!options) return nullptr;
  Result<std::unique_ptr<S3Store>> store = S3Store::Create(*options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  Status created = (*store)->CreateBucket();
  EXPECT_TRUE(created.ok()) << created.ToString();
  return std::move(store).value();
}

void DestroyTestBucket(S3Store& store) {
  for (;;) {
    Result<ListPage> page = store.List(ListOptions{});
    if (!page.ok() || page->objects.empty()) break;
    std::vector<std::string> keys;
    for (const ObjectInfo& o : page->objects) keys.push_back(o.key);
    if (!store.DeleteBatch(keys).ok()) break;
  }
  if (auto uploads = store.ListMultipartUploads(""); uploads.ok()) {
    for (const MultipartUpload& u : *uploads) {
      IgnoreError(store.AbortMultipartUpload(u.key, u.upload_id), "test cleanup");
    }
  }
  IgnoreError(store.DeleteBucket(), "test cleanup");
}

}  // namespace strata::testing
