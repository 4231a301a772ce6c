#include "base/aligned_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace strata {
namespace {

uintptr_t Address(const AlignedBuffer& buffer) {
  return reinterpret_cast<uintptr_t>(buffer.data());
}

TEST(AlignedBufferTest, SmallAndHugeBuffersAreAlignedAndHoldTheirBytes) {
  for (size_t size : {1ul, 4095ul, 4096ul, 100'000ul, AlignedBuffer::kHugeBytes - 1,
                      AlignedBuffer::kHugeBytes, (8ul << 20) + 5}) {
    SCOPED_TRACE(size);
    AlignedBuffer buffer(size);
    EXPECT_EQ(buffer.size(), size);
    EXPECT_EQ(buffer.capacity(), AlignedBuffer::RoundUp(size));
    EXPECT_EQ(buffer.capacity() % AlignedBuffer::kAlignment, 0u);
    EXPECT_EQ(Address(buffer) % AlignedBuffer::kAlignment, 0u);
    if (size >= AlignedBuffer::kHugeBytes) {
      EXPECT_EQ(Address(buffer) % AlignedBuffer::kHugeBytes, 0u) << "mapped for huge pages";
    }
    // Every byte of the capacity is writable and keeps what was written.
    std::memset(buffer.data(), 'a', buffer.capacity());
    buffer[size - 1] = 'z';
    EXPECT_EQ(buffer.view().back(), 'z');
    EXPECT_EQ(buffer[buffer.capacity() - 1], size == buffer.capacity() ? 'z' : 'a');
  }
}

TEST(AlignedBufferTest, EmptyBufferHasNoBytes) {
  AlignedBuffer buffer(0);
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.capacity(), 0u);
  EXPECT_EQ(buffer.view(), "");
  EXPECT_TRUE(AlignedBuffer() == "");
}

TEST(AlignedBufferTest, CopyOfComparesEqualAndResizeKeepsTheBytes) {
  AlignedBuffer buffer = AlignedBuffer::CopyOf("hello, chunk");
  EXPECT_TRUE(buffer == "hello, chunk");
  buffer.resize(5);
  EXPECT_TRUE(buffer == "hello");
  buffer.resize(12);  // within the capacity: the bytes are still there
  EXPECT_TRUE(buffer == "hello, chunk");
}

TEST(AlignedBufferTest, MoveLeavesTheSourceEmpty) {
  AlignedBuffer a = AlignedBuffer::CopyOf(std::string(3 << 20, 'x'));
  const char* bytes = a.data();
  AlignedBuffer b = std::move(a);
  EXPECT_EQ(b.data(), bytes);
  EXPECT_EQ(b.size(), 3u << 20);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.capacity(), 0u);
  a = std::move(b);
  EXPECT_EQ(a.data(), bytes);
}

}  // namespace
}  // namespace strata
