#include "cache/staging_area.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/interval_set.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1ull << 20;

std::string RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (size_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t word = rng();
    std::memcpy(out.data() + i, &word, 8);
  }
  for (size_t i = size - size % 8; i < size; ++i) out[i] = static_cast<char>(rng());
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// An object's bytes in memory, counting what the staged file reads of them.
struct FakeObject {
  explicit FakeObject(std::string content) : bytes(std::move(content)) {}

  std::string bytes;
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<bool> fail{false};
};

SourceReader ReaderOf(std::shared_ptr<FakeObject> object) {
  return [object](uint64_t offset, std::span<char> out) -> Result<size_t> {
    object->calls.fetch_add(1);
    if (object->fail.load()) return Status::Transient("injected source failure");
    if (offset >= object->bytes.size()) return size_t{0};
    const size_t n = std::min<uint64_t>(out.size(), object->bytes.size() - offset);
    std::memcpy(out.data(), object->bytes.data() + offset, n);
    object->bytes_read.fetch_add(n);
    return n;
  };
}

std::span<const char> Bytes(const std::string& s) { return std::span<const char>(s); }

// Overwrites expected[offset, offset + data.size()), growing it with zeros as a write does.
void Apply(std::string& expected, uint64_t offset, const std::string& data) {
  if (expected.size() < offset + data.size()) expected.resize(offset + data.size(), '\0');
  expected.replace(offset, data.size(), data);
}

std::string ReadAll(StagedFile& file) {
  std::string out(file.size(), '\0');
  Result<size_t> n = file.Read(0, std::span<char>(out));
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  if (n.ok()) {
    EXPECT_EQ(*n, out.size());
  }
  return out;
}

// Compares byte strings, reporting the first difference instead of printing megabytes.
::testing::AssertionResult SameBytes(const std::string& actual, const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "size " << actual.size() << ", expected " << expected.size();
  }
  const auto [a, e] = std::mismatch(actual.begin(), actual.end(), expected.begin());
  return ::testing::AssertionFailure() << "bytes differ first at offset " << (a - actual.begin())
                                       << ": " << int(*a) << " vs " << int(*e);
}

uint64_t FileSizeOnDisk(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.st_size);
}

class StagingAreaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-staging-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    root_ = dir;
    dir_ = root_ + "/a/staging";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  StagingOptions Options(uint64_t max_bytes = 1ull << 30) {
    return StagingOptions{.dir = dir_, .max_bytes = max_bytes};
  }
  std::shared_ptr<StagingArea> OpenArea(StagingOptions options) {
    Result<std::shared_ptr<StagingArea>> area = StagingArea::Open(std::move(options));
    EXPECT_TRUE(area.ok()) << area.status().ToString();
    return area.ok() ? *area : nullptr;
  }
  // A staged file over `object`; its reader shares ownership of `object`.
  std::shared_ptr<StagedFile> Stage(StagingArea& area, const std::shared_ptr<FakeObject>& object) {
    Result<std::shared_ptr<StagedFile>> file =
        area.Create("dir/object key", object->bytes.size(), ReaderOf(object));
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? *file : nullptr;
  }
  std::shared_ptr<StagedFile> StageNew(StagingArea& area) {
    Result<std::shared_ptr<StagedFile>> file = area.Create("new", 0, nullptr);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? *file : nullptr;
  }
  size_t StagedFilesOnDisk() {
    size_t count = 0;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().extension() == ".staged") ++count;
    }
    return count;
  }

  std::string root_;
  std::string dir_;
};

TEST(IntervalSetTest, MergesSplitsAndFindsGaps) {
  IntervalSet set;
  set.Insert(10, 20);
  set.Insert(20, 30);  // adjacent: merged
  set.Insert(40, 50);
  set.Insert(5, 12);
  EXPECT_EQ(set.Ranges(), (std::vector<IntervalSet::Range>{{5, 30}, {40, 50}}));
  EXPECT_EQ(set.Count(), 35u);
  EXPECT_TRUE(set.Contains(5));
  EXPECT_FALSE(set.Contains(30));
  EXPECT_TRUE(set.Intersects(29, 41));
  EXPECT_FALSE(set.Intersects(30, 40));
  EXPECT_EQ(set.Missing(0, 60), (std::vector<IntervalSet::Range>{{0, 5}, {30, 40}, {50, 60}}));
  EXPECT_EQ(set.Missing(6, 29), std::vector<IntervalSet::Range>{});
  set.Erase(8, 9);  // splits
  set.Erase(25, 45);
  EXPECT_EQ(set.Ranges(), (std::vector<IntervalSet::Range>{{5, 8}, {9, 25}, {45, 50}}));
  set.Insert(0, 100);
  EXPECT_EQ(set.Ranges(), (std::vector<IntervalSet::Range>{{0, 100}}));
  set.Erase(0, 100);
  EXPECT_TRUE(set.empty());
}

TEST_F(StagingAreaTest, NewFileWriteAndRead) {
  auto area = OpenArea(Options());
  auto file = StageNew(*area);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->size(), 0u);
  EXPECT_FALSE(file->dirty());
  EXPECT_TRUE(file->complete());
  ASSERT_TRUE(file->Write(0, Bytes("hello")).ok());
  ASSERT_TRUE(file->Write(100, Bytes("world")).ok());
  std::string expected;
  Apply(expected, 0, "hello");
  Apply(expected, 100, "world");
  EXPECT_EQ(file->size(), 105u);
  EXPECT_TRUE(file->dirty());
  EXPECT_TRUE(SameBytes(ReadAll(*file), expected));
  EXPECT_EQ(area->used_bytes(), 105u);
  EXPECT_EQ(area->file_count(), 1u);

  char buffer[16];
  Result<size_t> n = file->Read(100, std::span<char>(buffer));  // short at the end
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buffer, *n), "world");
  n = file->Read(105, std::span<char>(buffer));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_TRUE(fs::path(file->path()).filename().string().ends_with("-new.staged"));
}

TEST_F(StagingAreaTest, PartialOverwriteFetchesOnlyTheBlocksItTouches) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(10 * kMiB, 1));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(area->used_bytes(), 10 * kMiB);
  EXPECT_EQ(object->calls.load(), 0u);  // staging itself fetches nothing
  std::string expected = object->bytes;

  // 100 bytes inside block 3: the rest of block 3, in one call.
  const std::string small = RandomBytes(100, 2);
  ASSERT_TRUE(file->Write(3 * kMiB + kMiB / 2, Bytes(small)).ok());
  Apply(expected, 3 * kMiB + kMiB / 2, small);
  EXPECT_EQ(object->calls.load(), 1u);
  EXPECT_EQ(object->bytes_read.load(), kMiB);

  // [5.5, 7.5) MiB: the head of block 5 and the tail of block 7; block 6 is not fetched.
  const std::string big = RandomBytes(2 * kMiB, 3);
  ASSERT_TRUE(file->Write(5 * kMiB + kMiB / 2, Bytes(big)).ok());
  Apply(expected, 5 * kMiB + kMiB / 2, big);
  EXPECT_EQ(object->calls.load(), 3u);
  EXPECT_EQ(object->bytes_read.load(), 2 * kMiB);

  // A whole block, and a write into a block already present: nothing fetched.
  const std::string whole = RandomBytes(kMiB, 4);
  ASSERT_TRUE(file->Write(9 * kMiB, Bytes(whole)).ok());
  Apply(expected, 9 * kMiB, whole);
  ASSERT_TRUE(file->Write(3 * kMiB + 10, Bytes("again")).ok());
  Apply(expected, 3 * kMiB + 10, "again");
  EXPECT_EQ(object->calls.load(), 3u);
  EXPECT_EQ(object->bytes_read.load(), 2 * kMiB);
  EXPECT_EQ(file->size(), 10 * kMiB);
  EXPECT_EQ(area->used_bytes(), 10 * kMiB);
  EXPECT_FALSE(file->complete());

  EXPECT_TRUE(SameBytes(ReadAll(*file), expected));
}

TEST_F(StagingAreaTest, ReadOfUntouchedRangeComesFromSourceAndIsKept) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(10 * kMiB, 5));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  std::string out(4096, '\0');
  Result<size_t> n = file->Read(2 * kMiB + 7, std::span<char>(out));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, out.size());
  EXPECT_TRUE(SameBytes(out, object->bytes.substr(2 * kMiB + 7, 4096)));
  EXPECT_EQ(object->calls.load(), 1u);
  EXPECT_EQ(object->bytes_read.load(), kMiB);  // block 2, kept
  n = file->Read(2 * kMiB + 100000, std::span<char>(out));
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(SameBytes(out, object->bytes.substr(2 * kMiB + 100000, 4096)));
  EXPECT_EQ(object->calls.load(), 1u);
  EXPECT_FALSE(file->dirty());  // fetching is not writing

  // A read across several absent blocks fetches the run in one call.
  std::string wide(3 * kMiB, '\0');
  n = file->Read(5 * kMiB, std::span<char>(wide));
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(SameBytes(wide, object->bytes.substr(5 * kMiB, 3 * kMiB)));
  EXPECT_EQ(object->calls.load(), 2u);
  EXPECT_EQ(object->bytes_read.load(), 4 * kMiB);
}

TEST_F(StagingAreaTest, CompleteFetchesExactlyTheRest) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(10 * kMiB + 100, 6));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  std::string expected = object->bytes;
  const std::string a = RandomBytes(2 * kMiB, 7);
  ASSERT_TRUE(file->Write(5 * kMiB + kMiB / 2, Bytes(a)).ok());  // fetches 0.5 + 0.5 MiB
  Apply(expected, 5 * kMiB + kMiB / 2, a);
  const std::string b = RandomBytes(kMiB, 8);
  ASSERT_TRUE(file->Write(9 * kMiB, Bytes(b)).ok());  // whole block 9
  Apply(expected, 9 * kMiB, b);
  std::string out(10, '\0');
  ASSERT_TRUE(file->Read(0, std::span<char>(out)).ok());  // block 0
  const uint64_t before = object->bytes_read.load();
  EXPECT_EQ(before, 2 * kMiB);

  ASSERT_TRUE(file->Complete().ok());
  // Absent: blocks 1-4, 8 and the 100-byte block 10.
  EXPECT_EQ(object->bytes_read.load() - before, 5 * kMiB + 100);
  EXPECT_TRUE(file->complete());
  EXPECT_TRUE(SameBytes(Slurp(file->path()), expected));  // the local file alone holds the content
  const uint64_t calls = object->calls.load();
  ASSERT_TRUE(file->Complete().ok());
  EXPECT_EQ(object->calls.load(), calls);
}

TEST_F(StagingAreaTest, TruncateShrinksAndGrows) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(3 * kMiB + 100, 9));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);

  ASSERT_TRUE(file->Truncate(kMiB + kMiB / 2).ok());
  EXPECT_EQ(file->size(), kMiB + kMiB / 2);
  EXPECT_EQ(area->used_bytes(), kMiB + kMiB / 2);
  EXPECT_EQ(FileSizeOnDisk(file->path()), kMiB + kMiB / 2);
  EXPECT_TRUE(file->dirty());
  ASSERT_TRUE(file->Truncate(4 * kMiB).ok());
  EXPECT_EQ(area->used_bytes(), 4 * kMiB);
  std::string expected = object->bytes.substr(0, kMiB + kMiB / 2);
  expected.resize(4 * kMiB, '\0');  // the dropped bytes do not come back
  EXPECT_TRUE(SameBytes(ReadAll(*file), expected));
  EXPECT_EQ(object->bytes_read.load(), kMiB + kMiB / 2);  // blocks 0 and 1, cut at 1.5 MiB
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(SameBytes(Slurp(file->path()), expected));
}

TEST_F(StagingAreaTest, WriteAfterShrink) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(3 * kMiB, 10));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  ASSERT_TRUE(file->Truncate(kMiB + 10).ok());
  std::string expected = object->bytes.substr(0, kMiB + 10);

  ASSERT_TRUE(file->Write(2 * kMiB, Bytes("abc")).ok());  // past the end, past the object
  Apply(expected, 2 * kMiB, "abc");
  EXPECT_EQ(object->calls.load(), 0u);
  ASSERT_TRUE(file->Write(kMiB + 5, Bytes("xy")).ok());  // inside absent block 1
  Apply(expected, kMiB + 5, "xy");
  EXPECT_EQ(object->calls.load(), 1u);
  EXPECT_EQ(object->bytes_read.load(), 10u);  // block 1's object bytes are only [1 MiB, +10)
  EXPECT_EQ(file->size(), 2 * kMiB + 3);
  EXPECT_EQ(area->used_bytes(), 2 * kMiB + 3);

  ASSERT_TRUE(file->Complete().ok());
  EXPECT_EQ(object->bytes_read.load(), kMiB + 10);  // block 0 only
  EXPECT_TRUE(SameBytes(ReadAll(*file), expected));
}

TEST_F(StagingAreaTest, SparseWriteFarPastTheEndZeroFills) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(100, 11));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  const uint64_t far = 20 * kMiB;
  ASSERT_TRUE(file->Write(far, Bytes("end")).ok());
  EXPECT_EQ(object->calls.load(), 0u);
  EXPECT_EQ(file->size(), far + 3);
  EXPECT_EQ(area->used_bytes(), far + 3);

  std::string gap(4096, 'x');
  ASSERT_TRUE(file->Read(kMiB, std::span<char>(gap)).ok());
  EXPECT_TRUE(SameBytes(gap, std::string(4096, '\0')));
  ASSERT_TRUE(file->Read(far - 4096, std::span<char>(gap)).ok());
  EXPECT_TRUE(SameBytes(gap, std::string(4096, '\0')));
  EXPECT_EQ(object->calls.load(), 0u);
  std::string head(200, 'x');
  Result<size_t> n = file->Read(0, std::span<char>(head));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(head.substr(0, 100), object->bytes);
  EXPECT_EQ(head.substr(100), std::string(100, '\0'));
  EXPECT_EQ(object->bytes_read.load(), 100u);

  std::string expected = object->bytes;
  Apply(expected, far, "end");
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(SameBytes(Slurp(file->path()), expected));
}

TEST_F(StagingAreaTest, SyncLeavesTheWholeContentOnDisk) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(2 * kMiB + kMiB / 2, 12));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  std::string expected = object->bytes;
  ASSERT_TRUE(file->Write(kMiB - 3, Bytes("straddles")).ok());
  Apply(expected, kMiB - 3, "straddles");
  ASSERT_TRUE(file->Write(3 * kMiB, Bytes("tail")).ok());
  Apply(expected, 3 * kMiB, "tail");
  EXPECT_TRUE(file->dirty());
  EXPECT_FALSE(file->complete());

  ASSERT_TRUE(file->Sync().ok());
  EXPECT_FALSE(file->dirty());
  EXPECT_TRUE(file->complete());
  EXPECT_EQ(FileSizeOnDisk(file->path()), expected.size());
  EXPECT_TRUE(SameBytes(Slurp(file->path()), expected));
  // Every object byte once, but those the first write covered.
  EXPECT_EQ(object->bytes_read.load(), object->bytes.size() - 9);

  ASSERT_TRUE(file->Write(0, Bytes("x")).ok());
  EXPECT_TRUE(file->dirty());
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_FALSE(file->dirty());
}

TEST_F(StagingAreaTest, NoSpaceWhenMaxBytesWouldBeExceeded) {
  auto area = OpenArea(Options(/*max_bytes=*/4 * kMiB));
  auto object = std::make_shared<FakeObject>(RandomBytes(3 * kMiB, 13));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(area->used_bytes(), 3 * kMiB);

  // Ends 1 MiB + 1 past the object: one byte too many. It also covers block 2 partially, yet
  // nothing is fetched: the budget is checked first.
  const std::string data = RandomBytes(kMiB + 11, 14);
  Status st = file->Write(3 * kMiB - 10, Bytes(data));
  EXPECT_EQ(st.kind(), ErrorKind::kNoSpace) << st.ToString();
  EXPECT_EQ(file->size(), 3 * kMiB);
  EXPECT_EQ(area->used_bytes(), 3 * kMiB);
  EXPECT_EQ(FileSizeOnDisk(file->path()), 3 * kMiB);
  EXPECT_FALSE(file->dirty());
  EXPECT_EQ(object->calls.load(), 0u);
  std::string tail(10, '\0');
  ASSERT_TRUE(file->Read(3 * kMiB - 10, std::span<char>(tail)).ok());
  EXPECT_EQ(tail, object->bytes.substr(3 * kMiB - 10));  // nothing of the refused write

  EXPECT_EQ(file->Truncate(4 * kMiB + 1).kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(file->size(), 3 * kMiB);
  Result<std::shared_ptr<StagedFile>> other = area->Create("other", 2 * kMiB, ReaderOf(object));
  EXPECT_EQ(other.status().kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(area->file_count(), 1u);
  EXPECT_EQ(StagedFilesOnDisk(), 1u);
  EXPECT_EQ(area->used_bytes(), 3 * kMiB);

  // What fits still works: an overwrite, and growth up to the limit exactly.
  ASSERT_TRUE(file->Write(0, Bytes("ok")).ok());
  ASSERT_TRUE(file->Write(4 * kMiB - 1, Bytes("!")).ok());
  EXPECT_EQ(area->used_bytes(), 4 * kMiB);
  EXPECT_EQ(file->Write(4 * kMiB, Bytes("?")).kind(), ErrorKind::kNoSpace);
  ASSERT_TRUE(file->Truncate(kMiB).ok());  // shrinking gives bytes back
  EXPECT_EQ(area->used_bytes(), kMiB);
  other = area->Create("other", 2 * kMiB, ReaderOf(object));
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(area->used_bytes(), 3 * kMiB);
}

TEST_F(StagingAreaTest, FreeSpaceFloor) {
  std::atomic<uint64_t> free{3 * kMiB};
  std::atomic<int> probes{0};
  StagingOptions options = Options();
  options.min_free_bytes = kMiB;
  options.free_space_probe = [&] {
    probes.fetch_add(1);
    return free.load();
  };
  auto area = OpenArea(options);
  auto object = std::make_shared<FakeObject>(RandomBytes(2 * kMiB + 1, 15));
  Result<std::shared_ptr<StagedFile>> refused =
      area->Create("big", 2 * kMiB + 1, ReaderOf(object));  // would leave 1 MiB - 1
  EXPECT_EQ(refused.status().kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(area->used_bytes(), 0u);
  EXPECT_EQ(StagedFilesOnDisk(), 0u);
  EXPECT_GE(probes.load(), 1);

  auto file = StageNew(*area);
  ASSERT_TRUE(file->Write(0, Bytes(RandomBytes(2 * kMiB, 16))).ok());  // leaves exactly 1 MiB
  free = kMiB + 10;                                                    // what the disk now says
  EXPECT_EQ(file->Write(2 * kMiB, Bytes(std::string(11, 'x'))).kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(file->size(), 2 * kMiB);
  ASSERT_TRUE(file->Write(2 * kMiB, Bytes(std::string(10, 'x'))).ok());
  EXPECT_EQ(area->used_bytes(), 2 * kMiB + 10);

  // Writes that do not grow the file never ask.
  const int asked = probes.load();
  free = 0;
  ASSERT_TRUE(file->Write(5, Bytes("inside")).ok());
  EXPECT_EQ(probes.load(), asked);
}

TEST_F(StagingAreaTest, NoProbeWithoutAFloor) {
  std::atomic<int> probes{0};
  StagingOptions options = Options();
  options.free_space_probe = [&] {
    probes.fetch_add(1);
    return uint64_t{0};
  };
  auto area = OpenArea(options);
  auto file = StageNew(*area);
  ASSERT_TRUE(file->Write(0, Bytes("data")).ok());
  EXPECT_EQ(probes.load(), 0);
}

TEST_F(StagingAreaTest, ConcurrentWritersToDisjointRangesAllLand) {
  StagingOptions options = Options();
  options.block_size = 64 << 10;
  options.max_fetch_bytes = 256 << 10;
  auto area = OpenArea(options);
  auto object = std::make_shared<FakeObject>(RandomBytes(4 * kMiB + 123, 17));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);

  // Pieces of 777 bytes, piece i written by thread i % 8: neighbours share blocks, and the
  // pieces run 2 MiB past the object's end, so writes also extend the file concurrently.
  constexpr size_t kPiece = 777;
  constexpr int kThreads = 8;
  const size_t pieces = (6 * kMiB + kPiece - 1) / kPiece;
  const std::string pattern = RandomBytes(pieces * kPiece, 18);
  std::atomic<bool> failed{false};
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < pieces; i += kThreads) {
        const std::span<const char> piece = Bytes(pattern).subspan(i * kPiece, kPiece);
        if (!file->Write(i * kPiece, piece).ok()) failed = true;
      }
    });
  }
  // Readers and a Complete stir the block claims while the writers run.
  std::thread reader([&] {
    std::string out(100000, '\0');
    uint64_t offset = 0;
    while (writing.load()) {
      if (!file->Read(offset, std::span<char>(out)).ok()) failed = true;
      offset = (offset + 300007) % (4 * kMiB);
    }
  });
  std::thread completer([&] {
    if (!file->Complete().ok()) failed = true;
  });
  for (auto& thread : threads) thread.join();
  writing = false;
  reader.join();
  completer.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(file->size(), pattern.size());
  EXPECT_EQ(area->used_bytes(), pattern.size());
  EXPECT_TRUE(SameBytes(ReadAll(*file), pattern));
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(SameBytes(Slurp(file->path()), pattern));
}

TEST_F(StagingAreaTest, DirectoryIsPrivate) {
  auto area = OpenArea(Options());
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  auto file = StageNew(*area);
  ASSERT_EQ(::stat(file->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  file.reset();
  area.reset();

  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  area = OpenArea(Options());
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(StagingAreaTest, OneAreaPerDirectoryAndLeftoversAreRemoved) {
  auto area = OpenArea(Options());
  Result<std::shared_ptr<StagingArea>> second = StagingArea::Open(Options());
  EXPECT_FALSE(second.ok());
  area.reset();

  std::ofstream(dir_ + "/7-crashed.staged") << "leftover";
  std::ofstream(dir_ + "/notes.txt") << "not ours";
  area = OpenArea(Options());
  EXPECT_FALSE(fs::exists(dir_ + "/7-crashed.staged"));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));
  EXPECT_EQ(area->used_bytes(), 0u);
}

TEST_F(StagingAreaTest, DetachHandsTheFileOver) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(kMiB + kMiB / 2, 19));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  std::string expected = object->bytes;
  ASSERT_TRUE(file->Write(10, Bytes("detach me")).ok());
  Apply(expected, 10, "detach me");

  ASSERT_TRUE(file->Detach().ok());
  EXPECT_TRUE(file->detached());
  EXPECT_FALSE(file->dirty());
  EXPECT_EQ(area->used_bytes(), 0u);
  EXPECT_EQ(area->file_count(), 0u);
  EXPECT_EQ(file->Write(0, Bytes("late")).kind(), ErrorKind::kInvalidArgument);
  std::string out(4, '\0');
  EXPECT_EQ(file->Read(0, std::span<char>(out)).status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(file->Detach().kind(), ErrorKind::kInvalidArgument);

  const std::string path = file->path();
  area.reset();
  file.reset();
  ASSERT_TRUE(fs::exists(path));
  EXPECT_TRUE(SameBytes(Slurp(path), expected));  // complete: the taker needs no source
}

TEST_F(StagingAreaTest, UndetachedFilesAreRemoved) {
  auto area = OpenArea(Options());
  auto unsynced = StageNew(*area);
  ASSERT_TRUE(unsynced->Write(0, Bytes(std::string(5000, 'u'))).ok());
  auto synced = StageNew(*area);
  ASSERT_TRUE(synced->Write(0, Bytes(std::string(3000, 's'))).ok());
  ASSERT_TRUE(synced->Sync().ok());
  EXPECT_EQ(area->used_bytes(), 8000u);
  EXPECT_EQ(StagedFilesOnDisk(), 2u);

  const std::string unsynced_path = unsynced->path();
  unsynced.reset();
  EXPECT_FALSE(fs::exists(unsynced_path));
  EXPECT_EQ(area->used_bytes(), 3000u);
  EXPECT_EQ(area->file_count(), 1u);

  // A file may outlive the area's owner: it keeps the area alive and still cleans up.
  const std::string synced_path = synced->path();
  area.reset();
  synced.reset();
  EXPECT_FALSE(fs::exists(synced_path));
}

TEST_F(StagingAreaTest, SourceFailureChangesNothing) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(2 * kMiB, 20));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  object->fail = true;
  Status st = file->Write(100, Bytes("lost?"));
  EXPECT_EQ(st.kind(), ErrorKind::kTransient) << st.ToString();
  EXPECT_FALSE(file->dirty());
  std::string out(5, '\0');
  EXPECT_EQ(file->Read(100, std::span<char>(out)).status().kind(), ErrorKind::kTransient);
  EXPECT_EQ(file->Complete().kind(), ErrorKind::kTransient);
  EXPECT_EQ(file->Write(2 * kMiB - 1, Bytes("grow")).kind(), ErrorKind::kTransient);
  EXPECT_EQ(file->size(), 2 * kMiB);  // the failed extending write was rolled back
  EXPECT_EQ(FileSizeOnDisk(file->path()), 2 * kMiB);
  EXPECT_EQ(area->used_bytes(), 2 * kMiB);
  EXPECT_FALSE(file->complete());

  object->fail = false;
  ASSERT_TRUE(file->Read(100, std::span<char>(out)).ok());
  EXPECT_TRUE(SameBytes(out, object->bytes.substr(100, 5)));  // the failed write left no trace
  ASSERT_TRUE(file->Write(100, Bytes("found")).ok());
  std::string expected = object->bytes;
  Apply(expected, 100, "found");
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(SameBytes(Slurp(file->path()), expected));
}

// RLIMIT_FSIZE makes the kernel refuse to grow or write files past a size: a local I/O error.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(uint64_t bytes) {
    struct sigaction ignore = {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGXFSZ, &ignore, &previous_action_);
    ::getrlimit(RLIMIT_FSIZE, &previous_limit_);
    struct rlimit small = previous_limit_;
    small.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &small);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &previous_limit_);
    ::sigaction(SIGXFSZ, &previous_action_, nullptr);
  }

 private:
  struct sigaction previous_action_ = {};
  struct rlimit previous_limit_ = {};
};

TEST_F(StagingAreaTest, LocalIoErrorsKeepTheAccounting) {
  auto area = OpenArea(Options());
  auto object = std::make_shared<FakeObject>(RandomBytes(3 * kMiB, 21));
  auto file = Stage(*area, object);
  ASSERT_NE(file, nullptr);
  auto fresh = StageNew(*area);
  {
    FileSizeLimit limit(kMiB);
    Status st = fresh->Write(2 * kMiB, Bytes("far"));
    EXPECT_EQ(st.kind(), ErrorKind::kIo) << st.ToString();
    std::string out(10, '\0');
    Result<size_t> n = file->Read(2 * kMiB, std::span<char>(out));  // filling block 2 fails
    EXPECT_EQ(n.status().kind(), ErrorKind::kIo) << n.status().ToString();
    Result<std::shared_ptr<StagedFile>> big = area->Create("big", 2 * kMiB, ReaderOf(object));
    EXPECT_EQ(big.status().kind(), ErrorKind::kIo) << big.status().ToString();
  }
  EXPECT_EQ(fresh->size(), 0u);
  EXPECT_EQ(FileSizeOnDisk(fresh->path()), 0u);
  EXPECT_EQ(area->used_bytes(), 3 * kMiB);
  EXPECT_EQ(area->file_count(), 2u);
  EXPECT_EQ(StagedFilesOnDisk(), 2u);

  ASSERT_TRUE(fresh->Write(2 * kMiB, Bytes("far")).ok());
  std::string out(10, '\0');
  ASSERT_TRUE(file->Read(2 * kMiB, std::span<char>(out)).ok());
  EXPECT_TRUE(SameBytes(out, object->bytes.substr(2 * kMiB, 10)));
  EXPECT_EQ(area->used_bytes(), 5 * kMiB + 3);
}

}  // namespace
}  // namespace strata
