// The ObjectStore conformance suite: one set of value-parameterized tests (StoreConformanceTest)
// that every store must pass, so MemoryStore, LocalStore and S3Store are held to the same S3
// semantics. store_conformance.cc holds the TEST_Ps; each test binary compiles it in and
// instantiates the suite for its stores:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Memory, StoreConformanceTest,
//       ::testing::Values(StoreFactory{"Memory", [] {
//         return StoreUnderTest::Owning(std::make_unique<MemoryStore>(),
//                                       UniqueTestPrefix("conformance/"));
//       }}),
//       StoreFactoryName);
//
// Every test uses only keys under its StoreUnderTest's prefix and removes what it wrote
// (objects and multipart uploads under the prefix) in TearDown, so one bucket can be shared by
// many tests and runs. Factories are called once per test, on the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "backends/object_store.h"

namespace strata {

// A store and the key prefix one test owns.
class StoreUnderTest {
 public:
  // Owns `store`. `teardown`, when set, runs after the store is destroyed (e.g. to remove the
  // directory a LocalStore lived in, or to free what `store` borrowed).
  static std::unique_ptr<StoreUnderTest> Owning(std::unique_ptr<ObjectStore> store,
                                                std::string prefix,
                                                std::function<void()> teardown = nullptr);
  // Borrows `store`, which must outlive the returned object.
  static std::unique_ptr<StoreUnderTest> Borrowing(ObjectStore& store, std::string prefix);

  ~StoreUnderTest();
  StoreUnderTest(const StoreUnderTest&) = delete;
  StoreUnderTest& operator=(const StoreUnderTest&) = delete;

  ObjectStore& store() const { return *store_; }
  // Every key a test uses starts with this; it ends with "/".
  const std::string& prefix() const { return prefix_; }

 private:
  StoreUnderTest(std::unique_ptr<ObjectStore> owned, ObjectStore* store, std::string prefix,
                 std::function<void()> teardown);

  std::unique_ptr<ObjectStore> owned_;
  ObjectStore* store_;
  std::string prefix_;
  std::function<void()> teardown_;
};

// The suite's parameter: how to make a fresh StoreUnderTest for one test.
// Known deviations of real servers from S3 that the suite must not count against our code.
// Each skips the affected checks with the reason printed.
struct ServerDeviations {
  bool ignores_copy_source_if_match = false;  // radosgw 16: copies regardless
  bool accepts_bad_part_lists = false;        // radosgw 16: out-of-order or unknown parts
  bool unknown_upload_id_is_500 = false;      // radosgw 16: InternalError "already in progress"
};

struct StoreFactory {
  std::string name;  // used in test names: letters, digits and '_' only
  std::function<std::unique_ptr<StoreUnderTest>()> make;
  ServerDeviations deviations{};
};

void PrintTo(const StoreFactory& factory, std::ostream* os);

// Name generator for INSTANTIATE_TEST_SUITE_P: the factory's name.
std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info);

// A prefix no other test or run uses: `root`, the current test's name, a random tag and "/".
// Call it from a factory (it reads the running test's name).
std::string UniqueTestPrefix(std::string_view root);

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  // Removes every object and multipart upload under the prefix, then the store.
  void TearDown() override;

  ObjectStore& store() { return sut_->store(); }
  const std::string& prefix() const { return sut_->prefix(); }
  // prefix() + name.
  std::string Key(std::string_view name) const;

 private:
  std::unique_ptr<StoreUnderTest> sut_;
};

}  // namespace strata
