// AlignedBuffer: bytes in memory that starts on a kAlignment boundary, with a capacity that is a
// multiple of kAlignment, as direct I/O (O_DIRECT) needs; and that is never zero-filled. Chunks
// are read from S3 or from a cache file straight into one: filling it first would touch every
// byte twice (with std::string's zero fill that was a fifth of the daemon's CPU on a sequential
// read from the disk tier, perf). Move-only value type; not thread-safe (share it as const, e.g.
// as ChunkData).
//
// Buffers of kHugeBytes or more are mapped on their own, 2 MiB-aligned, and asked for
// transparent huge pages (MADV_HUGEPAGE; the kernel's default THP mode, "madvise", grants them):
// an 8 MiB chunk then costs 4 page faults instead of 2,048. Measured on the 2-core VM of the
// benchmarks: the first touch of fresh memory ran at 185-190 MB/s with 4 KiB pages and at
// 17-21 GB/s with huge pages (8 MiB mappings, 32 each); a chunk read with 4 KiB pages paid more
// for its page faults than for the network or the disk. Unmapped when the buffer goes, so the
// memory goes back to the system at once.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace strata {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;
  static constexpr size_t kHugeBytes = 2u << 20;  // x86-64's huge page

  // n rounded up to a multiple of kAlignment.
  static constexpr size_t RoundUp(size_t n) {
    return (n + kAlignment - 1) / kAlignment * kAlignment;
  }

  AlignedBuffer() = default;
  // `size` bytes whose contents are unspecified; capacity RoundUp(size). Throws std::bad_alloc
  // when memory is exhausted, as operator new does.
  explicit AlignedBuffer(size_t size);
  // A buffer holding a copy of `bytes`.
  static AlignedBuffer CopyOf(std::string_view bytes);

  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;

  char* data() { return bytes_.get(); }
  const char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  char& operator[](size_t i) { return bytes_[i]; }
  const char& operator[](size_t i) const { return bytes_[i]; }
  // Sets the size to `size` without touching any byte. REQUIRES: size <= capacity().
  void resize(size_t size);

  std::string_view view() const { return {data(), size_}; }
  // Reads like a string: comparisons, string_view parameters.
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  friend bool operator==(const AlignedBuffer& a, std::string_view b) { return a.view() == b; }

 private:
  struct Free {
    Free() : mapped(0) {}
    explicit Free(size_t bytes) : mapped(bytes) {}
    void operator()(char* p) const;
    size_t mapped;  // bytes mapped with mmap; 0 for memory from aligned_alloc
  };
  std::unique_ptr<char[], Free> bytes_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace strata
