// TempDir: a fresh private directory for one test, removed with everything in it when the object
// goes out of scope. Under GoogleTest's temp dir ($TEST_TMPDIR or /tmp), on the disk the tests
// exercise (ext4 here: O_DIRECT and the page cache both work there).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace strata {

class TempDir {
 public:
  // `tag` goes into the directory's name, to tell leftovers of a crashed test apart.
  explicit TempDir(std::string_view tag) {
    std::string dir = ::testing::TempDir() + "strata-" + std::string(tag) + "-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << dir;
    path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

}  // namespace strata
