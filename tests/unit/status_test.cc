#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace strata {
namespace {

TEST(StatusTest, OkByDefault) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.ToString(), "ok");
}

TEST(StatusTest, TransientIsRetryable) {
  EXPECT_TRUE(Status::Transient("x").retryable());
  EXPECT_FALSE(Status::NotFound("x").retryable());
  EXPECT_FALSE(Status::AccessDenied("x").retryable());
}

TEST(StatusTest, RemoteDetailsInString) {
  Status st = Status::NotFound("The specified key does not exist.").WithRemote(404, "NoSuchKey");
  EXPECT_EQ(st.code(), "NoSuchKey");
  EXPECT_EQ(st.http_status(), 404);
  EXPECT_EQ(st.ToString(), "not found: NoSuchKey (HTTP 404): The specified key does not exist.");
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Status::Io("disk"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::kIo);
}

TEST(StatusTest, FilesystemKindsHaveNames) {
  EXPECT_EQ(Status::AlreadyExists("x").kind(), ErrorKind::kAlreadyExists);
  EXPECT_EQ(Status::NotEmpty("x").kind(), ErrorKind::kNotEmpty);
  EXPECT_EQ(Status::IsDirectory("x").kind(), ErrorKind::kIsDirectory);
  EXPECT_EQ(Status::NotDirectory("x").kind(), ErrorKind::kNotDirectory);
  EXPECT_EQ(Status::NameTooLong("x").kind(), ErrorKind::kNameTooLong);
  EXPECT_EQ(Status::AlreadyExists("/a/b").ToString(), "already exists: /a/b");
  EXPECT_EQ(ErrorKindName(ErrorKind::kNotEmpty), "not empty");
  EXPECT_EQ(ErrorKindName(ErrorKind::kIsDirectory), "is a directory");
  EXPECT_EQ(ErrorKindName(ErrorKind::kNotDirectory), "not a directory");
  EXPECT_EQ(ErrorKindName(ErrorKind::kNameTooLong), "name too long");
  EXPECT_FALSE(Status::AlreadyExists("x").retryable());
}

Result<int> Half(int n) {
  if (n % 2 != 0) return Status::InvalidArgument("odd");
  return n / 2;
}

// Declares a new variable from a Result.
Result<int> Quarter(int n) {
  STRATA_ASSIGN_OR_RETURN(int half, Half(n));
  STRATA_ASSIGN_OR_RETURN(const int quarter, Half(half));
  return quarter;
}

// Assigns an existing variable; the enclosing function returns a plain Status.
Status HalveInPlace(int& n) {
  STRATA_ASSIGN_OR_RETURN(n, Half(n));
  return Status::Ok();
}

TEST(AssignOrReturnTest, DeclaresOrReturnsTheError) {
  Result<int> good = Quarter(12);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "odd");
}

TEST(AssignOrReturnTest, AssignsExistingVariable) {
  int n = 8;
  EXPECT_TRUE(HalveInPlace(n).ok());
  EXPECT_EQ(n, 4);
  n = 5;
  EXPECT_EQ(HalveInPlace(n).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(n, 5);  // untouched on error
}

TEST(AssignOrReturnTest, MovesOnlyTypes) {
  auto make = []() -> Result<std::unique_ptr<int>> { return std::make_unique<int>(4); };
  auto use = [&]() -> Result<int> {
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<int> p, make());
    return *p + 1;
  };
  Result<int> r = use();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
}

}  // namespace
}  // namespace strata
