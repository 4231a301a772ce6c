// The write side of the Filesystem core without a kernel: a MemoryStore, a real staging area and
// upload queue in a temp directory. Changes must show at once (read-your-writes, before upload)
// and land in the store with s3fs attributes once the queue has run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "cache/chunk_fetcher.h"
#include "cache/memory_tier.h"
#include "fs/filesystem.h"
#include "fs/posix_error.h"
#include "tests/support/memory_store.h"

namespace strata {
namespace {

using std::chrono::milliseconds;
constexpr uint64_t kRoot = InodeTable::kRootInode;
constexpr Caller kAlice{1001, 2002};

class FilesystemWriteTest : public ::testing::Test {
 protected:
  FilesystemWriteTest() {
    char pattern[] = "/tmp/strata-fs-write-XXXXXX";
    dir_ = mkdtemp(pattern);
    metadata_ = std::make_unique<MetadataCache>(
        store_, clock_,
        MetadataOptions{.bucket = "b", .prefix = "root/", .attr_ttl = milliseconds(1000)});
    Reopen();
  }
  ~FilesystemWriteTest() override {
    queue_.reset();  // first: its workers call fs_
    fs_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A new Filesystem on the same staging and queue directories, as after a restart.
  void Reopen() {
    queue_.reset();  // first: its workers call fs_
    fs_.reset();
    Result<std::shared_ptr<StagingArea>> staging =
        StagingArea::Open(StagingOptions{.dir = dir_ + "/staging", .max_bytes = 64 << 20});
    ASSERT_TRUE(staging.ok()) << staging.status().ToString();
    Result<std::unique_ptr<UploadQueue>> queue = UploadQueue::Open(
        store_,
        UploadQueueOptions{.dir = dir_ + "/queue",
                           .multipart_threshold = 8 << 20,
                           .part_size = 5 << 20,
                           .on_done = [this](const QueueRecord& r, const std::string& etag) {
                             if (fs_) fs_->OnUploaded(r, etag);
                           }});
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(*queue);
    fs_ = std::make_unique<Filesystem>(
        *metadata_,
        [this](const ObjectVersion& v) {
          return std::make_unique<ReadStream>(fetcher_, v, ReadStream::Options{});
        },
        nullptr, FilesystemOptions{.uid = 1234, .gid = 5678, .umask = 022},
        WriteServices{.staging = *staging,
                      .queue = queue_.get(),
                      .pin = [this](const std::string& key) -> std::function<void()> {
                        pins_.push_back(key);
                        return [this] { ++unpins_; };
                      }});
  }

  void Upload() {
    queue_->Start();
    ASSERT_TRUE(queue_->Drain(std::chrono::seconds(10)).ok());
  }
  void Put(const std::string& key, const std::string& body) {
    ASSERT_TRUE(store_.Put(key, body, {}).ok());
  }
  std::optional<std::string> Object(const std::string& key) {
    Result<GetResult> got = store_.Get(key, {});
    if (!got.ok()) return std::nullopt;
    return got->body;
  }
  Metadata MetaOf(const std::string& key) {
    Result<ObjectInfo> head = store_.Head(key);
    return head.ok() ? head->metadata : Metadata{};
  }
  // Creates `name` under `parent` with `content`, then closes it (flush + release).
  uint64_t CreateFile(uint64_t parent, const std::string& name, const std::string& content) {
    auto created = fs_->Create(parent, name, 0640, O_WRONLY | O_CREAT, kAlice);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return 0;
    EXPECT_TRUE(fs_->Write(created->second.handle, 0, content).ok());
    EXPECT_TRUE(fs_->Flush(created->second.handle).ok());
    fs_->Release(created->second.handle);
    return created->first.ino;
  }
  Result<uint64_t> InoOf(uint64_t parent, const std::string& name) {
    Result<EntryReply> entry = fs_->Lookup(parent, name);
    if (!entry.ok()) return entry.status();
    return entry->ino;
  }
  std::string ReadAll(uint64_t ino) {
    Result<OpenReply> open = fs_->Open(ino);
    EXPECT_TRUE(open.ok()) << open.status().ToString();
    if (!open.ok()) return "";
    std::string out(1 << 20, '\0');
    Result<size_t> n = fs_->Read(open->handle, 0, std::span<char>(out.data(), out.size()));
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    fs_->Release(open->handle);
    return out;
  }
  std::vector<std::string> Names(uint64_t dir) {
    Result<uint64_t> handle = fs_->OpenDir(dir);
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    if (!handle.ok()) return {};
    std::vector<std::string> names;
    Result<std::vector<DirEntryView>> entries = fs_->DirEntries(*handle, 0);
    if (entries.ok()) {
      for (const DirEntryView& e : *entries) names.push_back(e.name);
    }
    fs_->ReleaseDir(*handle);
    return names;
  }

  std::string dir_;
  MemoryStore store_;
  FakeClock clock_;
  CacheStats stats_;
  std::unique_ptr<MetadataCache> metadata_;
  MemoryTier memory_{MemoryTier::Options{.budget_bytes = 16 << 20}, stats_};
  ChunkFetcher fetcher_{store_, {&memory_}, ChunkFetcher::Options{.chunk_size = 4096}, stats_};
  std::unique_ptr<UploadQueue> queue_;
  std::unique_ptr<Filesystem> fs_;
  std::vector<std::string> pins_;  // keys pinned in the (absent) disk cache
  int unpins_ = 0;
};

TEST_F(FilesystemWriteTest, NewFileIsVisibleBeforeUploadAndLandsWithS3fsAttributes) {
  const uint64_t ino = CreateFile(kRoot, "a.txt", "hello");
  EXPECT_EQ(ReadAll(ino), "hello");
  EXPECT_EQ(Names(kRoot), std::vector<std::string>{"a.txt"});
  Result<struct stat> st = fs_->GetAttr(ino);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 5);
  EXPECT_EQ(st->st_mode, S_IFREG | 0640);
  EXPECT_EQ(st->st_uid, kAlice.uid);
  EXPECT_FALSE(Object("root/a.txt")) << "not uploaded before the queue runs";

  Upload();
  EXPECT_EQ(Object("root/a.txt"), "hello");
  Metadata meta = MetaOf("root/a.txt");
  EXPECT_EQ(meta["mode"], std::to_string(S_IFREG | 0640));
  EXPECT_EQ(meta["uid"], "1001");
  EXPECT_EQ(meta["gid"], "2002");
  EXPECT_FALSE(meta["mtime"].empty());
  // Listings carry no metadata: the attributes this mount stored are remembered.
  clock_.Advance(std::chrono::seconds(2));
  Result<EntryReply> again = fs_->Lookup(kRoot, "a.txt");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->attr.st_mode, S_IFREG | 0640);
}

TEST_F(FilesystemWriteTest, PartialOverwriteKeepsTheRestOfTheObject) {
  Put("root/big", std::string(10000, 'a'));
  Result<uint64_t> ino = InoOf(kRoot, "big");
  ASSERT_TRUE(ino.ok());
  Result<OpenReply> open = fs_->Open(*ino, O_RDWR);
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  ASSERT_TRUE(fs_->Write(open->handle, 5000, std::string("XYZ")).ok());
  char buffer[4];
  Result<size_t> n = fs_->Read(open->handle, 4999, std::span<char>(buffer, 4));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buffer, 4), "aXYZ");
  ASSERT_TRUE(fs_->Flush(open->handle).ok());
  fs_->Release(open->handle);
  Upload();
  std::string expected(10000, 'a');
  expected.replace(5000, 3, "XYZ");
  EXPECT_EQ(Object("root/big"), expected);
}

TEST_F(FilesystemWriteTest, TruncAppendAndTruncate) {
  Put("root/f", "0123456789");
  Result<uint64_t> ino = InoOf(kRoot, "f");
  ASSERT_TRUE(ino.ok());
  Result<OpenReply> trunc = fs_->Open(*ino, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(trunc.ok());
  EXPECT_EQ(fs_->GetAttr(*ino)->st_size, 0);
  fs_->Release(trunc->handle);
  Result<OpenReply> append = fs_->Open(*ino, O_WRONLY | O_APPEND);
  ASSERT_TRUE(append.ok());
  ASSERT_TRUE(fs_->Write(append->handle, 0, std::string("ab")).ok());
  ASSERT_TRUE(fs_->Write(append->handle, 0, std::string("cd")).ok());
  ASSERT_TRUE(fs_->Flush(append->handle).ok());
  fs_->Release(append->handle);
  EXPECT_EQ(ReadAll(*ino), "abcd");
  ASSERT_TRUE(fs_->SetAttr(*ino, SetAttrRequest{.size = 6}, std::nullopt).ok());
  EXPECT_EQ(ReadAll(*ino), std::string("abcd\0\0", 6));
  Upload();
  EXPECT_EQ(Object("root/f"), std::string("abcd\0\0", 6));
}

TEST_F(FilesystemWriteTest, UnlinkCancelsThePendingUploadAndDeletes) {
  Put("root/old", "old");
  CreateFile(kRoot, "new", "new");
  ASSERT_TRUE(fs_->Unlink(kRoot, "new").ok());
  ASSERT_TRUE(fs_->Unlink(kRoot, "old").ok());
  EXPECT_TRUE(Names(kRoot).empty());
  EXPECT_TRUE(fs_->Lookup(kRoot, "old").status().IsNotFound());
  EXPECT_TRUE(fs_->Unlink(kRoot, "old").IsNotFound());
  Upload();
  EXPECT_FALSE(Object("root/new"));
  EXPECT_FALSE(Object("root/old"));
}

TEST_F(FilesystemWriteTest, UnlinkWhileOpenKeepsTheHandleWorking) {
  auto created = fs_->Create(kRoot, "tmp", 0600, O_RDWR | O_CREAT, kAlice);
  ASSERT_TRUE(created.ok());
  const uint64_t handle = created->second.handle;
  ASSERT_TRUE(fs_->Write(handle, 0, std::string("before ")).ok());
  ASSERT_TRUE(fs_->Unlink(kRoot, "tmp").ok());
  ASSERT_TRUE(fs_->Write(handle, 7, std::string("after")).ok());
  char buffer[32];
  Result<size_t> n = fs_->Read(handle, 0, std::span<char>(buffer, sizeof buffer));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buffer, *n), "before after");
  EXPECT_TRUE(fs_->GetAttr(created->first.ino).ok()) << "the open file keeps its attributes";
  ASSERT_TRUE(fs_->Flush(handle).ok());
  fs_->Release(handle);
  Upload();
  EXPECT_FALSE(Object("root/tmp"));
}

TEST_F(FilesystemWriteTest, UnlinkPinsTheCachedChunksOfOpenReadersUntilTheyClose) {
  const std::string body(10000, 'r');
  Put("root/read", body);
  Result<uint64_t> ino = InoOf(kRoot, "read");
  ASSERT_TRUE(ino.ok());
  Result<OpenReply> open = fs_->Open(*ino, O_RDONLY);
  ASSERT_TRUE(open.ok());
  ASSERT_TRUE(fs_->Unlink(kRoot, "read").ok());
  EXPECT_EQ(pins_, std::vector<std::string>{"root/read"});
  EXPECT_EQ(unpins_, 0);
  Upload();
  EXPECT_FALSE(Object("root/read"));
  std::string out(body.size(), '\0');
  Result<size_t> n = fs_->Read(open->handle, 0, std::span<char>(out.data(), out.size()));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(out.substr(0, *n), body) << "read from the cache after the object is gone";
  fs_->Release(open->handle);
  EXPECT_EQ(unpins_, 1);
}

TEST_F(FilesystemWriteTest, DirectoriesAndTheirErrors) {
  Result<EntryReply> dir = fs_->MkDir(kRoot, "d", 0750, kAlice);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(ToErrno(fs_->MkDir(kRoot, "d", 0750, kAlice).status()), EEXIST);
  CreateFile(dir->ino, "f", "x");
  EXPECT_EQ(ToErrno(fs_->RmDir(kRoot, "d")), ENOTEMPTY);
  EXPECT_EQ(ToErrno(fs_->Unlink(kRoot, "d")), EISDIR);
  Upload();
  Result<ObjectInfo> marker = store_.Head("root/d/");
  ASSERT_TRUE(marker.ok());
  EXPECT_EQ(marker->content_type, "application/x-directory");
  EXPECT_EQ(MetaOf("root/d/")["mode"], std::to_string(S_IFDIR | 0750));
  ASSERT_TRUE(fs_->Unlink(dir->ino, "f").ok());
  ASSERT_TRUE(fs_->RmDir(kRoot, "d").ok());
  EXPECT_TRUE(fs_->Lookup(kRoot, "d").status().IsNotFound());
  Upload();
  EXPECT_FALSE(Object("root/d/"));
}

TEST_F(FilesystemWriteTest, RenameFilesAndDirectories) {
  Put("root/up", "uploaded");
  Put("root/target", "replaced");
  Put("root/tree/a", "A");
  Put("root/tree/sub/b", "B");
  CreateFile(kRoot, "pending", "pending");
  ASSERT_TRUE(fs_->Rename(kRoot, "pending", kRoot, "moved", 0).ok());
  ASSERT_TRUE(fs_->Rename(kRoot, "up", kRoot, "target", 0).ok());
  EXPECT_EQ(ToErrno(fs_->Rename(kRoot, "moved", kRoot, "target", RENAME_NOREPLACE)), EEXIST);
  ASSERT_TRUE(fs_->Rename(kRoot, "tree", kRoot, "forest", 0).ok());
  EXPECT_EQ(Names(kRoot), (std::vector<std::string>{"forest", "moved", "target"}));
  Result<uint64_t> forest = InoOf(kRoot, "forest");
  ASSERT_TRUE(forest.ok());
  Result<uint64_t> sub = InoOf(*forest, "sub");
  ASSERT_TRUE(sub.ok());
  Result<uint64_t> b = InoOf(*sub, "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ReadAll(*b), "B");
  Upload();
  EXPECT_EQ(Object("root/moved"), "pending");
  EXPECT_FALSE(Object("root/pending"));
  EXPECT_EQ(Object("root/target"), "uploaded");
  EXPECT_FALSE(Object("root/up"));
  EXPECT_EQ(Object("root/forest/a"), "A");
  EXPECT_EQ(Object("root/forest/sub/b"), "B");
  EXPECT_FALSE(Object("root/tree/a"));
  EXPECT_FALSE(Object("root/tree/sub/b"));
}

TEST_F(FilesystemWriteTest, SymlinkChmodAndHardLimits) {
  Result<EntryReply> link = fs_->Symlink("../target", kRoot, "l", kAlice);
  ASSERT_TRUE(link.ok());
  Result<std::string> target = fs_->ReadLink(link->ino);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "../target");
  Put("root/plain", "body");
  Result<uint64_t> plain = InoOf(kRoot, "plain");
  ASSERT_TRUE(plain.ok());
  Result<struct stat> st = fs_->SetAttr(*plain, SetAttrRequest{.mode = 0600}, std::nullopt);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode, S_IFREG | 0600);
  Upload();
  EXPECT_EQ(Object("root/l"), "../target");
  EXPECT_TRUE(S_ISLNK(std::stoul(MetaOf("root/l")["mode"])));
  EXPECT_EQ(Object("root/plain"), "body");
  EXPECT_EQ(MetaOf("root/plain")["mode"], std::to_string(S_IFREG | 0600));
  const std::string long_name(256, 'n');
  EXPECT_EQ(ToErrno(fs_->MkDir(kRoot, long_name, 0700, kAlice).status()), ENAMETOOLONG);
}

TEST_F(FilesystemWriteTest, PendingChangesSurviveARestart) {
  CreateFile(kRoot, "kept", "acknowledged");
  ASSERT_TRUE(fs_->MkDir(kRoot, "dir", 0700, kAlice).ok());
  Reopen();  // nothing uploaded yet: the queue on disk holds it
  Result<uint64_t> ino = InoOf(kRoot, "kept");
  ASSERT_TRUE(ino.ok()) << ino.status().ToString();
  EXPECT_EQ(ReadAll(*ino), "acknowledged");
  EXPECT_TRUE(InoOf(kRoot, "dir").ok());
  Upload();
  EXPECT_EQ(Object("root/kept"), "acknowledged");
}

TEST_F(FilesystemWriteTest, ChmodOfACleanFileIsOneCopyInPlaceWithoutReupload) {
  Put("root/clean", "the body");
  Result<uint64_t> ino = InoOf(kRoot, "clean");
  ASSERT_TRUE(ino.ok());
  const uint64_t puts = store_.stats().put;
  Result<struct stat> st = fs_->SetAttr(*ino, SetAttrRequest{.mode = 0600}, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_mode, S_IFREG | 0600);
  EXPECT_EQ(st->st_size, 8);
  // Visible at once, in the attributes and in the listing, before the queue ran.
  EXPECT_EQ(fs_->GetAttr(*ino)->st_mode, S_IFREG | 0600);
  Result<uint64_t> dir = fs_->OpenDir(kRoot);
  ASSERT_TRUE(dir.ok());
  Result<std::vector<DirEntryView>> entries = fs_->DirEntries(*dir, 0);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].info.mode.value_or(0), 0600u);
  fs_->ReleaseDir(*dir);
  EXPECT_EQ(ReadAll(*ino), "the body");
  EXPECT_EQ(MetaOf("root/clean").count("mode"), 0u) << "not in S3 before the queue runs";

  Upload();
  EXPECT_EQ(store_.stats().put, puts) << "no body re-upload";
  EXPECT_EQ(store_.stats().copy, 1u);
  EXPECT_EQ(Object("root/clean"), "the body");
  EXPECT_EQ(MetaOf("root/clean")["mode"], std::to_string(S_IFREG | 0600));
  EXPECT_EQ(fs_->GetAttr(*ino)->st_mode, S_IFREG | 0600);
  clock_.Advance(std::chrono::seconds(2));  // the cached entries expire: listings show it too
  Result<EntryReply> again = fs_->Lookup(kRoot, "clean");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->attr.st_mode, S_IFREG | 0600);
}

TEST_F(FilesystemWriteTest, ChownThenUtimensOfACleanFileMergeIntoOneCopy) {
  Put("root/f", "body");
  Result<uint64_t> ino = InoOf(kRoot, "f");
  ASSERT_TRUE(ino.ok());
  ASSERT_TRUE(fs_->SetAttr(*ino, SetAttrRequest{.uid = 42, .gid = 43}, std::nullopt).ok());
  const TimePoint mtime = TimePoint(std::chrono::seconds(1700000000));
  Result<struct stat> st = fs_->SetAttr(*ino, SetAttrRequest{.mtime = mtime}, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_uid, 42u);
  EXPECT_EQ(st->st_mtime, 1700000000);
  EXPECT_EQ(queue_->List().size(), 1u) << "the second change merged into the first";
  Upload();
  EXPECT_EQ(store_.stats().copy, 1u);
  Metadata meta = MetaOf("root/f");
  EXPECT_EQ(meta["uid"], "42");
  EXPECT_EQ(meta["gid"], "43");
  EXPECT_EQ(meta["mtime"], "1700000000.000000000");
  EXPECT_EQ(Object("root/f"), "body");
}

TEST_F(FilesystemWriteTest, ChmodRacingAnotherWritersOverwriteKeepsTheirVersion) {
  Put("root/f", "ours");
  Result<uint64_t> ino = InoOf(kRoot, "f");
  ASSERT_TRUE(ino.ok());
  ASSERT_TRUE(fs_->SetAttr(*ino, SetAttrRequest{.mode = 0600}, std::nullopt).ok());
  ASSERT_TRUE(store_.Put("root/f", "theirs", PutOptions{.metadata = {{"mode", "33261"}}}).ok());
  Upload();
  EXPECT_EQ(Object("root/f"), "theirs");
  EXPECT_EQ(MetaOf("root/f")["mode"], "33261");
  EXPECT_EQ(store_.stats().copy, 0u);
  EXPECT_EQ(queue_->stats().depth, 0u);
  EXPECT_EQ(queue_->stats().dead_letters, 0u);
  EXPECT_NE(fs_->GetAttr(*ino)->st_mode, S_IFREG | 0600) << "the dropped change no longer shows";
}

TEST_F(FilesystemWriteTest, PendingChmodSurvivesARestart) {
  Put("root/f", "body");
  Result<uint64_t> ino = InoOf(kRoot, "f");
  ASSERT_TRUE(ino.ok());
  ASSERT_TRUE(fs_->SetAttr(*ino, SetAttrRequest{.mode = 0604}, std::nullopt).ok());
  Reopen();  // nothing uploaded yet: the queue on disk holds the change
  Result<EntryReply> entry = fs_->Lookup(kRoot, "f");
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  EXPECT_EQ(entry->attr.st_mode, S_IFREG | 0604);
  EXPECT_EQ(ReadAll(entry->ino), "body");
  Upload();
  EXPECT_EQ(MetaOf("root/f")["mode"], std::to_string(S_IFREG | 0604));
  EXPECT_EQ(store_.stats().copy, 1u);
  EXPECT_EQ(store_.stats().put, 1u) << "only the seeding put";
}

TEST_F(FilesystemWriteTest, ChmodOfAFileWithPendingContentOrATruncateStillPuts) {
  const uint64_t ino = CreateFile(kRoot, "new", "pending");
  ASSERT_TRUE(fs_->SetAttr(ino, SetAttrRequest{.mode = 0600}, std::nullopt).ok());
  Put("root/cut", "123456");
  Result<uint64_t> cut = InoOf(kRoot, "cut");
  ASSERT_TRUE(cut.ok());
  ASSERT_TRUE(fs_->SetAttr(*cut, SetAttrRequest{.size = 3, .mode = 0600}, std::nullopt).ok());
  Upload();
  EXPECT_EQ(store_.stats().copy, 0u);
  EXPECT_EQ(Object("root/new"), "pending");
  EXPECT_EQ(MetaOf("root/new")["mode"], std::to_string(S_IFREG | 0600));
  EXPECT_EQ(Object("root/cut"), "123");
  EXPECT_EQ(MetaOf("root/cut")["mode"], std::to_string(S_IFREG | 0600));
}

TEST_F(FilesystemWriteTest, ReadOnlyWithoutWriteServices) {
  Filesystem read_only(
      *metadata_,
      [this](const ObjectVersion& v) {
        return std::make_unique<ReadStream>(fetcher_, v, ReadStream::Options{});
      },
      nullptr, FilesystemOptions{});
  EXPECT_EQ(ToErrno(read_only.MkDir(kRoot, "d", 0700, kAlice).status()), EROFS);
  EXPECT_EQ(ToErrno(read_only.Create(kRoot, "f", 0600, O_WRONLY, kAlice).status()), EROFS);
}

TEST_F(FilesystemWriteTest, SpecialFilesAreEmptyObjectsWithTheirTypeInTheMode) {
  Result<EntryReply> fifo = fs_->MkNod(kRoot, "fifo", S_IFIFO | 0644, 0, kAlice);
  ASSERT_TRUE(fifo.ok()) << fifo.status().ToString();
  EXPECT_TRUE(S_ISFIFO(fifo->attr.st_mode));
  const dev_t dev = makedev(4, 67);
  Result<EntryReply> chr = fs_->MkNod(kRoot, "tty", S_IFCHR | 0600, dev, kAlice);
  ASSERT_TRUE(chr.ok()) << chr.status().ToString();
  EXPECT_EQ(chr->attr.st_rdev, dev);
  Result<EntryReply> sock = fs_->MkNod(kRoot, "sock", S_IFSOCK | 0755, 0, kAlice);
  ASSERT_TRUE(sock.ok()) << sock.status().ToString();
  EXPECT_EQ(ToErrno(fs_->MkNod(kRoot, "fifo", S_IFIFO | 0644, 0, kAlice).status()), EEXIST);

  // Visible at once, and after the upload with the types stored as s3fs stores them.
  Result<EntryReply> looked = fs_->Lookup(kRoot, "fifo");
  ASSERT_TRUE(looked.ok()) << looked.status().ToString();
  EXPECT_EQ(looked->attr.st_mode, S_IFIFO | 0644);
  Upload();
  EXPECT_EQ(Object("root/fifo"), "");
  EXPECT_EQ(MetaOf("root/fifo")["mode"], "4516");  // S_IFIFO | 0644, as s3fs writes it
  EXPECT_EQ(MetaOf("root/tty")["rdev"], std::to_string(dev));
  EXPECT_EQ(MetaOf("root/sock")["mode"], std::to_string(S_IFSOCK | 0755));
  Result<EntryReply> after = fs_->Lookup(kRoot, "tty");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->attr.st_mode, S_IFCHR | 0600);
  EXPECT_EQ(after->attr.st_rdev, dev);
  EXPECT_EQ(after->ino, chr->ino);  // the same inode across the upload
  EXPECT_EQ(ToErrno(fs_->Unlink(kRoot, "fifo")), 0);
  EXPECT_EQ(ToErrno(fs_->Lookup(kRoot, "fifo").status()), ENOENT);
}

TEST_F(FilesystemWriteTest, TimesKeepNanosecondsAndEachTheirOwnField) {
  const uint64_t ino = CreateFile(kRoot, "t", "x");
  SetAttrRequest request;
  request.atime = TimePoint(std::chrono::seconds(1000000000) + std::chrono::nanoseconds(123456789));
  request.mtime = TimePoint(std::chrono::seconds(1500000000) + std::chrono::nanoseconds(987654321));
  const TimePoint before = std::chrono::system_clock::now();
  Result<struct stat> st = fs_->SetAttr(ino, request, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st->st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st->st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st->st_mtim.tv_nsec, 987654321);
  EXPECT_GE(st->st_ctim.tv_sec, std::chrono::system_clock::to_time_t(before));
  Upload();
  EXPECT_EQ(MetaOf("root/t")["mtime"], "1500000000.987654321");
  EXPECT_EQ(MetaOf("root/t")["atime"], "1000000000.123456789");
  Result<struct stat> again = fs_->GetAttr(ino);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(again->st_atim.tv_nsec, 123456789);
}

TEST_F(FilesystemWriteTest, ChmodChangesCtimeAndSizeBeyondS3IsEfbig) {
  const uint64_t ino = CreateFile(kRoot, "c", "x");
  SetAttrRequest old_times;
  old_times.mtime = TimePoint(std::chrono::seconds(1000));
  ASSERT_TRUE(fs_->SetAttr(ino, old_times, std::nullopt).ok());
  SetAttrRequest chmod;
  chmod.mode = 0600;
  Result<struct stat> st = fs_->SetAttr(ino, chmod, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_mtim.tv_sec, 1000);
  EXPECT_GT(st->st_ctim.tv_sec, 1000);
  SetAttrRequest huge;
  huge.size = 999999999999999ull;
  EXPECT_EQ(ToErrno(fs_->SetAttr(ino, huge, std::nullopt).status()), EFBIG);
}

TEST_F(FilesystemWriteTest, DirectoryKeepsItsAttributesAndTimesFollowItsEntries) {
  Result<EntryReply> dir = fs_->MkDir(kRoot, "d", 0755, kAlice);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  SetAttrRequest chown;
  chown.uid = 65534;
  chown.gid = 65534;
  chown.mode = 0700;
  chown.mtime = TimePoint(std::chrono::seconds(1000));
  ASSERT_TRUE(fs_->SetAttr(dir->ino, chown, std::nullopt).ok());
  Upload();
  CreateFile(dir->ino, "x", "pending");  // not uploaded: the directory is implied by it too
  Result<struct stat> st = fs_->GetAttr(dir->ino);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_mode, S_IFDIR | 0700);
  EXPECT_EQ(st->st_uid, 65534u);
  EXPECT_EQ(st->st_gid, 65534u);
  EXPECT_GT(st->st_mtim.tv_sec, 1000);  // the create changed it
  EXPECT_EQ(st->st_mtim.tv_sec, st->st_ctim.tv_sec);
}

TEST_F(FilesystemWriteTest, DirectoryTimesMoveWithARenameAndANewDirectoryHasItsOwn) {
  Result<EntryReply> dir = fs_->MkDir(kRoot, "d", 0755, kAlice);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  SetAttrRequest old_times;
  old_times.mtime = TimePoint(std::chrono::seconds(1000));
  ASSERT_TRUE(fs_->SetAttr(dir->ino, old_times, std::nullopt).ok());
  ASSERT_TRUE(fs_->Rename(kRoot, "d", kRoot, "e", 0).ok());
  Result<EntryReply> moved = fs_->Lookup(kRoot, "e");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->attr.st_mtim.tv_sec, 1000);
  Result<EntryReply> fresh = fs_->MkDir(kRoot, "d", 0755, kAlice);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  Result<struct stat> st = fs_->GetAttr(fresh->ino);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_GT(st->st_mtim.tv_sec, 1000);
}

TEST_F(FilesystemWriteTest, DirectoryLinkCountCountsSubdirectories) {
  Result<EntryReply> dir = fs_->MkDir(kRoot, "d", 0755, kAlice);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(dir->attr.st_nlink, 2u);
  ASSERT_TRUE(fs_->MkDir(dir->ino, "a", 0755, kAlice).ok());
  ASSERT_TRUE(fs_->MkDir(dir->ino, "b", 0755, kAlice).ok());
  CreateFile(dir->ino, "f", "not a directory");
  Result<struct stat> st = fs_->GetAttr(dir->ino);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_nlink, 4u);
  Upload();
  ASSERT_TRUE(fs_->RmDir(dir->ino, "a").ok());
  st = fs_->GetAttr(dir->ino);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->st_nlink, 3u);
}

TEST_F(FilesystemWriteTest, KeyLengthRuleIsTheSameForFilesAndDirectories) {
  // Keys are "root/" + name: a file key of exactly 1024 bytes works; a directory whose marker
  // key would have 1025 does not.
  uint64_t parent = kRoot;
  std::string path = "root/";
  while (path.size() + 201 < 1024) {
    const std::string name(200, 'd');
    Result<EntryReply> made = fs_->MkDir(parent, name, 0755, kAlice);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    parent = made->ino;
    path += name + "/";
  }
  const std::string exact(1024 - path.size(), 'f');
  auto created = fs_->Create(parent, exact, 0644, O_WRONLY | O_CREAT, kAlice);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  fs_->Release(created->second.handle);
  EXPECT_EQ(ToErrno(fs_->Create(parent, exact + "g", 0644, O_WRONLY, kAlice).status()),
            ENAMETOOLONG);
  EXPECT_EQ(ToErrno(fs_->MkDir(parent, exact.substr(1) + "h", 0755, kAlice).status()),
            ENAMETOOLONG);
  EXPECT_TRUE(fs_->MkDir(parent, exact.substr(1), 0755, kAlice).ok());
}

TEST_F(FilesystemWriteTest, QueuePagesFitTheirBudgetAndTogetherListEveryEntry) {
  constexpr int kFiles = 40;
  for (int i = 0; i < kFiles; ++i) {
    CreateFile(kRoot, "pending-" + std::string(200, 'k') + std::to_string(i), "x");
  }
  constexpr size_t kBudget = 1024;  // a few lines of about 240 bytes
  std::set<std::string> seen;
  uint64_t after = 0;
  for (int pages = 0; pages < 100; ++pages) {
    const std::string page = fs_->control().QueueText(after, kBudget);
    ASSERT_LE(page.size(), kBudget);
    std::istringstream lines(page);
    std::string line;
    std::getline(lines, line);  // the header
    uint64_t last = after;
    while (std::getline(lines, line)) {
      last = std::stoull(line.substr(0, line.find('\t')));
      seen.insert(line);
    }
    if (last == after) break;  // the empty page: the end
    after = last;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kFiles));
}

}  // namespace
}  // namespace strata
