// Runs the ObjectStore conformance suite against the stores that need no server: MemoryStore,
// LocalStore in a fresh temporary directory, and FaultyStore passing every call through.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "backends/faulty_store.h"
#include "tests/conformance/store_conformance.h"
#include "tests/support/local_store.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

std::unique_ptr<StoreUnderTest> MakeMemoryStore() {
  return StoreUnderTest::Owning(std::make_unique<MemoryStore>(), UniqueTestPrefix("conformance/"));
}

std::unique_ptr<StoreUnderTest> MakeLocalStore() {
  std::string dir = ::testing::TempDir() + "strata-local-store-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << dir << " failed";
    return nullptr;
  }
  Result<std::unique_ptr<LocalStore>> store = LocalStore::Open(dir + "/store");
  if (!store.ok()) {
    ADD_FAILURE() << "LocalStore::Open: " << store.status().ToString();
    return nullptr;
  }
  return StoreUnderTest::Owning(std::move(store).value(), UniqueTestPrefix("conformance/"), [dir] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
}

std::unique_ptr<StoreUnderTest> MakeFaultyPassthrough() {
  auto inner = std::make_shared<MemoryStore>();
  // The teardown holds the inner store until the wrapper is gone.
  return StoreUnderTest::Owning(std::make_unique<FaultyStore>(*inner),
                                UniqueTestPrefix("conformance/"), [inner] {});
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformanceTest,
                         ::testing::Values(StoreFactory{"Memory", MakeMemoryStore},
                                           StoreFactory{"Local", MakeLocalStore},
                                           StoreFactory{"FaultyPassthrough",
                                                        MakeFaultyPassthrough}),
                         StoreFactoryName);

}  // namespace
}  // namespace strata
