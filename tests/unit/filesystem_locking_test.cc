// Namespace changes lock the names they touch, not the whole mount: a change waiting for S3 in
// one place does not hold up changes elsewhere, and changes of one name still never interleave.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <thread>

#include "fs/filesystem.h"
#include "fs/path_locks.h"
#include "fs/posix_error.h"
#include "tests/unit/upload_queue_test_util.h"

namespace strata {
namespace {

using queue_test::GateStore;
using std::chrono::seconds;
constexpr uint64_t kRoot = InodeTable::kRootInode;
constexpr Caller kAlice{1001, 2002};

class FilesystemLockingTest : public ::testing::Test {
 protected:
  FilesystemLockingTest() {
    char pattern[] = "/tmp/strata-fs-locking-XXXXXX";
    dir_ = mkdtemp(pattern);
    EXPECT_TRUE(mem_.Put("root/slow/", "", {}).ok());
    EXPECT_TRUE(mem_.Put("root/fast/", "", {}).ok());
    metadata_ = std::make_unique<MetadataCache>(gate_, clock_,
                                                MetadataOptions{.bucket = "b", .prefix = "root/"});
    Result<std::shared_ptr<StagingArea>> staging =
        StagingArea::Open(StagingOptions{.dir = dir_ + "/staging", .max_bytes = 64 << 20});
    EXPECT_TRUE(staging.ok());
    // Uploads go straight to the store: only the filesystem's own S3 calls pass the gate.
    Result<std::unique_ptr<UploadQueue>> queue =
        UploadQueue::Open(mem_, UploadQueueOptions{.dir = dir_ + "/queue"});
    EXPECT_TRUE(queue.ok());
    queue_ = std::move(*queue);
    fs_ = std::make_unique<Filesystem>(
        *metadata_, [](const ObjectVersion&) { return nullptr; }, nullptr, FilesystemOptions{},
        WriteServices{.staging = *staging, .queue = queue_.get()});
  }
  ~FilesystemLockingTest() override {
    queue_.reset();
    fs_.reset();
    std::filesystem::remove_all(dir_);
  }

  uint64_t Dir(const std::string& name) {
    Result<EntryReply> entry = fs_->Lookup(kRoot, name);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    return entry.ok() ? entry->ino : 0;
  }
  Status CreateAndClose(uint64_t parent, const std::string& name, int flags = 0) {
    Result<std::pair<EntryReply, OpenReply>> created =
        fs_->Create(parent, name, 0644, O_CREAT | O_WRONLY | flags, kAlice);
    if (!created.ok()) return created.status();
    Status flushed = fs_->Flush(created->second.handle);
    fs_->Release(created->second.handle);
    return flushed;
  }
  // Runs `change` while another thread's change is held at the gate; fails (instead of
  // hanging) when `change` does not finish within 10 s.
  template <typename Change>
  void ExpectProceeds(const char* what, Change change) {
    std::future<Status> done = std::async(std::launch::async, change);
    if (done.wait_for(seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << what << " waited for a change stalled on S3 elsewhere";
      gate_.Release();
    }
    Status st = done.get();
    EXPECT_TRUE(st.ok()) << what << ": " << st.ToString();
  }

  std::string dir_;
  MemoryStore mem_;
  GateStore gate_{mem_};
  SystemClock clock_;
  std::unique_ptr<MetadataCache> metadata_;
  std::unique_ptr<UploadQueue> queue_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FilesystemLockingTest, ChangesElsewhereProceedWhileOneWaitsForS3) {
  const uint64_t slow = Dir("slow");
  const uint64_t fast = Dir("fast");
  gate_.Arm(StoreOp::kList, "root/slow/x");  // the lookup of slow/x: a LIST of its name
  std::future<Status> stalled =
      std::async(std::launch::async, [&] { return CreateAndClose(slow, "x"); });
  ASSERT_TRUE(gate_.WaitHeld());

  ExpectProceeds("a create in another directory", [&] { return CreateAndClose(fast, "y"); });
  ExpectProceeds("a mkdir in another directory",
                 [&] { return fs_->MkDir(fast, "d", 0755, kAlice).status(); });
  ExpectProceeds("an unlink in another directory", [&] { return fs_->Unlink(fast, "y"); });
  ExpectProceeds("a rename in another directory",
                 [&] { return fs_->Rename(fast, "d", fast, "e", 0); });
  ExpectProceeds("a create of another name in the same directory",
                 [&] { return CreateAndClose(slow, "z"); });

  gate_.Release();
  Status st = stalled.get();
  EXPECT_TRUE(st.ok()) << st.ToString();
  queue_->Start();
  ASSERT_TRUE(queue_->Drain(seconds(10)).ok());
  EXPECT_TRUE(mem_.Head("root/slow/x").ok());
  EXPECT_TRUE(mem_.Head("root/slow/z").ok());
  EXPECT_TRUE(mem_.Head("root/fast/e/").ok());
  EXPECT_FALSE(mem_.Head("root/fast/y").ok());
}

TEST_F(FilesystemLockingTest, ExclusiveCreatesOfOneNameNeverBothSucceed) {
  const uint64_t fast = Dir("fast");
  for (int round = 0; round < 20; ++round) {
    const std::string name = "n" + std::to_string(round);
    std::atomic<int> created{0};
    std::atomic<int> exists{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        Status st = CreateAndClose(fast, name, O_EXCL);
        if (st.ok()) {
          ++created;
        } else if (ToErrno(st) == EEXIST) {
          ++exists;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(created.load(), 1) << name;
    EXPECT_EQ(exists.load(), 3) << name;
  }
}

TEST(PathLocksTest, SubtreeLockConflictsWithEverythingBelowIt) {
  PathLocks locks;
  PathLocks::Guard tree = locks.Lock({{"a", /*subtree=*/true}});
  std::atomic<bool> got{false};
  std::thread below([&] {
    PathLocks::Guard g = locks.Lock({{"a/b/c"}});
    got = true;
  });
  {
    PathLocks::Guard other = locks.Lock({{"ab"}, {""}});  // a sibling and the root: free
    EXPECT_EQ(locks.held(), 3u);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got.load());
  tree.Unlock();
  below.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(locks.held(), 0u);
}

}  // namespace
}  // namespace strata
