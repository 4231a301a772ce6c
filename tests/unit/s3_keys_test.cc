#include "backends/s3_keys.h"

#include <gtest/gtest.h>

#include <string>

namespace strata {
namespace {

TEST(S3KeysTest, EmptyKeyIsInvalid) {
  EXPECT_EQ(ValidateKey("").kind(), ErrorKind::kInvalidArgument);
}

TEST(S3KeysTest, UpToTheLimitIsValid) {
  EXPECT_TRUE(ValidateKey("a").ok());
  EXPECT_TRUE(ValidateKey(std::string(kMaxKeyBytes, 'k')).ok());
}

TEST(S3KeysTest, OverTheLimitIsKeyTooLong) {
  Status st = ValidateKey(std::string(kMaxKeyBytes + 1, 'k'));
  EXPECT_EQ(st.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(st.code(), "KeyTooLongError");
  EXPECT_EQ(st.http_status(), 400);
}

}  // namespace
}  // namespace strata
