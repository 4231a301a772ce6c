#include "base/status.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace strata
