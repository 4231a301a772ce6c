#include "fs/metadata_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "backends/faulty_store.h"
#include "fs/inode_table.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

using std::chrono::milliseconds;

class MetadataCacheTest : public ::testing::Test {
 protected:
  MetadataCacheTest() {
    char pattern[] = "/tmp/strata-metadata-XXXXXX";
    dir_ = mkdtemp(pattern);
  }
  ~MetadataCacheTest() override {
    attrs_.reset();
    std::filesystem::remove_all(dir_);
  }
  MetadataCache MakeCache(std::string prefix = "", bool head_every_entry = false) {
    return MetadataCache(store_, clock_,
                         MetadataOptions{.bucket = "b",
                                         .prefix = std::move(prefix),
                                         .attr_ttl = milliseconds(1000),
                                         .negative_ttl = milliseconds(500),
                                         .head_every_entry = head_every_entry},
                         attrs_.get());
  }
  // An AttrStore for the caches made from now on; a new one on the same file is what a
  // restart finds.
  void OpenAttrStore() {
    attrs_.reset();
    Result<std::unique_ptr<AttrStore>> opened =
        AttrStore::Open(AttrStoreOptions{.path = dir_ + "/attrs.db"});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    attrs_ = std::move(*opened);
  }
  void Put(const std::string& key, const std::string& body = "x", Metadata meta = {}) {
    ASSERT_TRUE(store_.Put(key, body, PutOptions{.metadata = std::move(meta)}).ok());
  }

  std::string dir_;
  MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<AttrStore> attrs_;
};

TEST_F(MetadataCacheTest, ListingHasFilesDirectoriesAndMarkers) {
  Put("top.txt", "hello");
  Put("dir/a.txt");
  Put("dir/sub/b.txt");
  Put("marker/", "");
  Put("implicit/deep/c.txt");
  MetadataCache cache = MakeCache();
  auto root = cache.List("");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  const auto& e = (*root)->entries;
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e.at("top.txt").type, EntryType::kFile);
  EXPECT_EQ(e.at("top.txt").size, 5u);
  EXPECT_FALSE(e.at("top.txt").etag.empty());
  EXPECT_EQ(e.at("dir").type, EntryType::kDirectory);
  EXPECT_EQ(e.at("marker").type, EntryType::kDirectory);
  EXPECT_EQ(e.at("implicit").type, EntryType::kDirectory);

  auto marker = cache.List("marker");
  ASSERT_TRUE(marker.ok()) << marker.status().ToString();
  EXPECT_TRUE((*marker)->entries.empty());
  EXPECT_EQ(cache.List("nope").status().kind(), ErrorKind::kNotFound);
}

TEST_F(MetadataCacheTest, DirectoryWinsOverFileOfTheSameName) {
  Put("x");
  Put("x/inside");
  MetadataCache cache = MakeCache();
  auto root = cache.List("");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ((*root)->entries.at("x").type, EntryType::kDirectory);
  auto looked = cache.Lookup("", "x");
  ASSERT_TRUE(looked.ok());
  ASSERT_TRUE(looked->has_value());
  EXPECT_EQ((**looked).type, EntryType::kDirectory);
}

TEST_F(MetadataCacheTest, KeysThatCannotBeNamesAreSkipped) {
  Put("ok.txt");
  Put("a//b");
  Put("./dot");
  Put("../up");
  Put(std::string(300, 'n'));
  MetadataCache cache = MakeCache();
  auto root = cache.List("");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ((*root)->entries.count("ok.txt"), 1u);
  EXPECT_EQ((*root)->entries.count("."), 0u);
  EXPECT_EQ((*root)->entries.count(".."), 0u);
  EXPECT_EQ((*root)->entries.count(std::string(300, 'n')), 0u);
  auto a = cache.List("a");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE((*a)->entries.empty());  // "a//b" has an empty segment
}

TEST_F(MetadataCacheTest, PrefixIsTheRoot) {
  Put("outside.txt");
  Put("data/inside.txt");
  Put("data2/not-inside.txt");
  MetadataCache cache = MakeCache("data/");
  auto root = cache.List("");
  ASSERT_TRUE(root.ok());
  ASSERT_EQ((*root)->entries.size(), 1u);
  EXPECT_EQ((*root)->entries.begin()->first, "inside.txt");
  EXPECT_EQ(cache.KeyOf("inside.txt"), "data/inside.txt");
}

TEST_F(MetadataCacheTest, LookupUsesOneListAndCachesNegatives) {
  Put("dir/file");
  Put("dir/file.bak");
  Put("dir/file/child");  // "file" is also a directory: the directory wins
  Put("dir/other");
  MetadataCache cache = MakeCache();
  auto found = cache.Lookup("dir", "other");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((**found).type, EntryType::kFile);
  EXPECT_EQ(cache.counters().list_requests, 1u);
  EXPECT_EQ(store_.stats().head, 1u) << "one HEAD for a version never seen";

  auto file = cache.Lookup("dir", "file");
  ASSERT_TRUE(file.ok() && file->has_value());
  EXPECT_EQ((**file).type, EntryType::kDirectory);

  auto missing = cache.Lookup("dir", "missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  const uint64_t lists = cache.counters().list_requests;
  ASSERT_TRUE(cache.Lookup("dir", "missing").ok());
  EXPECT_EQ(cache.counters().list_requests, lists) << "negative answer not cached";
  clock_.Advance(milliseconds(600));  // past negative_ttl
  Put("dir/missing");
  auto appeared = cache.Lookup("dir", "missing");
  ASSERT_TRUE(appeared.ok());
  EXPECT_TRUE(appeared->has_value());
}

TEST_F(MetadataCacheTest, LookupAnswersFromAFreshListing) {
  for (int i = 0; i < 50; ++i) Put("d/f" + std::to_string(i));
  OpenAttrStore();
  {
    MetadataCache cache = MakeCache();
    ASSERT_TRUE(cache.List("d").ok());
    const uint64_t lists = cache.counters().list_requests;
    for (int i = 0; i < 50; ++i) {
      auto e = cache.Lookup("d", "f" + std::to_string(i));
      ASSERT_TRUE(e.ok() && e->has_value());
    }
    EXPECT_EQ(cache.counters().list_requests, lists);
    EXPECT_EQ(store_.stats().head, 50u) << "one HEAD per version never seen";
  }
  OpenAttrStore();  // a restart: every version is known
  MetadataCache cache = MakeCache();
  ASSERT_TRUE(cache.List("d").ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(cache.Lookup("d", "f" + std::to_string(i)).ok());
  EXPECT_EQ(store_.stats().head, 50u) << "no HEAD again for a known version";
}

TEST_F(MetadataCacheTest, KnownVersionsShowTheirAttributesAfterARestartWithoutHeads) {
  Put("d/fifo", "", {{"mode", "4516"}, {"uid", "7"}, {"gid", "8"}, {"mtime", "1.000000002"}});
  Put("d/link", "target", {{"mode", std::to_string(S_IFLNK | 0777)}});
  Put("d/sub/", "", {{"mode", std::to_string(S_IFDIR | 0750)}, {"uid", "9"}});
  Put("d/sub/x");
  OpenAttrStore();
  {
    // Without --head-attrs a listing asks nothing and marks what it does not know.
    MetadataCache cache = MakeCache();
    auto listing = cache.List("d");
    ASSERT_TRUE(listing.ok());
    EXPECT_EQ((*listing)->unknown, (std::set<std::string>{"fifo", "link", "sub"}));
    EXPECT_EQ((*listing)->entries.at("fifo").type, EntryType::kFile);  // not known yet
    EXPECT_EQ(store_.stats().head, 0u);
  }
  {
    MetadataCache cache = MakeCache("", /*head_every_entry=*/true);
    ASSERT_TRUE(cache.List("d").ok());
    EXPECT_EQ(store_.stats().head, 3u);
  }
  OpenAttrStore();
  MetadataCache cache = MakeCache();
  auto listing = cache.List("d");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(store_.stats().head, 3u) << "a restart knows every version";
  const auto& entries = (*listing)->entries;
  EXPECT_EQ(entries.at("fifo").type, EntryType::kFifo);
  EXPECT_EQ(entries.at("fifo").uid, 7u);
  EXPECT_EQ(entries.at("fifo").mtime.time_since_epoch(), std::chrono::nanoseconds(1000000002));
  EXPECT_EQ(entries.at("link").type, EntryType::kSymlink);
  EXPECT_EQ(entries.at("sub").type, EntryType::kDirectory);
  EXPECT_EQ(entries.at("sub").mode, 0750u);
  EXPECT_EQ(entries.at("sub").uid, 9u);
  EXPECT_TRUE((*listing)->unknown.empty());

  // Another writer replaces the object: its new version costs one HEAD, once.
  Put("d/fifo", "now a file", {{"mode", "33188"}});
  clock_.Advance(milliseconds(1001));
  auto replaced = cache.Lookup("d", "fifo");
  ASSERT_TRUE(replaced.ok() && replaced->has_value());
  EXPECT_EQ((**replaced).type, EntryType::kFile);
  EXPECT_EQ(store_.stats().head, 4u);
  clock_.Advance(milliseconds(1001));
  ASSERT_TRUE(cache.List("d").ok());
  ASSERT_TRUE(cache.Lookup("d", "fifo").ok());
  EXPECT_EQ(store_.stats().head, 4u);
}

TEST_F(MetadataCacheTest, ChangesShowAfterTheTtl) {
  Put("f", "one");
  MetadataCache cache = MakeCache();
  auto before = cache.List("");
  ASSERT_TRUE(before.ok());
  const std::string etag = (*before)->entries.at("f").etag;
  Put("f", "changed");
  auto cached = cache.List("");
  EXPECT_EQ((*cached)->entries.at("f").etag, etag);
  clock_.Advance(milliseconds(1001));
  auto after = cache.List("");
  EXPECT_NE((*after)->entries.at("f").etag, etag);
  EXPECT_EQ((*after)->entries.at("f").size, 7u);
}

// Stale-if-error: while S3 fails transiently, expired entries and listings are served (and
// counted) instead of an error; nothing waits for S3 once the cache knows it is failing; a probe
// in a thread of its own notices when S3 answers again.
TEST_F(MetadataCacheTest, ServesExpiredAnswersWhileS3FailsAndRecovers) {
  Put("d/f", "one");
  FaultyStore faulty(store_);
  MetadataCache cache(
      faulty, clock_,
      MetadataOptions{
          .bucket = "b", .attr_ttl = milliseconds(1000), .negative_ttl = milliseconds(500)});
  Result<std::optional<EntryInfo>> fresh = cache.Lookup("d", "f");
  ASSERT_TRUE(fresh.ok() && fresh->has_value()) << fresh.status().ToString();
  ASSERT_TRUE(cache.List("d").ok());
  EXPECT_FALSE(cache.counters().degraded);

  faulty.FailAll();
  clock_.Advance(milliseconds(1001));
  Result<std::optional<EntryInfo>> stale = cache.Lookup("d", "f");
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  ASSERT_TRUE(stale->has_value());
  EXPECT_EQ((*stale)->etag, (*fresh)->etag);
  EXPECT_TRUE(cache.counters().degraded);
  Result<std::shared_ptr<const DirListing>> listing = cache.List("d");
  ASSERT_TRUE(listing.ok()) << listing.status().ToString();
  EXPECT_TRUE((*listing)->entries.contains("f"));
  Result<std::shared_ptr<const DirListing>> never_seen = cache.List("elsewhere");
  ASSERT_FALSE(never_seen.ok());
  EXPECT_TRUE(never_seen.status().retryable()) << never_seen.status().ToString();
  EXPECT_GE(cache.counters().stale_answers, 2u);

  faulty.Clear();
  Put("d/g", "two");
  for (int i = 0; i < 1000 && cache.counters().degraded; ++i) {
    clock_.Advance(MetadataCache::kProbeInterval);
    ASSERT_TRUE(cache.List("d").ok());  // starts a probe when none runs
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_FALSE(cache.counters().degraded) << "the probe saw S3 answer";
  clock_.Advance(milliseconds(1001));
  Result<std::shared_ptr<const DirListing>> after = cache.List("d");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE((*after)->entries.contains("g")) << "fetched afresh once S3 answers";
}

TEST_F(MetadataCacheTest, RevalidateHeadsAndHonoursS3fsAttributes) {
  Put("f", "x", {{"mode", "33184"}, {"uid", "1000"}, {"gid", "100"}, {"mtime", "1700000000.5"}});
  MetadataCache cache = MakeCache();
  auto info = cache.Revalidate("f");
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((**info).mode, 0640u);
  EXPECT_EQ((**info).uid, 1000u);
  EXPECT_EQ((**info).gid, 100u);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>((**info).mtime.time_since_epoch()).count(),
            1700000000500);
  EXPECT_EQ(store_.stats().head, 1u);
  auto gone = cache.Revalidate("nope");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_F(MetadataCacheTest, HeadEveryEntryFetchesAttributesInParallel) {
  for (int i = 0; i < 40; ++i) Put("d/f" + std::to_string(i), "x", {{"mode", "33261"}});
  MetadataCache cache(
      store_, clock_,
      MetadataOptions{.bucket = "b", .head_every_entry = true, .head_parallelism = 8});
  auto listing = cache.List("d");
  ASSERT_TRUE(listing.ok());
  for (const auto& [name, info] : (*listing)->entries) EXPECT_EQ(info.mode, 0755u) << name;
  EXPECT_EQ(store_.stats().head, 40u);
}

TEST(InodeTableTest, LookupCountsAndForget) {
  InodeTable table;
  const uint64_t a = table.Lookup("a", EntryType::kFile);
  EXPECT_EQ(table.Lookup("a", EntryType::kFile), a);
  EXPECT_EQ(table.Get(a)->lookups, 2u);
  table.Forget(a, 1);
  ASSERT_TRUE(table.Get(a).has_value());
  table.Forget(a, 1);
  EXPECT_FALSE(table.Get(a).has_value());
  const uint64_t again = table.Lookup("a", EntryType::kFile);
  EXPECT_NE(again, a) << "a forgotten inode number is not reused";
  table.Forget(InodeTable::kRootInode, 100);
  EXPECT_TRUE(table.Get(InodeTable::kRootInode).has_value());
}

TEST(InodeTableTest, TypeChangeGivesANewInode) {
  InodeTable table;
  const uint64_t file = table.Lookup("x", EntryType::kFile);
  const uint64_t dir = table.Lookup("x", EntryType::kDirectory);
  EXPECT_NE(file, dir);
  EXPECT_EQ(table.Get(file)->type, EntryType::kFile);  // lives until forgotten
  table.Forget(file, 1);
  EXPECT_FALSE(table.Get(file).has_value());
  EXPECT_EQ(table.Lookup("x", EntryType::kDirectory), dir);
}

}  // namespace
}  // namespace strata
