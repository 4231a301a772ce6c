// IntervalSet: a set of uint64_t values stored as disjoint half-open ranges [begin, end), for
// bookkeeping such as which blocks of a staged file are present. Overlapping and adjacent ranges
// are merged, so the representation of a set is unique and its size is the number of gaps, not
// of values. Value type; not thread-safe: the owner locks around it.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace strata {

class IntervalSet {
 public:
  struct Range {
    uint64_t begin = 0;
    uint64_t end = 0;  // exclusive
    bool operator==(const Range&) const = default;
  };

  // Adds [begin, end); nothing when begin >= end.
  void Insert(uint64_t begin, uint64_t end);
  // Removes [begin, end); nothing when begin >= end.
  void Erase(uint64_t begin, uint64_t end);

  bool Contains(uint64_t value) const;
  // True when some value of [begin, end) is in the set.
  bool Intersects(uint64_t begin, uint64_t end) const;
  // The parts of [begin, end) that are not in the set, in increasing order.
  std::vector<Range> Missing(uint64_t begin, uint64_t end) const;

  // All ranges, in increasing order.
  std::vector<Range> Ranges() const;
  // Number of values in the set.
  uint64_t Count() const;
  bool empty() const { return ranges_.empty(); }

 private:
  std::map<uint64_t, uint64_t> ranges_;  // begin -> end; disjoint and never adjacent
};

}  // namespace strata
