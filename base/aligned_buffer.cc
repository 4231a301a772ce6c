#include "base/aligned_buffer.h"

#include <sys/mman.h>

#include <cassert>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

namespace strata {

namespace {

// Maps `bytes` (a multiple of the page size) at a kHugeBytes boundary and asks for huge pages.
char* MapHuge(size_t bytes, size_t huge) {
  const size_t span = bytes + huge;  // room to slide to the boundary
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + huge - 1) / huge * huge;
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + bytes)
    ::munmap(reinterpret_cast<void*>(aligned + bytes), end - aligned - bytes);
  char* p = reinterpret_cast<char*>(aligned);
  // Advice only: without THP the buffer works the same with small pages.
  (void)::madvise(p, bytes / huge * huge, MADV_HUGEPAGE);
  return p;
}

}  // namespace

void AlignedBuffer::Free::operator()(char* p) const {
  if (mapped > 0) {
    ::munmap(p, mapped);
  } else {
    std::free(p);
  }
}

AlignedBuffer::AlignedBuffer(size_t size) : size_(size), capacity_(RoundUp(size)) {
  if (capacity_ == 0) return;
  if (capacity_ >= kHugeBytes) {
    bytes_ = std::unique_ptr<char[], Free>(MapHuge(capacity_, kHugeBytes), Free(capacity_));
    return;
  }
  void* p = std::aligned_alloc(kAlignment, capacity_);
  if (p == nullptr) throw std::bad_alloc();
  bytes_.reset(static_cast<char*>(p));
}

AlignedBuffer AlignedBuffer::CopyOf(std::string_view bytes) {
  AlignedBuffer buffer(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
  return buffer;
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : bytes_(std::move(other.bytes_)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  bytes_ = std::move(other.bytes_);
  size_ = std::exchange(other.size_, 0);
  capacity_ = std::exchange(other.capacity_, 0);
  return *this;
}

void AlignedBuffer::resize(size_t size) {
  assert(size <= capacity_);
  size_ = size;
}

}  // namespace strata
