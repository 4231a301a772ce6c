#include "base/posix_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "base/clock.h"

namespace strata {
namespace {

class PosixFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "strata-posix-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(PosixFileTest, WriteFullThenReadFull) {
  const std::string path = dir_ + "/f";
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  const std::string data = "hello, world";
  ASSERT_TRUE(WriteFull(fd.get(), 4, data, path).ok());

  std::string out(data.size(), '\0');
  Result<size_t> n = ReadFull(fd.get(), 4, out, path);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(out, data);
}

TEST_F(PosixFileTest, ReadFullStopsAtEndOfFile) {
  const std::string path = dir_ + "/f";
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(WriteFull(fd.get(), 0, std::string("abc"), path).ok());
  std::string out(10, '\0');
  Result<size_t> n = ReadFull(fd.get(), 1, out, path);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(out.substr(0, 2), "bc");
}

TEST_F(PosixFileTest, ReadFullReportsTheFailure) {
  std::string out(4, '\0');
  Result<size_t> n = ReadFull(-1, 0, out, "nowhere");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().kind(), ErrorKind::kIo);
  EXPECT_NE(n.status().message().find("read nowhere"), std::string::npos);
}

TEST_F(PosixFileTest, FreeSpaceOfAnExistingDirectoryIsKnown) {
  EXPECT_LT(FreeSpaceOrUnlimited(dir_, "test"), UINT64_MAX);
  EXPECT_EQ(FreeSpaceOrUnlimited(dir_ + "/missing", "test"), UINT64_MAX);
}

TEST_F(PosixFileTest, DirLockExcludesASecondHolderUntilReleased) {
  FakeClock clock;
  Result<DirLock> first = DirLock::Acquire(dir_, "test", clock, std::chrono::seconds(0));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->held());

  Result<DirLock> second = DirLock::Acquire(dir_, "tester", clock, std::chrono::seconds(1));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().kind(), ErrorKind::kIo);
  EXPECT_EQ(second.status().message(), dir_ + " is already in use by another tester");
  EXPECT_GE(clock.total_slept(), std::chrono::seconds(1));  // waited before giving up

  DirLock moved = std::move(first).value();
  EXPECT_TRUE(moved.held());
  { DirLock gone = std::move(moved); }  // released here
  EXPECT_TRUE(DirLock::Acquire(dir_, "test", clock, std::chrono::seconds(0)).ok());
}

}  // namespace
}  // namespace strata
