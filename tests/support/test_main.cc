// The unit and integration test binaries' main: GoogleTest's, after creating spdlog's registry.
//
// spdlog creates its registry on first use. When that use is on a worker thread, ThreadSanitizer
// cannot see the uninstrumented library's initialisation guard and reports a race between the
// registry's construction and a later read of the log level. Creating it here, before any test
// starts a thread, orders it before every thread by thread creation.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  spdlog::default_logger();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
