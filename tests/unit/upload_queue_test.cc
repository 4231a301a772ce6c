// UploadQueue: ordering, superseding, cancelling, renames, faults and dead letters, waits.
// Restart, multipart resume and crash tests are in upload_queue_restart_test.cc.
#include "cache/upload_queue.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "tests/unit/upload_queue_test_util.h"

namespace strata::queue_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_F(QueueTest, CreatesPrivateDirectoryAndOneQueuePerDirectory) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  struct stat st;
  ASSERT_EQ(::stat(queue_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((queue_dir_ + "/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  Result<std::unique_ptr<UploadQueue>> second = UploadQueue::Open(store, Options());
  EXPECT_FALSE(second.ok());
}

TEST_F(QueueTest, PutDeleteAndRenameReachTheStore) {
  MemoryStore& store = Own<MemoryStore>();
  ASSERT_TRUE(store.Put("old", "old body", {}).ok());
  ASSERT_TRUE(store.Put("gone", "x", {}).ok());
  OpenQueue(store);
  queue_->Start();
  PutOptions options;
  options.content_type = "text/plain";
  options.metadata = {{"mode", "33188"}};
  const std::string staged = Stage("hello");
  Result<uint64_t> put = queue_->EnqueuePut("a", staged, 5, options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_FALSE(fs::exists(staged)) << "the queue takes the staged file over";
  Delete("gone");
  Rename("old", "new");
  DrainOk();
  Result<GetResult> a = store.Get("a", {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->body, "hello");
  EXPECT_EQ(a->info.content_type, "text/plain");
  EXPECT_EQ(a->info.metadata.at("mode"), "33188");
  EXPECT_FALSE(Object(store, "gone"));
  EXPECT_FALSE(Object(store, "old"));
  EXPECT_EQ(Object(store, "new"), "old body");
  EXPECT_EQ(store.stats().copy, 1u);
  EXPECT_EQ(DataFiles(), 0u) << "uploaded staged files are deleted";
  const UploadQueueStats stats = queue_->stats();
  EXPECT_EQ(stats.depth, 0u);
  EXPECT_EQ(stats.uploads_done, 4u);  // put, delete, copy, delete
  EXPECT_EQ(stats.bytes_uploaded, 5u);
}

TEST_F(QueueTest, RejectsBadKeysAndSizeMismatchesWithoutTakingTheFile) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  const std::string staged = Stage("12345");
  EXPECT_EQ(queue_->EnqueuePut(std::string(1025, 'k'), staged, 5).status().kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(queue_->EnqueuePut("", staged, 5).status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(queue_->EnqueuePut("k", staged, 4).status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(queue_->EnqueuePut("k", staging_ + "/nope", 4).status().kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_TRUE(fs::exists(staged));
  EXPECT_EQ(queue_->stats().depth, 0u);
}

TEST_F(QueueTest, NewerPutSupersedesPendingOneAndDropsItsFile) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  const uint64_t v1 = Put("k", "version 1");
  EXPECT_EQ(DataFiles(), 1u);
  const uint64_t v2 = Put("k", "version 2");
  EXPECT_GT(v2, v1);
  EXPECT_EQ(DataFiles(), 1u) << "the superseded staged file is gone";
  ASSERT_EQ(queue_->List().size(), 1u);
  EXPECT_EQ(queue_->List()[0].sequence, v2);
  EXPECT_EQ(queue_->stats().staged_bytes, 9u);
  std::optional<PendingPut> pending = PendingPutOf(*queue_, "k");
  ASSERT_TRUE(pending);
  EXPECT_EQ(Slurp(pending->staged_path), "version 2");
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Object(store, "k"), "version 2");
  EXPECT_EQ(store.stats().put, 1u);
  EXPECT_EQ(queue_->stats().dropped, 1u);
  EXPECT_EQ(queue_->stats().staged_bytes, 0u);
  EXPECT_TRUE(queue_->WaitUploaded(v1, seconds(1)).ok()) << "v1 leads to v2";
}

TEST_F(QueueTest, RunningUploadIsNotSupersededButOrderedBefore) {
  MemoryStore& mem = Own<MemoryStore>();
  GateStore& store = Own<GateStore>(mem);
  OpenQueue(store);
  store.Arm(StoreOp::kPut, "k");
  queue_->Start();
  Put("k", "v0");
  ASSERT_TRUE(store.WaitHeld());
  Put("k", "v1");
  Put("k", "v2");  // drops v1, which has not started
  EXPECT_EQ(queue_->List().size(), 2u);
  EXPECT_EQ(queue_->List()[0].state, QueueEntryState::kUploading);
  store.Release();
  DrainOk();
  EXPECT_EQ(Object(mem, "k"), "v2");
  EXPECT_EQ(mem.stats().put, 2u);
  const std::vector<std::optional<std::string>> expected = {"v0", "v2"};
  EXPECT_EQ(store.history()["k"], expected);
}

TEST_F(QueueTest, DeleteCancelsPendingUploadSoNothingIsUploaded) {
  MemoryStore& mem = Own<MemoryStore>();
  ASSERT_TRUE(mem.Put("k", "in store", {}).ok());
  GateStore& store = Own<GateStore>(mem);
  UploadQueueOptions options = Options();
  options.workers = 1;
  OpenQueue(store, options);
  store.Arm(StoreOp::kPut, "blocker");
  queue_->Start();
  Put("blocker", "holds the only worker");
  ASSERT_TRUE(store.WaitHeld());
  Put("k", "never uploaded");
  EXPECT_EQ(DataFiles(), 2u);
  Delete("k");
  EXPECT_EQ(DataFiles(), 1u) << "the cancelled upload's staged file is gone";
  EXPECT_TRUE(BeingDeleted(*queue_, "k"));
  EXPECT_FALSE(PendingPutOf(*queue_, "k"));
  store.Release();
  DrainOk();
  EXPECT_EQ(mem.stats().put, 2u);  // the setup's and the blocker's
  EXPECT_FALSE(Object(mem, "k"));
  EXPECT_EQ(store.history().count("k"), 1u);
  EXPECT_EQ(store.history()["k"].size(), 1u) << "only the delete touched k";
}

TEST_F(QueueTest, DeleteWaitsForRunningUploadOfTheKey) {
  MemoryStore& mem = Own<MemoryStore>();
  GateStore& store = Own<GateStore>(mem);
  OpenQueue(store);
  store.Arm(StoreOp::kPut, "k");
  queue_->Start();
  Put("k", "uploading");
  ASSERT_TRUE(store.WaitHeld());
  const uint64_t del = Delete("k");
  EXPECT_EQ(Delete("k"), del) << "a second delete reuses the pending one";
  store.Release();
  DrainOk();
  EXPECT_FALSE(Object(mem, "k")) << "the delete ran after the upload: nothing resurrects";
  const std::vector<std::optional<std::string>> expected = {"uploading", std::nullopt};
  EXPECT_EQ(store.history()["k"], expected);
}

TEST_F(QueueTest, RenameRetargetsPendingUpload) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  Put("from", "content");
  Put("to", "overwritten by the rename");
  const uint64_t rename = Rename("from", "to");
  EXPECT_EQ(DataFiles(), 1u);
  std::optional<PendingPut> at_to = PendingPutOf(*queue_, "to");
  ASSERT_TRUE(at_to);
  EXPECT_EQ(Slurp(at_to->staged_path), "content");
  EXPECT_TRUE(BeingDeleted(*queue_, "from"));
  queue_->Start();
  ASSERT_TRUE(queue_->WaitUploaded(rename, seconds(20)).ok());
  DrainOk();
  EXPECT_EQ(Object(store, "to"), "content");
  EXPECT_FALSE(Object(store, "from"));
  EXPECT_EQ(store.stats().put, 1u);
  EXPECT_EQ(store.stats().copy, 0u);
}

TEST_F(QueueTest, RenameOfStoredObjectCopiesThenDeletes) {
  MemoryStore& mem = Own<MemoryStore>();
  ASSERT_TRUE(mem.Put("a", "stored", {}).ok());
  GateStore& store = Own<GateStore>(mem);
  OpenQueue(store);
  Rename("a", "b");
  PendingState b = queue_->Pending("b");
  EXPECT_EQ(b.kind, PendingState::Kind::kCopy);
  EXPECT_EQ(b.copy_source, "a");
  EXPECT_TRUE(BeingDeleted(*queue_, "a"));
  Rename("b", "c");  // copy b -> c must wait for the copy a -> b
  PendingState c = queue_->Pending("c");
  EXPECT_EQ(c.kind, PendingState::Kind::kCopy);
  EXPECT_EQ(c.copy_source, "a") << "reads follow the chain to the stored object";
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Contents(mem), (std::map<std::string, std::string>{{"c", "stored"}}));
}

TEST_F(QueueTest, RenameAfterRunningUploadCopiesTheNewVersion) {
  MemoryStore& mem = Own<MemoryStore>();
  GateStore& store = Own<GateStore>(mem);
  OpenQueue(store);
  store.Arm(StoreOp::kPut, "a");
  queue_->Start();
  Put("a", "new");
  ASSERT_TRUE(store.WaitHeld());
  Rename("a", "b");
  std::optional<PendingPut> at_b = PendingPutOf(*queue_, "b");
  ASSERT_TRUE(at_b) << "b reads the running upload of a";
  EXPECT_EQ(Slurp(at_b->staged_path), "new");
  store.Release();
  DrainOk();
  EXPECT_EQ(Contents(mem), (std::map<std::string, std::string>{{"b", "new"}}));
}

TEST_F(QueueTest, RenameOfKeyBeingDeletedFails) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  Delete("a");
  EXPECT_EQ(queue_->EnqueueRename("a", "b").status().kind(), ErrorKind::kNotFound);
}

// 200 random puts, deletes and renames over 5 keys from 4 threads, with faults before and after
// calls: the store must end up as the model applied in enqueue order, and every key must pass
// only through states of the model, in the model's order.
TEST_F(QueueTest, RandomInterleavingsKeepPerKeyOrder) {
  MemoryStore& mem = Own<MemoryStore>();
  GateStore& gate = Own<GateStore>(mem);
  FaultyStore& store = Own<FaultyStore>(gate, 3);
  store.FailFraction(0.1);
  store.FailFraction(0.1, {.timing = FaultTiming::kAfter});
  OpenQueue(store);
  queue_->Start();

  std::mutex model_mu;
  std::map<std::string, std::string> model;
  std::map<std::string, std::vector<std::optional<std::string>>> model_history;
  const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4"};
  for (const std::string& key : keys) model_history[key].push_back(std::nullopt);
  std::atomic<int> next_op{0};
  auto run = [&](int thread) {
    std::mt19937_64 rng(thread);
    for (int i = 0; i < 50; ++i) {
      const std::string key = keys[rng() % keys.size()];
      const std::string other = keys[rng() % keys.size()];
      const int choice = static_cast<int>(rng() % 4);
      std::lock_guard lock(model_mu);
      const int op = next_op++;
      if (choice == 1) {
        Delete(key);
        model.erase(key);
        model_history[key].push_back(std::nullopt);
      } else if (choice == 2 && model.count(key) != 0 && key != other) {
        Rename(key, other);
        model[other] = model[key];
        model.erase(key);
        model_history[other].push_back(model[other]);
        model_history[key].push_back(std::nullopt);
      } else {
        const std::string body = "op " + std::to_string(op) + " " + Bytes(rng() % 64, op);
        Put(key, body);
        model[key] = body;
        model_history[key].push_back(body);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(run, t);
  for (std::thread& t : threads) t.join();
  DrainOk();
  EXPECT_EQ(Contents(mem), model) << "deleted keys are gone, the rest hold the newest version";
  for (const auto& [key, observed] : gate.history()) {
    EXPECT_TRUE(InModelOrder(observed, model_history[key])) << "key " << key;
  }
  EXPECT_GT(store.faults_injected(), 0u);
  EXPECT_EQ(DataFiles(), 0u);
}

TEST_F(QueueTest, TransientFaultsNeverLoseData) {
  MemoryStore& mem = Own<MemoryStore>(MemoryStore::Options{.min_part_size = 1024});
  FaultyStore& store = Own<FaultyStore>(mem, 11);
  store.FailFraction(0.15);
  store.FailFraction(0.15, {.timing = FaultTiming::kAfter});
  UploadQueueOptions options = Options();
  options.multipart_threshold = 8 << 10;
  options.part_size = 2 << 10;
  OpenQueue(store, options);
  queue_->Start();
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 30; ++i) {
    const std::string key = "dir/file-" + std::to_string(i);
    expected[key] = Bytes(i % 3 == 0 ? 20000 + i : 100 * i, i);  // every third is multipart
    Put(key, expected[key]);
  }
  DrainOk();
  EXPECT_EQ(Contents(mem), expected);
  EXPECT_GT(queue_->stats().retries, 0u);
  EXPECT_EQ(queue_->stats().dead_letters, 0u);
  // A CreateMultipartUpload whose reply was lost leaves an upload nobody knows: the next Open
  // aborts it.
  store.Clear();
  options.owned_prefixes = {"dir/"};
  OpenQueue(store, options);
  Result<std::vector<MultipartUpload>> left = mem.ListMultipartUploads("");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << left->size() << " uploads left";
}

TEST_F(QueueTest, RetriesBackOffOnTheInjectedClock) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  store.FailNthCall(1, {.op = StoreOp::kPut}, 5);
  OpenQueue(store);
  queue_->Start();
  Put("k", "v");
  DrainOk();
  EXPECT_EQ(Object(mem, "k"), "v");
  EXPECT_EQ(queue_->stats().retries, 5u);
  EXPECT_GT(clock_.total_slept(), Clock::Duration::zero());
}

TEST_F(QueueTest, PermanentFailureIsDeadLetterKeepingDataUntilRetried) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  store.FailAll({.op = StoreOp::kPut,
                 .status = Status::AccessDenied("denied").WithRemote(403, "AccessDenied")});
  OpenQueue(store);
  queue_->Start();
  const uint64_t seq = Put("k", "precious");
  Status waited = queue_->WaitUploaded(seq, seconds(20));
  EXPECT_EQ(waited.kind(), ErrorKind::kAccessDenied) << waited.ToString();
  EXPECT_EQ(queue_->Drain(seconds(5)).kind(), ErrorKind::kIo);
  std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, QueueEntryState::kDead);
  EXPECT_EQ(list[0].attempts, 1u);
  EXPECT_NE(list[0].last_error.find("AccessDenied"), std::string::npos) << list[0].last_error;
  EXPECT_EQ(queue_->stats().dead_letters, 1u);
  std::optional<PendingPut> kept = PendingPutOf(*queue_, "k");
  ASSERT_TRUE(kept);
  EXPECT_EQ(Slurp(kept->staged_path), "precious") << "a dead letter keeps its data";

  store.Clear();
  ASSERT_TRUE(queue_->RetryDeadLetters().ok());
  DrainOk();
  EXPECT_EQ(Object(mem, "k"), "precious");
  EXPECT_TRUE(queue_->WaitUploaded(seq, seconds(1)).ok());
  EXPECT_EQ(queue_->stats().dead_letters, 0u);
}

TEST_F(QueueTest, DeadEntryHoldsBackItsKeyUntilDiscarded) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  OpenQueue(store);
  queue_->Start();
  store.FailAll({.op = StoreOp::kCopy, .status = Status::AccessDenied("no copy")});
  ASSERT_TRUE(mem.Put("a", "stored", {}).ok());
  Rename("a", "b");
  Put("other", "not held back");
  EXPECT_EQ(queue_->Drain(seconds(20)).kind(), ErrorKind::kIo);
  EXPECT_EQ(Object(mem, "other"), "not held back");
  EXPECT_EQ(Object(mem, "a"), "stored") << "the delete of a waits behind the dead copy";
  const std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].op, QueueOp::kCopy);
  EXPECT_EQ(list[0].state, QueueEntryState::kDead);
  EXPECT_EQ(list[1].op, QueueOp::kDelete);
  EXPECT_EQ(list[1].state, QueueEntryState::kPending);
  EXPECT_EQ(queue_->DiscardDeadLetter(list[1].sequence).kind(), ErrorKind::kInvalidArgument);
  ASSERT_TRUE(queue_->DiscardDeadLetter(list[0].sequence).ok());
  DrainOk();
  EXPECT_FALSE(Object(mem, "a"));
  EXPECT_FALSE(Object(mem, "b"));
}

TEST_F(QueueTest, WaitUploaded) {
  MemoryStore& mem = Own<MemoryStore>();
  GateStore& store = Own<GateStore>(mem);
  OpenQueue(store);
  EXPECT_EQ(queue_->WaitUploaded(1, milliseconds(1)).kind(), ErrorKind::kInvalidArgument);
  const uint64_t first = Put("k", "one");
  EXPECT_EQ(queue_->WaitUploaded(first, milliseconds(20)).kind(), ErrorKind::kTransient)
      << "not started: times out";
  store.Arm(StoreOp::kPut, "k");
  queue_->Start();
  ASSERT_TRUE(store.WaitHeld());
  const uint64_t second = Put("k", "two");
  Status early = queue_->WaitUploaded(second, milliseconds(20));
  EXPECT_EQ(early.kind(), ErrorKind::kTransient);
  store.Release();
  EXPECT_TRUE(queue_->WaitUploaded(second, seconds(20)).ok());
  EXPECT_EQ(Object(mem, "k"), "two");
  EXPECT_TRUE(queue_->WaitUploaded(first, seconds(1)).ok());
  EXPECT_EQ(queue_->WaitUploaded(second + 1, milliseconds(1)).kind(), ErrorKind::kInvalidArgument);
}

TEST_F(QueueTest, ListShowsEntries) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  Put("p", "12345");
  Delete("d");
  Rename("p", "q");
  const std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].op, QueueOp::kDelete);
  EXPECT_EQ(list[0].key, "d");
  EXPECT_EQ(list[1].op, QueueOp::kPut);
  EXPECT_EQ(list[1].key, "q");
  EXPECT_EQ(list[1].size, 5u);
  EXPECT_EQ(list[2].op, QueueOp::kDelete);
  EXPECT_EQ(list[2].key, "p");
  for (const QueueEntryView& view : list) {
    EXPECT_EQ(view.state, QueueEntryState::kPending);
    EXPECT_EQ(view.attempts, 0u);
    EXPECT_LT(view.age, seconds(60));
  }
  EXPECT_EQ(queue_->stats().depth, 3u);
}

}  // namespace
}  // namespace strata::queue_test
