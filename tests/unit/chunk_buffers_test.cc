#include "cache/chunk_buffers.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace strata {
namespace {

constexpr size_t kChunk = 1 << 20;

TEST(ChunkBuffersTest, ADroppedChunkLendsItsBufferToTheNextTake) {
  ChunkBuffers buffers(kChunk, 2);
  AlignedBuffer first = buffers.Take(kChunk);
  ASSERT_EQ(first.size(), kChunk);
  const char* memory = first.data();
  ChunkData chunk = buffers.Share(std::move(first));
  EXPECT_EQ(chunk->data(), memory) << "Share keeps the bytes where they are";
  EXPECT_EQ(buffers.kept(), 0u);
  chunk.reset();
  EXPECT_EQ(buffers.kept(), 1u);
  AlignedBuffer second = buffers.Take(kChunk - 10);  // a shorter (last) chunk fits a kept buffer
  EXPECT_EQ(second.size(), kChunk - 10);
  EXPECT_EQ(second.data(), memory);
  EXPECT_EQ(buffers.reused(), 1u);
  EXPECT_EQ(buffers.kept(), 0u);
}

TEST(ChunkBuffersTest, KeepsAtMostMaxBuffersAndNoSmallOnes) {
  ChunkBuffers buffers(kChunk, 2);
  std::vector<ChunkData> chunks;
  for (int i = 0; i < 4; ++i) chunks.push_back(buffers.Share(buffers.Take(kChunk)));
  chunks.push_back(buffers.Share(
      AlignedBuffer::CopyOf(std::string(100, 'x'))));  // too small to be worth keeping
  chunks.clear();
  EXPECT_EQ(buffers.kept(), 2u);
  AlignedBuffer small = buffers.Take(10);  // not worth a big buffer
  EXPECT_EQ(buffers.reused(), 0u);
  // A shortened buffer comes back at full length and serves a full chunk.
  AlignedBuffer a = buffers.Take(kChunk / 2);
  AlignedBuffer b = buffers.Take(kChunk);
  EXPECT_EQ(buffers.reused(), 2u);
  buffers.Share(std::move(a)).reset();
  AlignedBuffer c = buffers.Take(kChunk);
  EXPECT_EQ(c.size(), kChunk);
  EXPECT_EQ(buffers.reused(), 3u);
}

TEST(ChunkBuffersTest, ATakeLargerThanTheBuffersIsNewlyAllocated) {
  ChunkBuffers buffers(kChunk, 2);
  buffers.Share(buffers.Take(kChunk)).reset();
  AlignedBuffer big = buffers.Take(2 * kChunk);
  EXPECT_EQ(big.size(), 2 * kChunk);
  EXPECT_EQ(buffers.reused(), 0u);
  EXPECT_EQ(buffers.kept(), 1u);
}

TEST(ChunkBuffersTest, AChunkMayOutliveThePool) {
  ChunkData chunk;
  {
    ChunkBuffers buffers(kChunk, 2);
    AlignedBuffer data = buffers.Take(kChunk);
    std::memset(data.data(), 'q', kChunk);
    chunk = buffers.Share(std::move(data));
  }
  EXPECT_EQ((*chunk)[kChunk - 1], 'q');
  chunk.reset();  // no pool to return to: freed
}

TEST(ChunkBuffersTest, ManyThreadsTakeAndDrop) {
  ChunkBuffers buffers(4096, 4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&buffers, t] {
      for (int i = 0; i < 2000; ++i) {
        AlignedBuffer data = buffers.Take(4096);
        data[0] = static_cast<char>(t);
        ChunkData chunk = buffers.Share(std::move(data));
        ASSERT_EQ((*chunk)[0], static_cast<char>(t));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(buffers.kept(), 4u);
  EXPECT_GT(buffers.reused(), 0u);
}

}  // namespace
}  // namespace strata
