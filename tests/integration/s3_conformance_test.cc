// Runs the ObjectStore conformance suite against S3Store on the local S3 server: one bucket for
// the whole run, a fresh prefix per test, the bucket removed at the end.
#include <gtest/gtest.h>

#include "tests/conformance/store_conformance.h"
#include "tests/integration/s3_test_env.h"

namespace strata {
namespace {

// The bucket every conformance test of this process shares. Created on first use.
class SharedBucket : public ::testing::Environment {
 public:
  static SharedBucket* instance;

  S3Store* store() {
    if (!store_) store_ = testing::OpenTestBucket(testing::UniqueBucketName("strata-conf"));
    return store_.get();
  }
  void TearDown() override {
    if (store_) testing::DestroyTestBucket(*store_);
    store_.reset();
  }

 private:
  std::unique_ptr<S3Store> store_;
};

SharedBucket* SharedBucket::instance =
    static_cast<SharedBucket*>(::testing::AddGlobalTestEnvironment(new SharedBucket));

std::unique_ptr<StoreUnderTest> MakeS3Store() {
  if (!testing::TestS3Options("x")) return nullptr;
  S3Store* store = SharedBucket::instance->store();
  if (store == nullptr) return nullptr;
  return StoreUnderTest::Borrowing(*store, UniqueTestPrefix("conformance/"));
}

// The local server is radosgw 16 (tests/s3/rgw.sh), with these known deviations from S3.
constexpr ServerDeviations kRadosgwDeviations{.ignores_copy_source_if_match = true,
                                              .accepts_bad_part_lists = true,
                                              .unknown_upload_id_is_500 = true};

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformanceTest,
                         ::testing::Values(StoreFactory{"S3", MakeS3Store, kRadosgwDeviations}),
                         StoreFactoryName);

}  // namespace
}  // namespace strata
