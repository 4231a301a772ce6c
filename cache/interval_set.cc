#include "cache/interval_set.h"

#include <algorithm>
#include <iterator>

namespace strata {

void IntervalSet::Insert(uint64_t begin, uint64_t end) {
  if (begin >= end) return;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) it = prev;  // overlaps or touches: merge from there
  }
  while (it != ranges_.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(begin, end);
}

void IntervalSet::Erase(uint64_t begin, uint64_t end) {
  if (begin >= end) return;
  auto it = ranges_.upper_bound(begin);  // first range starting after begin
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > begin) {
      const uint64_t prev_end = prev->second;
      if (prev->first == begin) {
        ranges_.erase(prev);
      } else {
        prev->second = begin;
      }
      if (prev_end > end) {
        ranges_.emplace(end, prev_end);
        return;
      }
    }
  }
  while (it != ranges_.end() && it->first < end) {
    const uint64_t it_end = it->second;
    it = ranges_.erase(it);
    if (it_end > end) {
      ranges_.emplace(end, it_end);
      break;
    }
  }
}

bool IntervalSet::Contains(uint64_t value) const {
  auto it = ranges_.upper_bound(value);
  if (it == ranges_.begin()) return false;
  return std::prev(it)->second > value;
}

bool IntervalSet::Intersects(uint64_t begin, uint64_t end) const {
  if (begin >= end) return false;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin() && std::prev(it)->second > begin) return true;
  return it != ranges_.end() && it->first < end;
}

std::vector<IntervalSet::Range> IntervalSet::Missing(uint64_t begin, uint64_t end) const {
  std::vector<Range> gaps;
  if (begin >= end) return gaps;
  uint64_t cursor = begin;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) cursor = std::max(cursor, std::prev(it)->second);
  while (cursor < end) {
    if (it == ranges_.end() || it->first >= end) {
      gaps.push_back({cursor, end});
      break;
    }
    if (it->first > cursor) gaps.push_back({cursor, it->first});
    cursor = it->second;
    ++it;
  }
  return gaps;
}

std::vector<IntervalSet::Range> IntervalSet::Ranges() const {
  std::vector<Range> out;
  out.reserve(ranges_.size());
  for (const auto& [begin, end] : ranges_) out.push_back({begin, end});
  return out;
}

uint64_t IntervalSet::Count() const {
  uint64_t count = 0;
  for (const auto& [begin, end] : ranges_) count += end - begin;
  return count;
}

}  // namespace strata
