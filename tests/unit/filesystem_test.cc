// The Filesystem core driven without a kernel: a MemoryStore, the real fetcher and memory tier.
#include "fs/filesystem.h"

#include <gtest/gtest.h>

#include "cache/chunk_fetcher.h"
#include "cache/memory_tier.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

using std::chrono::milliseconds;

class FilesystemTest : public ::testing::Test {
 protected:
  FilesystemTest()
      : metadata_(
            store_, clock_,
            MetadataOptions{.bucket = "b", .prefix = "root/", .attr_ttl = milliseconds(1000)}),
        memory_(MemoryTier::Options{.budget_bytes = 64 << 20}, stats_),
        fetcher_(store_, {&memory_}, ChunkFetcher::Options{.chunk_size = 1024}, stats_),
        fs_(
            metadata_,
            [this](const ObjectVersion& v) {
              return std::make_unique<ReadStream>(fetcher_, v, ReadStream::Options{});
            },
            [this] { return stats_.Format(); },
            FilesystemOptions{.uid = 1234, .gid = 5678, .umask = 027}) {}

  void Put(const std::string& key, const std::string& body, Metadata meta = {}) {
    ASSERT_TRUE(store_.Put(key, body, PutOptions{.metadata = std::move(meta)}).ok());
  }
  std::string ReadAll(uint64_t ino) {
    Result<OpenReply> open = fs_.Open(ino);
    EXPECT_TRUE(open.ok()) << open.status().ToString();
    if (!open.ok()) return "";
    std::string out;
    char buffer[700];
    for (uint64_t offset = 0;;) {
      Result<size_t> n = fs_.Read(open->handle, offset, std::span<char>(buffer, sizeof buffer));
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      out.append(buffer, *n);
      offset += *n;
    }
    fs_.Release(open->handle);
    return out;
  }

  MemoryStore store_;
  FakeClock clock_;
  CacheStats stats_;
  MetadataCache metadata_;
  MemoryTier memory_;
  ChunkFetcher fetcher_;
  Filesystem fs_;
};

TEST_F(FilesystemTest, LookupGetAttrAndRead) {
  std::string body(5000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  Put("root/dir/file.txt", body);
  Put("outside", "not in the mount");
  Result<EntryReply> dir = fs_.Lookup(InodeTable::kRootInode, "dir");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_TRUE(S_ISDIR(dir->attr.st_mode));
  EXPECT_EQ(dir->attr.st_mode & 07777, 0750u);
  Result<EntryReply> file = fs_.Lookup(dir->ino, "file.txt");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(S_ISREG(file->attr.st_mode));
  EXPECT_EQ(file->attr.st_mode & 07777, 0640u);
  EXPECT_EQ(file->attr.st_size, 5000);
  EXPECT_EQ(file->attr.st_uid, 1234u);
  EXPECT_EQ(file->attr.st_gid, 5678u);
  EXPECT_EQ(ReadAll(file->ino), body);
  EXPECT_EQ(fs_.Lookup(InodeTable::kRootInode, "outside").status().kind(), ErrorKind::kNotFound);
  Result<struct stat> attr = fs_.GetAttr(file->ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->st_size, 5000);
}

TEST_F(FilesystemTest, LookupCountsFollowTheKernel) {
  Put("root/f", "x");
  Result<EntryReply> a = fs_.Lookup(InodeTable::kRootInode, "f");
  Result<EntryReply> b = fs_.Lookup(InodeTable::kRootInode, "f");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ino, b->ino);
  const size_t before = fs_.inode_count();
  fs_.Forget(a->ino, 1);
  EXPECT_EQ(fs_.inode_count(), before);
  fs_.Forget(a->ino, 1);
  EXPECT_EQ(fs_.inode_count(), before - 1);
  EXPECT_EQ(fs_.GetAttr(a->ino).status().kind(), ErrorKind::kNotFound);
}

TEST_F(FilesystemTest, ReadDirIsASnapshotWithLookupsPerEntry) {
  Put("root/a", "1");
  Put("root/b/c", "2");
  Result<uint64_t> handle = fs_.OpenDir(InodeTable::kRootInode);
  ASSERT_TRUE(handle.ok());
  Result<std::vector<DirEntryView>> entries = fs_.DirEntries(*handle, 0);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "a");
  EXPECT_EQ((*entries)[1].name, "b");
  EXPECT_EQ((*entries)[1].type, EntryType::kDirectory);
  Put("root/late", "3");  // not in the snapshot
  Result<std::vector<DirEntryView>> rest = fs_.DirEntries(*handle, 1);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EntryReply plus = fs_.EntryForReaddir(*handle, (*rest)[0]);
  Result<EntryReply> looked = fs_.Lookup(InodeTable::kRootInode, "b");
  ASSERT_TRUE(looked.ok());
  EXPECT_EQ(plus.ino, looked->ino);
  fs_.ReleaseDir(*handle);
}

TEST_F(FilesystemTest, ReadDirCarriesAttributesALookupLearnedSinceTheListing) {
  Put("root/link", "target", {{"mode", std::to_string(0120777)}});
  Put("root/plain", "x");
  auto entries_of_new_handle = [&](size_t max) {
    Result<uint64_t> handle = fs_.OpenDir(InodeTable::kRootInode);
    EXPECT_TRUE(handle.ok());
    Result<std::vector<DirEntryView>> entries = fs_.DirEntries(*handle, 0, max);
    EXPECT_TRUE(entries.ok());
    fs_.ReleaseDir(*handle);
    return entries.ok() ? *entries : std::vector<DirEntryView>{};
  };
  std::vector<DirEntryView> listed = entries_of_new_handle(SIZE_MAX);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_FALSE(listed[0].attributes_known) << "no HEAD yet: the kernel must look it up";
  EXPECT_FALSE(listed[1].attributes_known);
  ASSERT_TRUE(fs_.Lookup(InodeTable::kRootInode, "link").ok());  // HEADs it

  // The same cached listing, but what the lookup learned comes with it: no lookup needed.
  listed = entries_of_new_handle(SIZE_MAX);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "link");
  EXPECT_TRUE(listed[0].attributes_known);
  EXPECT_EQ(listed[0].type, EntryType::kSymlink);
  EXPECT_FALSE(listed[1].attributes_known);
  EXPECT_EQ(entries_of_new_handle(1).size(), 1u) << "at most `max` entries";

  // Another version of the object: what was learned of the old one no longer applies.
  clock_.Advance(std::chrono::seconds(2));
  Put("root/link", "other", {{"mode", std::to_string(0100644)}});
  listed = entries_of_new_handle(SIZE_MAX);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_FALSE(listed[0].attributes_known);
}

TEST_F(FilesystemTest, ChangedObjectFailsReadsOfTheOldVersion) {
  Put("root/f", std::string(4000, 'o'));
  Result<EntryReply> f = fs_.Lookup(InodeTable::kRootInode, "f");
  ASSERT_TRUE(f.ok());
  Result<OpenReply> open = fs_.Open(f->ino);
  ASSERT_TRUE(open.ok());
  Put("root/f", std::string(4000, 'n'));
  char buffer[100];
  Result<size_t> n = fs_.Read(open->handle, 2048, std::span<char>(buffer, sizeof buffer));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().kind(), ErrorKind::kPreconditionFailed);
  fs_.Release(open->handle);
  // The failed read forgot the old version: a reopen sees the new one without waiting for
  // the attribute TTL.
  EXPECT_EQ(ReadAll(f->ino), std::string(4000, 'n'));
}

TEST_F(FilesystemTest, KeepCacheOnlyForAnUnchangedVersion) {
  Put("root/f", "one");
  Result<EntryReply> f = fs_.Lookup(InodeTable::kRootInode, "f");
  ASSERT_TRUE(f.ok());
  Result<OpenReply> first = fs_.Open(f->ino);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->keep_cache);
  fs_.Release(first->handle);
  Result<OpenReply> second = fs_.Open(f->ino);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->keep_cache);
  fs_.Release(second->handle);
  Put("root/f", "two");
  clock_.Advance(milliseconds(1001));
  Result<OpenReply> third = fs_.Open(f->ino);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->keep_cache);
  fs_.Release(third->handle);
}

TEST_F(FilesystemTest, SymlinkFromS3fsMetadata) {
  Put("root/link", "dir/target", {{"mode", std::to_string(0120777)}});
  ASSERT_TRUE(metadata_.Revalidate("link").ok());  // a HEAD makes the mode known
  Result<EntryReply> link = fs_.Lookup(InodeTable::kRootInode, "link");
  ASSERT_TRUE(link.ok());
  EXPECT_TRUE(S_ISLNK(link->attr.st_mode));
  Result<std::string> target = fs_.ReadLink(link->ino);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(*target, "dir/target");
}

TEST_F(FilesystemTest, KeysOverTheS3LimitAreNameTooLong) {
  Result<EntryReply> dir = fs_.Lookup(InodeTable::kRootInode, std::string(256, 'x'));
  EXPECT_EQ(dir.status().kind(), ErrorKind::kNameTooLong);
}

TEST_F(FilesystemTest, StatsTextHasEveryCounter) {
  const std::string text = fs_.control().StatsText();
  for (const char* name :
       {"inodes", "metadata_list_requests", "memory_hits", "s3_gets", "readahead_hits",
        "disk_checksum_failures", "disk_range_hits", "disk_range_bytes_read", "s3_range_gets"}) {
    EXPECT_NE(text.find(std::string(name) + " "), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace strata
