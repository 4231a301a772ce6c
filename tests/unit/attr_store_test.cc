#include "cache/attr_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace strata {
namespace {

namespace fs = std::filesystem;

KnownVersion Version(std::string etag, std::string mode = "33188") {
  KnownVersion version;
  version.etag = std::move(etag);
  version.metadata = {{"mode", std::move(mode)},
                      {"uid", "1000"},
                      {"gid", "100"},
                      {"mtime", "1700000000.123456789"}};
  version.content_type = "application/octet-stream";
  return version;
}

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

// Runs `sql` on a connection of its own to `path`; returns the rows, columns joined by '|' and
// rows by '\n'.
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string out;
  char* error = nullptr;
  const int rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* result, int columns, char** values, char**) {
        std::string& text = *static_cast<std::string*>(result);
        if (!text.empty()) text += '\n';
        for (int i = 0; i < columns; ++i) {
          if (i > 0) text += '|';
          text += values[i] == nullptr ? "NULL" : values[i];
        }
        return 0;
      },
      &out, &error);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
  return out;
}

class AttrStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-attr-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    path_ = dir + "/attrs.db";
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Open(size_t max_entries = 500000) {
    store_.reset();
    Result<std::unique_ptr<AttrStore>> store =
        AttrStore::Open({.path = path_, .max_entries = max_entries});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  // Keys of Children(dir), in order.
  std::vector<std::string> ChildKeys(std::string_view dir) {
    std::vector<std::string> keys;
    for (const auto& [key, version] : store_->Children(dir)) keys.push_back(key);
    return keys;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<AttrStore> store_;
};

TEST_F(AttrStoreTest, GetAnswersOnlyAtTheStoredEtag) {
  Open();
  EXPECT_EQ(store_->Get("a/x", "e1"), std::nullopt);
  store_->Put("a/x", Version("e1"));
  std::optional<KnownVersion> got = store_->Get("a/x", "e1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Version("e1"));
  EXPECT_EQ(got->symlink_target, std::nullopt);
  EXPECT_EQ(store_->Get("a/x", "e2"), std::nullopt);
  EXPECT_EQ(store_->Get("a/x", ""), std::nullopt);
  EXPECT_EQ(store_->Get("a/y", "e1"), std::nullopt);
  EXPECT_EQ(store_->Get("a/", "e1"), std::nullopt);
  const AttrStore::Counters counters = store_->counters();
  EXPECT_EQ(counters.hits, 1u);
  EXPECT_EQ(counters.misses, 5u);
  EXPECT_EQ(counters.writes, 1u);
  EXPECT_EQ(counters.errors, 0u);
  EXPECT_EQ(counters.rebuilds, 0u);
}

TEST_F(AttrStoreTest, SecondPutReplacesTheFirst) {
  Open();
  store_->Put("k", Version("e1", "33188"));
  store_->Put("k", Version("e2", "33261"));
  EXPECT_EQ(store_->size(), 1u);
  EXPECT_EQ(store_->Get("k", "e1"), std::nullopt);
  std::optional<KnownVersion> got = store_->Get("k", "e2");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->metadata.at("mode"), "33261");
  // Fewer metadata entries replace more, rather than merging with them.
  KnownVersion bare;
  bare.etag = "e3";
  store_->Put("k", bare);
  got = store_->Get("k", "e3");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, bare);
  EXPECT_EQ(store_->size(), 1u);
}

TEST_F(AttrStoreTest, ParentOf) {
  EXPECT_EQ(AttrStore::ParentOf("a/d/x"), "a/d/");
  EXPECT_EQ(AttrStore::ParentOf("a/d/"), "a/");
  EXPECT_EQ(AttrStore::ParentOf("a/"), "");
  EXPECT_EQ(AttrStore::ParentOf("x"), "");
  EXPECT_EQ(AttrStore::ParentOf(""), "");
  EXPECT_EQ(AttrStore::ParentOf("a//"), "a/");
}

TEST_F(AttrStoreTest, ChildrenAreOneLevelDeepAndIncludeMarkers) {
  Open();
  for (const char* key :
       {"a/", "a/x", "a/d/", "a/d/y", "a/e/f/", "a/e/f/g", "ax", "b", "c/", "c/z", "a-b/q"}) {
    store_->Put(key, Version(std::string("etag-") + key));
  }
  EXPECT_EQ(ChildKeys("a/"), (std::vector<std::string>{"a/d/", "a/x"}));
  EXPECT_EQ(ChildKeys(""), (std::vector<std::string>{"a/", "ax", "b", "c/"}));
  EXPECT_EQ(ChildKeys("a/d/"), (std::vector<std::string>{"a/d/y"}));
  EXPECT_EQ(ChildKeys("a/e/"), (std::vector<std::string>{"a/e/f/"}));
  EXPECT_EQ(ChildKeys("a/e/f/"), (std::vector<std::string>{"a/e/f/g"}));
  EXPECT_EQ(ChildKeys("c/"), (std::vector<std::string>{"c/z"}));
  EXPECT_TRUE(ChildKeys("nothing/").empty());
  std::map<std::string, KnownVersion> children = store_->Children("a/");
  EXPECT_EQ(children.at("a/x"), Version("etag-a/x"));
  EXPECT_EQ(children.at("a/d/"), Version("etag-a/d/"));
}

TEST_F(AttrStoreTest, ChildrenOfTenThousandIsOneIndexedScan) {
  Open();
  std::vector<std::pair<std::string, KnownVersion>> rows;
  for (int i = 0; i < 10000; ++i) {
    rows.emplace_back("big/file-" + std::to_string(i), Version("e" + std::to_string(i)));
    rows.emplace_back("big/sub/file-" + std::to_string(i), Version("s" + std::to_string(i)));
  }
  store_->PutMany(rows);
  ASSERT_EQ(store_->size(), 20000u);
  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, KnownVersion> children = store_->Children("big/");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(children.size(), 10000u);
  EXPECT_EQ(children.at("big/file-1234").etag, "e1234");
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  // The plan seeks the primary key by parent rather than scanning the table.
  store_.reset();
  const std::string plan =
      RawQuery(path_, "EXPLAIN QUERY PLAN SELECT key, etag FROM attrs WHERE parent = x'62'");
  EXPECT_NE(plan.find("USING PRIMARY KEY (parent=?)"), std::string::npos) << plan;
}

TEST_F(AttrStoreTest, SurvivesReopen) {
  Open();
  KnownVersion link = Version("e-link");
  link.symlink_target = "../target/file";
  link.content_type = "text/plain";
  store_->Put("dir/link", link);
  store_->Put("dir/file", Version("e-file"));
  store_->Put("gone", Version("e-gone"));
  store_->Erase("gone");
  Open();
  EXPECT_EQ(store_->size(), 2u);
  EXPECT_EQ(store_->Get("dir/link", "e-link"), link);
  EXPECT_EQ(store_->Get("dir/file", "e-file"), Version("e-file"));
  EXPECT_EQ(store_->Get("gone", "e-gone"), std::nullopt);
  // Rows written after the reopen are newer than those before it (trimming goes by age).
  store_->Put("new", Version("e-new"));
  EXPECT_EQ(RawQuery(path_, "SELECT key FROM attrs ORDER BY written DESC LIMIT 1"), "new");
}

TEST_F(AttrStoreTest, EraseForgetsOnlyThatKey) {
  Open();
  store_->Put("a/x", Version("1"));
  store_->Put("a/y", Version("2"));
  store_->Erase("a/x");
  store_->Erase("a/never");
  EXPECT_EQ(store_->size(), 1u);
  EXPECT_EQ(store_->Get("a/x", "1"), std::nullopt);
  EXPECT_TRUE(store_->Get("a/y", "2").has_value());
  EXPECT_EQ(ChildKeys("a/"), (std::vector<std::string>{"a/y"}));
}

TEST_F(AttrStoreTest, OldestWrittenRowsAreTrimmedPastTheBound) {
  Open(/*max_entries=*/100);
  for (int i = 0; i < 100; ++i) store_->Put("k" + std::to_string(i), Version("e"));
  EXPECT_EQ(store_->size(), 100u);
  store_->Put("k0", Version("e2"));  // a rewrite makes k0 the newest row and adds none
  EXPECT_EQ(store_->size(), 100u);
  store_->Put("k100", Version("e"));  // 101 rows: the 11 oldest go, leaving 90
  EXPECT_EQ(store_->size(), 90u);
  EXPECT_TRUE(store_->Get("k0", "e2").has_value());
  for (int i = 1; i <= 11; ++i) EXPECT_FALSE(store_->Get("k" + std::to_string(i), "e")) << i;
  for (int i = 12; i <= 100; ++i) EXPECT_TRUE(store_->Get("k" + std::to_string(i), "e")) << i;
  store_.reset();
  EXPECT_EQ(RawQuery(path_, "SELECT count(*) FROM attrs"), "90");
  // The bound holds for one large batch too, and the count survives a reopen.
  Open(/*max_entries=*/100);
  EXPECT_EQ(store_->size(), 90u);
  std::vector<std::pair<std::string, KnownVersion>> rows;
  for (int i = 0; i < 250; ++i) rows.emplace_back("batch" + std::to_string(i), Version("b"));
  store_->PutMany(rows);
  EXPECT_EQ(store_->size(), 90u);
  EXPECT_TRUE(store_->Get("batch249", "b").has_value());
  EXPECT_TRUE(store_->Get("batch160", "b").has_value());
  EXPECT_FALSE(store_->Get("batch159", "b").has_value());
  EXPECT_FALSE(store_->Get("k100", "e").has_value());
}

TEST_F(AttrStoreTest, PutManyWritesEveryRowInOneTransaction) {
  Open();
  store_->Put("d/old", Version("old"));
  std::vector<std::pair<std::string, KnownVersion>> rows = {
      {"d/a", Version("a")},
      {"d/b", Version("b")},
      {"d/old", Version("new")},
      {"d/a", Version("a2")}};  // the later of two rows for a key wins
  store_->PutMany(rows);
  store_->PutMany({});
  EXPECT_EQ(store_->size(), 3u);
  EXPECT_EQ(store_->Get("d/a", "a2"), Version("a2"));
  EXPECT_EQ(store_->Get("d/a", "a"), std::nullopt);
  EXPECT_EQ(store_->Get("d/b", "b"), Version("b"));
  EXPECT_EQ(store_->Get("d/old", "new"), Version("new"));
  EXPECT_EQ(store_->counters().writes, 5u);
  EXPECT_EQ(ChildKeys("d/"), (std::vector<std::string>{"d/a", "d/b", "d/old"}));
}

TEST_F(AttrStoreTest, SymlinkTargetRoundTrips) {
  Open();
  KnownVersion link = Version("l1");
  link.symlink_target = "../some where/ünï\ncode%2F";
  KnownVersion empty_target = Version("l2");
  empty_target.symlink_target = "";  // known and empty is not the same as unknown
  store_->Put("link", link);
  store_->Put("empty", empty_target);
  store_->Put("plain", Version("p"));
  EXPECT_EQ(store_->Get("link", "l1")->symlink_target, link.symlink_target);
  EXPECT_EQ(store_->Get("empty", "l2")->symlink_target, std::optional<std::string>(""));
  EXPECT_EQ(store_->Get("plain", "p")->symlink_target, std::nullopt);
  std::map<std::string, KnownVersion> children = store_->Children("");
  EXPECT_EQ(children.at("link").symlink_target, link.symlink_target);
  EXPECT_EQ(children.at("empty").symlink_target, std::optional<std::string>(""));
  EXPECT_EQ(children.at("plain").symlink_target, std::nullopt);
}

TEST_F(AttrStoreTest, OddBytesInKeysAndMetadataRoundTrip) {
  Open();
  const std::vector<std::string> keys = {"dir with space/file name ",
                                         "ünïcødé ☃/fïlé",
                                         "100%/a%2Fb%",
                                         "line\nbreak/x\ry",
                                         "tab\there/'quote\"",
                                         "dir with space/sub dir/",
                                         std::string("nul\0inside", 10)};
  KnownVersion odd = Version("etag\"with-quote-3");
  odd.metadata["empty"] = "";
  odd.metadata["binary"] = std::string("\0\1\2\xff", 4);
  odd.metadata[std::string("name\0x", 6)] = std::string(100000, 'v');
  odd.content_type = "text/plain; charset=utf-8";
  for (const std::string& key : keys) store_->Put(key, odd);
  Open();
  for (const std::string& key : keys) EXPECT_EQ(store_->Get(key, odd.etag), odd) << key;
  EXPECT_EQ(ChildKeys("dir with space/"),
            (std::vector<std::string>{"dir with space/file name ", "dir with space/sub dir/"}));
  EXPECT_EQ(ChildKeys("ünïcødé ☃/"), (std::vector<std::string>{"ünïcødé ☃/fïlé"}));
  EXPECT_EQ(ChildKeys("line\nbreak/"), (std::vector<std::string>{"line\nbreak/x\ry"}));
  EXPECT_EQ(ChildKeys("100%/"), (std::vector<std::string>{"100%/a%2Fb%"}));
  // '%' and '_' are not wildcards: "100%/" must not match "1000/".
  store_->Put("1000/z", odd);
  EXPECT_EQ(ChildKeys("100%/"), (std::vector<std::string>{"100%/a%2Fb%"}));
}

TEST_F(AttrStoreTest, FileIsPrivate) {
  Open();
  store_->Put("k", Version("e"));
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  if (::stat((path_ + "-wal").c_str(), &st) == 0) {
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
}

TEST_F(AttrStoreTest, GarbageFileIsMovedAsideAndStartedAfresh) {
  Open();
  store_->Put("k", Version("e"));
  store_.reset();
  WriteFile(path_, std::string(8192, 'x'));
  Open();
  EXPECT_TRUE(fs::exists(path_ + ".corrupt"));
  EXPECT_EQ(store_->counters().rebuilds, 1u);
  EXPECT_EQ(store_->size(), 0u);
  EXPECT_EQ(store_->Get("k", "e"), std::nullopt);
  store_->Put("k2", Version("e2"));
  EXPECT_EQ(store_->Get("k2", "e2"), Version("e2"));
  Open();  // and the new file is sound
  EXPECT_EQ(store_->counters().rebuilds, 0u);
  EXPECT_EQ(store_->Get("k2", "e2"), Version("e2"));
}

TEST_F(AttrStoreTest, TruncatedFileIsStartedAfresh) {
  Open();
  std::vector<std::pair<std::string, KnownVersion>> rows;
  for (int i = 0; i < 5000; ++i) rows.emplace_back("d/key-" + std::to_string(i), Version("e"));
  store_->PutMany(rows);
  store_.reset();  // the last close checkpoints the WAL into the file and deletes it
  ASSERT_FALSE(fs::exists(path_ + "-wal"));
  const uintmax_t size = fs::file_size(path_);
  ASSERT_GT(size, 100000u);
  fs::resize_file(path_, size / 2);
  Open();
  EXPECT_EQ(store_->counters().rebuilds, 1u);
  EXPECT_EQ(store_->size(), 0u);
  EXPECT_TRUE(store_->Children("d/").empty());
  store_->Put("d/key-1", Version("e"));
  EXPECT_EQ(store_->Get("d/key-1", "e"), Version("e"));
}

TEST_F(AttrStoreTest, DatabaseOfAnotherSchemaIsStartedAfresh) {
  RawQuery(path_, "CREATE TABLE attrs (key TEXT); INSERT INTO attrs VALUES ('x');");
  Open();
  EXPECT_EQ(store_->counters().rebuilds, 1u);
  EXPECT_EQ(store_->size(), 0u);
  store_->Put("x", Version("e"));
  EXPECT_EQ(store_->Get("x", "e"), Version("e"));
}

TEST_F(AttrStoreTest, UnreadableFileIsStartedAfresh) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a file of mode 0000";
  Open();
  store_->Put("k", Version("e"));
  store_.reset();
  ASSERT_EQ(::chmod(path_.c_str(), 0), 0);
  Open();
  EXPECT_EQ(store_->counters().rebuilds, 1u);
  store_->Put("k", Version("e"));
  EXPECT_EQ(store_->Get("k", "e"), Version("e"));
}

TEST_F(AttrStoreTest, DirectoryInPlaceOfTheFileIsMovedAside) {
  ASSERT_TRUE(fs::create_directory(path_));
  Open();
  EXPECT_EQ(store_->counters().rebuilds, 1u);
  EXPECT_TRUE(fs::is_directory(path_ + ".corrupt"));
  store_->Put("k", Version("e"));
  EXPECT_EQ(store_->Get("k", "e"), Version("e"));
}

TEST_F(AttrStoreTest, CorruptionFoundAfterOpenRebuilds) {
  Open();
  store_->Put("a/x", Version("e"));
  // Another connection points the table at a page past the end of the file. This connection
  // sees the schema change at its next statement and SQLite reports SQLITE_CORRUPT.
  RawQuery(path_,
           "PRAGMA writable_schema = ON;"
           "UPDATE sqlite_master SET rootpage = 100000 WHERE name = 'attrs';"
           "PRAGMA schema_version = 1000;");
  EXPECT_EQ(store_->Get("a/x", "e"), std::nullopt);  // answered as unknown, not a failure
  AttrStore::Counters counters = store_->counters();
  EXPECT_EQ(counters.rebuilds, 1u);
  EXPECT_EQ(counters.errors, 1u);
  EXPECT_TRUE(fs::exists(path_ + ".corrupt"));
  // The store works again at once, and after a reopen.
  store_->Put("a/y", Version("e"));
  EXPECT_EQ(store_->Get("a/y", "e"), Version("e"));
  EXPECT_EQ(ChildKeys("a/"), (std::vector<std::string>{"a/y"}));
  Open();
  EXPECT_EQ(store_->counters().rebuilds, 0u);
  EXPECT_EQ(ChildKeys("a/"), (std::vector<std::string>{"a/y"}));
}

TEST_F(AttrStoreTest, OpenFailsOnlyWhenTheDirectoryIsUnusable) {
  Result<std::unique_ptr<AttrStore>> store =
      AttrStore::Open({.path = dir_ + "/missing-dir/attrs.db"});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("missing-dir"), std::string::npos)
      << store.status().ToString();
}

TEST_F(AttrStoreTest, ConcurrentCallersSeeConsistentRows) {
  Open();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      const std::string dir = "t" + std::to_string(t) + "/";
      for (int i = 0; i < 200; ++i) {
        const std::string key = dir + std::to_string(i % 50);
        store_->Put(key, Version(std::to_string(i)));
        std::optional<KnownVersion> got = store_->Get(key, std::to_string(i));
        EXPECT_TRUE(got.has_value()) << key << " " << i;
        if (i % 20 == 0) {
          EXPECT_LE(store_->Children(dir).size(), 50u);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(store_->size(), 200u);
  EXPECT_EQ(store_->counters().errors, 0u);
}

}  // namespace
}  // namespace strata
