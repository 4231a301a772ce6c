#include "cache/disk_tier.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/chunk_file.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kChunk = 4096;

ChunkKey Key(int i, std::string etag = "etag-1", uint32_t chunk_size = kChunk) {
  ChunkKey key;
  key.bucket = "bucket";
  key.object_key = "dir/object-" + std::to_string(i / 4);
  key.etag = std::move(etag);
  key.chunk_size = chunk_size;
  key.index = static_cast<uint64_t>(i % 4);
  return key;
}

// Bytes that depend on the key, so a chunk served for the wrong key shows.
ChunkData Bytes(const ChunkKey& key, size_t size = kChunk) {
  std::mt19937_64 rng(std::hash<std::string>()(key.Id()));
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return MakeChunk(std::move(out));
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

class DiskTierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-disk-tier-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    root_ = dir + "/cache";
  }
  void TearDown() override {
    tier_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  DiskTierOptions Options(uint64_t max_chunks = 1000) {
    DiskTierOptions options;
    options.root = root_;
    options.max_bytes = max_chunks * kChunk;
    options.clock = &clock_;
    options.access_flush_interval = std::chrono::seconds(1);
    return options;
  }

  void Open(DiskTierOptions options) {
    tier_.reset();
    Result<std::unique_ptr<DiskTier>> tier = DiskTier::Open(std::move(options), stats_);
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    tier_ = std::move(tier).value();
  }
  void Open() { Open(Options()); }

  void PutOk(const ChunkKey& key, size_t size = kChunk) {
    Status st = tier_->Put(key, Bytes(key, size));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // True when Get returns exactly the bytes Put stored; false on a miss. Fails on wrong bytes.
  bool Has(const ChunkKey& key, size_t size = kChunk) {
    Result<std::optional<ChunkData>> got = tier_->Get(key);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || !got->has_value()) return false;
    EXPECT_EQ(***got, *Bytes(key, size));
    return true;
  }

  fs::path PathOf(const ChunkKey& key) const {
    const std::string id = key.Id();
    return fs::path(root_) / "chunks" / id.substr(0, 2) / id;
  }

  // Regular files under chunks/, temp files included.
  size_t FilesOnDisk() const {
    size_t n = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root_ + "/chunks")) {
      if (entry.is_regular_file()) ++n;
    }
    return n;
  }

  // Runs one query against index.db through a separate connection; returns the first column
  // of the first row (or -1).
  int64_t QueryIndex(const std::string& sql) const {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((root_ + "/index.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
              SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    } else {
      ADD_FAILURE() << sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }
  int64_t LastAccess(const ChunkKey& key) const {
    return QueryIndex("SELECT last_access FROM chunks WHERE id = '" + key.Id() + "'");
  }

  void FlipByte(const fs::path& path, uint64_t offset) {
    std::string contents = Slurp(path);
    ASSERT_LT(offset, contents.size());
    contents[offset] ^= 0x5a;
    WriteFile(path, contents);
  }

  // Expects `key` to be reported as a corrupt miss and its file to be gone, then stored anew.
  void ExpectCorruptMissThenRefill(const ChunkKey& key) {
    const uint64_t failures = stats_.disk_checksum_failures.load();
    EXPECT_FALSE(Has(key));
    EXPECT_EQ(stats_.disk_checksum_failures.load(), failures + 1);
    EXPECT_FALSE(fs::exists(PathOf(key)));
    EXPECT_EQ(tier_->chunk_count(), 0u);
    EXPECT_EQ(tier_->used_bytes(), 0u);
    EXPECT_EQ(QueryIndex("SELECT count(*) FROM chunks"), 0);
    PutOk(key);
    EXPECT_TRUE(Has(key));
  }

  std::string dir_;
  std::string root_;
  FakeClock clock_;
  CacheStats stats_;
  std::unique_ptr<DiskTier> tier_;
};

TEST_F(DiskTierTest, PutGetRoundtrip) {
  Open();
  EXPECT_FALSE(Has(Key(0)));
  EXPECT_EQ(stats_.disk_misses.load(), 1u);
  PutOk(Key(0));
  PutOk(Key(1), 100);
  PutOk(Key(2), 0);
  EXPECT_TRUE(Has(Key(0)));
  EXPECT_TRUE(Has(Key(1), 100));
  EXPECT_TRUE(Has(Key(2), 0));
  EXPECT_EQ(stats_.disk_hits.load(), 3u);
  EXPECT_EQ(stats_.disk_bytes_served.load(), kChunk + 100u);
  EXPECT_EQ(tier_->chunk_count(), 3u);
  EXPECT_EQ(tier_->used_bytes(), kChunk + 100u);
  EXPECT_TRUE(fs::exists(PathOf(Key(0))));
  // Putting a chunk again is a no-op.
  PutOk(Key(0));
  EXPECT_EQ(tier_->chunk_count(), 3u);
  EXPECT_EQ(FilesOnDisk(), 3u);
}

TEST_F(DiskTierTest, DifferentIdentityIsAMiss) {
  Open();
  PutOk(Key(0));
  EXPECT_FALSE(Has(Key(0, "etag-2")));
  EXPECT_FALSE(Has(Key(0, "etag-1", kChunk * 2)));
  EXPECT_FALSE(Has(Key(1)));
  ChunkKey other_bucket = Key(0);
  other_bucket.bucket = "other";
  EXPECT_FALSE(Has(other_bucket));
  EXPECT_TRUE(Has(Key(0)));
  EXPECT_EQ(stats_.disk_misses.load(), 4u);
}

TEST_F(DiskTierTest, SurvivesCloseAndReopen) {
  Open();
  for (int i = 0; i < 20; ++i) PutOk(Key(i));
  tier_.reset();
  Open();
  EXPECT_EQ(tier_->chunk_count(), 20u);
  EXPECT_EQ(tier_->used_bytes(), 20u * kChunk);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Has(Key(i))) << i;
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 0u);
}

TEST_F(DiskTierTest, LongAndBinaryKeysSurviveAnIndexRebuild) {
  Open();
  ChunkKey long_key = Key(0);
  long_key.object_key = std::string(10000, 'k');  // header larger than the first read
  ChunkKey binary_key = Key(1);
  binary_key.object_key = std::string("a\0b\xff\n", 5);
  PutOk(long_key);
  PutOk(binary_key);
  ChunkKey too_long = Key(2);
  too_long.object_key = std::string(ChunkFile::kMaxFieldBytes + 1, 'x');
  EXPECT_EQ(tier_->Put(too_long, Bytes(too_long)).kind(), ErrorKind::kInvalidArgument);
  tier_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(root_ + "/index.db" + suffix);
  Open();
  EXPECT_TRUE(Has(long_key));
  EXPECT_TRUE(Has(binary_key));
}

TEST_F(DiskTierTest, SecondOpenOfTheSameRootFails) {
  Open();
  Result<std::unique_ptr<DiskTier>> second = DiskTier::Open(Options(), stats_);
  EXPECT_FALSE(second.ok());
}

TEST_F(DiskTierTest, SecondOpenWaitsForTheFirstToLetGo) {
  Open();
  DiskTierOptions options = Options();
  options.clock = nullptr;  // real time: the first holder closes on another thread
  options.lock_wait = std::chrono::seconds(10);
  std::thread closer([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    tier_.reset();  // like a daemon finishing its shutdown after the unmount
  });
  Result<std::unique_ptr<DiskTier>> second = DiskTier::Open(options, stats_);
  closer.join();
  EXPECT_TRUE(second.ok()) << second.status().ToString();
}

TEST_F(DiskTierTest, RejectsBadOptions) {
  DiskTierOptions options = Options();
  options.max_bytes = 0;
  EXPECT_EQ(DiskTier::Open(options, stats_).status().kind(), ErrorKind::kInvalidArgument);
  options = Options();
  options.root = "";
  EXPECT_EQ(DiskTier::Open(options, stats_).status().kind(), ErrorKind::kInvalidArgument);
}

TEST_F(DiskTierTest, CorruptDataByteIsAMissAndTheFileGoes) {
  Open();
  PutOk(Key(0));
  FlipByte(PathOf(Key(0)), fs::file_size(PathOf(Key(0))) - 1);
  ExpectCorruptMissThenRefill(Key(0));
}

TEST_F(DiskTierTest, CorruptHeaderIsAMiss) {
  Open();
  PutOk(Key(0));
  FlipByte(PathOf(Key(0)), 60);  // inside the bucket name
  ExpectCorruptMissThenRefill(Key(0));
}

TEST_F(DiskTierTest, CorruptChecksumFieldIsAMiss) {
  Open();
  PutOk(Key(0));
  FlipByte(PathOf(Key(0)), 50);  // the data checksum (covered by the header checksum)
  ExpectCorruptMissThenRefill(Key(0));
}

TEST_F(DiskTierTest, TruncatedFileIsAMiss) {
  Open();
  PutOk(Key(0));
  fs::resize_file(PathOf(Key(0)), fs::file_size(PathOf(Key(0))) - kChunk / 2);
  ExpectCorruptMissThenRefill(Key(0));
}

TEST_F(DiskTierTest, FileOfAnotherKeyIsNeverServed) {
  Open();
  PutOk(Key(0));
  PutOk(Key(1));
  // Another chunk's valid file under this chunk's name, as a hash collision would leave it.
  fs::copy_file(PathOf(Key(1)), PathOf(Key(0)), fs::copy_options::overwrite_existing);
  EXPECT_FALSE(Has(Key(0)));
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 1u);
  EXPECT_FALSE(fs::exists(PathOf(Key(0))));
  EXPECT_TRUE(Has(Key(1)));
}

TEST_F(DiskTierTest, MissingFileIsAMiss) {
  Open();
  PutOk(Key(0));
  fs::remove(PathOf(Key(0)));
  EXPECT_FALSE(Has(Key(0)));
  EXPECT_EQ(tier_->chunk_count(), 0u);
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 0u);
}

TEST_F(DiskTierTest, DeletedIndexIsRebuiltFromTheChunkFiles) {
  Open();
  for (int i = 0; i < 10; ++i) PutOk(Key(i, "etag-" + std::to_string(i), kChunk));
  tier_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(root_ + "/index.db" + suffix);
  Open();
  EXPECT_EQ(tier_->chunk_count(), 10u);
  EXPECT_EQ(tier_->used_bytes(), 10u * kChunk);
  EXPECT_EQ(QueryIndex("SELECT count(*) FROM chunks"), 10);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Has(Key(i, "etag-" + std::to_string(i)))) << i;
  // The rebuilt rows carry the identity.
  EXPECT_EQ(
      QueryIndex("SELECT count(*) FROM chunks WHERE object_key = CAST('dir/object-0' AS BLOB)"), 4);
}

TEST_F(DiskTierTest, GarbageIndexIsMovedAsideAndRebuilt) {
  Open();
  for (int i = 0; i < 10; ++i) PutOk(Key(i));
  tier_.reset();
  WriteFile(root_ + "/index.db", std::string(8192, 'x'));
  Open();
  EXPECT_TRUE(fs::exists(root_ + "/index.db.corrupt"));
  EXPECT_EQ(tier_->chunk_count(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Has(Key(i))) << i;
}

TEST_F(DiskTierTest, IndexWithAnotherSchemaIsRebuilt) {
  Open();
  for (int i = 0; i < 3; ++i) PutOk(Key(i));
  tier_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(root_ + "/index.db" + suffix);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_ + "/index.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE chunks (id TEXT); PRAGMA user_version = 7;", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Open();
  EXPECT_EQ(tier_->chunk_count(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Has(Key(i))) << i;
}

TEST_F(DiskTierTest, OpenReconcilesFilesAndRows) {
  Open();
  for (int i = 0; i < 6; ++i) PutOk(Key(i));
  tier_.reset();
  // Leftover temp files: a complete one and a partial one.
  fs::copy_file(PathOf(Key(0)), PathOf(Key(0)).string() + ".tmp");
  fs::create_directories(PathOf(Key(9)).parent_path());
  WriteFile(PathOf(Key(9)).string() + ".tmp", "partial");
  // A row whose file is gone.
  fs::remove(PathOf(Key(1)));
  // A valid file whose row is gone (a crash between publishing and indexing).
  ASSERT_EQ(QueryIndex("DELETE FROM chunks WHERE id = '" + Key(2).Id() + "' RETURNING 1"), 1);
  // An unindexed file that does not verify, and one whose row says another size.
  fs::create_directories(PathOf(Key(7)).parent_path());
  WriteFile(PathOf(Key(7)), "not a chunk");
  fs::resize_file(PathOf(Key(3)), fs::file_size(PathOf(Key(3))) + 1);
  Open();
  EXPECT_FALSE(fs::exists(PathOf(Key(0)).string() + ".tmp"));
  EXPECT_FALSE(fs::exists(PathOf(Key(9)).string() + ".tmp"));
  EXPECT_FALSE(fs::exists(PathOf(Key(7))));
  EXPECT_FALSE(fs::exists(PathOf(Key(3))));
  EXPECT_EQ(tier_->chunk_count(), 4u);  // 0, 2 (re-indexed), 4 and 5
  EXPECT_EQ(QueryIndex("SELECT count(*) FROM chunks"), 4);
  EXPECT_EQ(FilesOnDisk(), 4u);
  for (int i : {0, 2, 4, 5}) EXPECT_TRUE(Has(Key(i))) << i;
  for (int i : {1, 3, 7}) EXPECT_FALSE(Has(Key(i))) << i;
}

TEST_F(DiskTierTest, SizeLimitHoldsUnderLoad) {
  Open(Options(/*max_chunks=*/10));
  for (int i = 0; i < 100; ++i) {
    PutOk(Key(i));
    ASSERT_LE(tier_->used_bytes(), 10u * kChunk);
    ASSERT_LE(FilesOnDisk(), 10u);
  }
  EXPECT_EQ(tier_->chunk_count(), 10u);
  EXPECT_EQ(tier_->used_bytes(), 10u * kChunk);
  EXPECT_EQ(stats_.disk_evictions.load(), 90u);
  EXPECT_EQ(QueryIndex("SELECT count(*) FROM chunks"), 10);
  for (int i = 90; i < 100; ++i) EXPECT_TRUE(Has(Key(i))) << i;
}

TEST_F(DiskTierTest, EvictsLeastRecentlyUsed) {
  Open(Options(/*max_chunks=*/10));
  for (int i = 0; i < 10; ++i) PutOk(Key(i));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Has(Key(i)));
  for (int i = 10; i < 15; ++i) PutOk(Key(i));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Has(Key(i))) << i;
  for (int i = 5; i < 10; ++i) EXPECT_FALSE(Has(Key(i))) << i;
}

TEST_F(DiskTierTest, LruOrderSurvivesReopen) {
  Open(Options(/*max_chunks=*/10));
  for (int i = 0; i < 10; ++i) PutOk(Key(i));
  for (int i = 9; i >= 5; --i) EXPECT_TRUE(Has(Key(i)));  // no clock movement: order by ticks
  tier_.reset();
  Open(Options(/*max_chunks=*/10));
  for (int i = 10; i < 15; ++i) PutOk(Key(i));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Has(Key(i))) << i;
  for (int i = 5; i < 15; ++i) EXPECT_TRUE(Has(Key(i))) << i;
}

TEST_F(DiskTierTest, KeepsMinimumFreeSpace) {
  constexpr uint64_t kMinFree = 1 << 20;
  std::atomic<uint64_t> free_bytes{kMinFree * 100};
  DiskTierOptions options = Options();
  options.min_free_bytes = kMinFree;
  options.free_space_probe = [&free_bytes] { return free_bytes.load(); };
  Open(options);
  for (int i = 0; i < 5; ++i) PutOk(Key(i));
  EXPECT_EQ(stats_.disk_evictions.load(), 0u);
  // Half a chunk short: one chunk (the least recently used) goes.
  free_bytes = kMinFree + kChunk / 2;
  PutOk(Key(5));
  EXPECT_EQ(stats_.disk_evictions.load(), 1u);
  EXPECT_EQ(tier_->chunk_count(), 5u);
  EXPECT_FALSE(Has(Key(0)));
  // Far below the floor: evicting everything would not do, so nothing is evicted or written.
  free_bytes = kMinFree - 100 * kChunk;
  Status st = tier_->Put(Key(6), Bytes(Key(6)));
  EXPECT_EQ(st.kind(), ErrorKind::kNoSpace) << st.ToString();
  EXPECT_EQ(tier_->chunk_count(), 5u);
  EXPECT_EQ(FilesOnDisk(), 5u);
  EXPECT_FALSE(Has(Key(6)));
  EXPECT_EQ(stats_.disk_write_failures.load(), 0u);
}

TEST_F(DiskTierTest, NoSpaceWhenAChunkCannotFit) {
  Open(Options(/*max_chunks=*/2));
  PutOk(Key(0));
  Status st = tier_->Put(Key(1), Bytes(Key(1), 3 * kChunk));
  EXPECT_EQ(st.kind(), ErrorKind::kNoSpace) << st.ToString();
  EXPECT_EQ(FilesOnDisk(), 1u);
  EXPECT_TRUE(Has(Key(0)));
  EXPECT_EQ(stats_.disk_evictions.load(), 0u);
}

TEST_F(DiskTierTest, PinnedObjectsAreNotEvicted) {
  Open(Options(/*max_chunks=*/4));
  for (int i = 0; i < 4; ++i) PutOk(Key(i));  // all of dir/object-0
  tier_->Pin("bucket", "dir/object-0");
  EXPECT_EQ(tier_->Put(Key(4), Bytes(Key(4))).kind(), ErrorKind::kNoSpace);
  tier_->Unpin("bucket", "dir/object-0");
  PutOk(Key(4));
  EXPECT_FALSE(Has(Key(0)));
  // Pinned chunks are skipped, others evicted in LRU order.
  tier_->Pin("bucket", "dir/object-0");
  PutOk(Key(5));
  EXPECT_TRUE(Has(Key(1)));
  EXPECT_FALSE(Has(Key(4)));
  tier_->Unpin("bucket", "dir/object-0");
}

TEST_F(DiskTierTest, Erase) {
  Open();
  for (int i = 0; i < 8; ++i) PutOk(Key(i));  // objects 0 and 1
  PutOk(Key(0, "etag-2"));                    // another version of object 0
  ASSERT_TRUE(tier_->Erase(Key(5)).ok());
  EXPECT_FALSE(Has(Key(5)));
  ASSERT_TRUE(tier_->Erase(Key(5)).ok());  // nothing to do
  EXPECT_EQ(tier_->chunk_count(), 8u);
  EXPECT_EQ(FilesOnDisk(), 8u);
  EXPECT_TRUE(Has(Key(0, "etag-2")));
  for (int i : {0, 1, 2, 3, 4, 6, 7}) EXPECT_TRUE(Has(Key(i)));
  EXPECT_EQ(QueryIndex("SELECT count(*) FROM chunks"), 8);
}

TEST_F(DiskTierTest, AccessTimesAreBatched) {
  Open();
  for (int i = 0; i < 5; ++i) PutOk(Key(i));
  ASSERT_TRUE(tier_->FlushAccessTimes().ok());
  const uint64_t transactions = tier_->index_transactions();
  const int64_t before = LastAccess(Key(0));
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Has(Key(i)));
  }
  clock_.Advance(std::chrono::milliseconds(999));
  EXPECT_TRUE(Has(Key(0)));
  EXPECT_EQ(tier_->index_transactions(), transactions);
  EXPECT_EQ(LastAccess(Key(0)), before);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(Has(Key(1)));  // due: this Get flushes all 501 accesses in one transaction
  EXPECT_EQ(tier_->index_transactions(), transactions + 1);
  EXPECT_GT(LastAccess(Key(0)), before);
  EXPECT_GT(LastAccess(Key(1)), LastAccess(Key(0)));
  // The destructor flushes what is pending.
  const int64_t key2 = LastAccess(Key(2));
  EXPECT_TRUE(Has(Key(2)));
  tier_.reset();
  EXPECT_GT(LastAccess(Key(2)), key2);
}

TEST_F(DiskTierTest, WriteFailureLeavesNothingBehind) {
  Open();
  PutOk(Key(0));
  // Files may not grow past 1 KiB: the chunk write fails with EFBIG.
  struct sigaction ignore = {}, previous = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status st = tier_->Put(Key(1), Bytes(Key(1)));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &previous, nullptr), 0);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(stats_.disk_write_failures.load(), 1u);
  EXPECT_EQ(FilesOnDisk(), 1u);  // no temp file, no partial chunk
  EXPECT_EQ(tier_->chunk_count(), 1u);
  EXPECT_EQ(tier_->used_bytes(), kChunk);
  EXPECT_FALSE(Has(Key(1)));
  PutOk(Key(1));
  EXPECT_TRUE(Has(Key(1)));
}

TEST_F(DiskTierTest, RootIsPrivate) {
  Open();
  EXPECT_EQ(fs::status(root_).permissions(), fs::perms::owner_all);
  tier_.reset();
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  Open();
  EXPECT_EQ(fs::status(root_).permissions(), fs::perms::owner_all);
  EXPECT_EQ(fs::status(root_ + "/chunks").permissions(), fs::perms::owner_all);
}

TEST_F(DiskTierTest, ConcurrentReadersAndWriters) {
  constexpr int kThreads = 8;
  constexpr int kKeys = 64;
  constexpr int kOps = 1500;
  Open(Options(/*max_chunks=*/16));
  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int op = 0; op < kOps; ++op) {
        const ChunkKey key = Key(static_cast<int>(rng() % kKeys));
        const unsigned dice = rng() % 100;
        if (dice < 45) {
          Result<std::optional<ChunkData>> got = tier_->Get(key);
          if (!got.ok()) {
            ++errors;
          } else if (got->has_value() && ***got != *Bytes(key)) {
            ++wrong;
          }
        } else if (dice < 90) {
          if (!tier_->Put(key, Bytes(key)).ok()) ++errors;
        } else if (dice < 99) {
          if (!tier_->Erase(key).ok()) ++errors;
        } else {
          clock_.Advance(std::chrono::milliseconds(500));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(tier_->used_bytes(), 16u * kChunk);
  EXPECT_EQ(tier_->used_bytes(), tier_->chunk_count() * kChunk);
  const uint64_t count = tier_->chunk_count();
  EXPECT_EQ(FilesOnDisk(), count);
  tier_.reset();
  EXPECT_EQ(QueryIndex("SELECT count(*) FROM chunks"), static_cast<int64_t>(count));
  Open(Options(/*max_chunks=*/16));
  EXPECT_EQ(tier_->chunk_count(), count);
  EXPECT_EQ(stats_.disk_checksum_failures.load(), 0u);
}

}  // namespace
}  // namespace strata
