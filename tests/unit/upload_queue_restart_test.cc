// UploadQueue across restarts: replay, read-your-writes after reopen, closing mid-upload,
// multipart resume, abandoned uploads, missing staged files, and kill -9 of a process that
// enqueues (guarantee 1: what was acknowledged reaches the store after a restart).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "cache/upload_queue.h"
#include "tests/support/local_store.h"
#include "tests/unit/upload_queue_test_util.h"

namespace strata::queue_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_F(QueueTest, ReopenReplaysPendingEntriesForReadYourWrites) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  Put("a", "pending a");
  Put("b", "pending b");
  Delete("b");
  Rename("a", "c");
  queue_.reset();

  OpenQueue(store);
  std::optional<PendingPut> c = PendingPutOf(*queue_, "c");
  ASSERT_TRUE(c);
  EXPECT_EQ(Slurp(c->staged_path), "pending a");
  EXPECT_TRUE(BeingDeleted(*queue_, "a"));
  EXPECT_TRUE(BeingDeleted(*queue_, "b"));
  EXPECT_EQ(queue_->stats().depth, 3u);  // delete b, put c (was a), delete a
  EXPECT_EQ(store.stats().put, 0u);
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Contents(store), (std::map<std::string, std::string>{{"c", "pending a"}}));
  const uint64_t next = Put("d", "after reopen");
  EXPECT_GT(next, 5u) << "sequence numbers are never reused";
}

// Closes the queue while an upload is held in the store call; what is left is delivered after
// the reopen, each operation once, in order.
TEST_F(QueueTest, CloseMidwayThenReopenDeliversEverythingOnceInOrder) {
  MemoryStore& mem = Own<MemoryStore>();
  GateStore& store = Own<GateStore>(mem);
  UploadQueueOptions options = Options();
  options.workers = 2;
  OpenQueue(store, options);
  std::map<std::string, std::string> expected;
  store.Arm(StoreOp::kPut, "k1");
  queue_->Start();
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 5; ++k) {
      const std::string key = "k" + std::to_string(k);
      const std::string body = key + " round " + std::to_string(round);
      Put(key, body);
      expected[key] = body;
    }
  }
  Delete("k3");
  expected.erase("k3");
  ASSERT_TRUE(store.WaitHeld());
  std::thread closer([&] { queue_.reset(); });
  std::this_thread::sleep_for(milliseconds(100));
  store.Release();  // the held upload goes through; the worker then stops
  closer.join();
  const uint64_t puts_before = mem.stats().put;

  OpenQueue(store, options);
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Contents(mem), expected);
  std::map<std::string, int> uploads_per_body;
  for (const auto& [key, states] : store.history()) {
    for (const auto& state : states) {
      if (state) ++uploads_per_body[*state];
    }
    std::vector<std::optional<std::string>> model = {std::nullopt};
    for (int round = 0; round < 3; ++round)
      model.push_back(key + " round " + std::to_string(round));
    if (key == "k3") model.push_back(std::nullopt);
    EXPECT_TRUE(InModelOrder(states, model)) << key;
  }
  for (const auto& [body, count] : uploads_per_body) EXPECT_EQ(count, 1) << body;
  EXPECT_GE(mem.stats().put, puts_before);
  EXPECT_EQ(DataFiles(), 0u);
}

TEST_F(QueueTest, MultipartResumesFromSavedPartsAfterReopen) {
  MemoryStore& mem = Own<MemoryStore>(MemoryStore::Options{.min_part_size = 1024});
  FaultyStore& store = Own<FaultyStore>(mem);
  UploadQueueOptions options = Options();
  options.multipart_threshold = 4096;
  options.part_size = 1024;
  options.workers = 1;
  options.part_parallelism = 1;   // parts in order: exactly parts 1 and 2 land before the failure
  options.owned_prefixes = {""};  // the upload the database references must survive the sweep
  OpenQueue(store, options);
  // The third part fails for good: the entry is dead after parts 1 and 2.
  store.FailNthCall(3, {.op = StoreOp::kUploadPart, .status = Status::AccessDenied("cut")});
  const std::string body = Bytes(4096, 7);
  queue_->Start();
  const uint64_t seq = Put("big", body);
  EXPECT_FALSE(queue_->WaitUploaded(seq, seconds(20)).ok());
  EXPECT_EQ(mem.stats().upload_part, 2u);
  queue_.reset();
  store.Clear();

  OpenQueue(store, options);
  std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].parts_done, 2u) << "parts are saved as they are acknowledged";
  EXPECT_EQ(list[0].state, QueueEntryState::kDead);
  EXPECT_EQ(mem.stats().abort_multipart, 0u);
  ASSERT_TRUE(queue_->RetryDeadLetters().ok());
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Object(mem, "big"), body);
  EXPECT_EQ(mem.stats().create_multipart, 1u);
  EXPECT_EQ(mem.stats().list_parts, 1u);
  EXPECT_EQ(mem.stats().upload_part, 4u) << "only parts 3 and 4 were uploaded again";
  EXPECT_EQ(mem.stats().put, 0u);
}

TEST_F(QueueTest, MultipartStartsOverWhenTheUploadIsGone) {
  MemoryStore& mem = Own<MemoryStore>(MemoryStore::Options{.min_part_size = 1024});
  FaultyStore& store = Own<FaultyStore>(mem);
  UploadQueueOptions options = Options();
  options.multipart_threshold = 4096;
  options.part_size = 1024;
  options.part_parallelism = 1;  // parts in order: exactly parts 1 and 2 land before the failure
  OpenQueue(store, options);
  store.FailNthCall(3, {.op = StoreOp::kUploadPart, .status = Status::AccessDenied("cut")});
  const std::string body = Bytes(4500, 9);  // five parts
  queue_->Start();
  EXPECT_FALSE(queue_->WaitUploaded(Put("big", body), seconds(20)).ok());
  queue_.reset();
  store.Clear();
  Result<std::vector<MultipartUpload>> uploads = mem.ListMultipartUploads("");
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->size(), 1u);
  ASSERT_TRUE(mem.AbortMultipartUpload("big", uploads->front().upload_id).ok());

  OpenQueue(store, options);
  ASSERT_TRUE(queue_->RetryDeadLetters().ok());
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Object(mem, "big"), body);
  EXPECT_EQ(mem.stats().create_multipart, 2u);
  EXPECT_EQ(mem.stats().upload_part, 2u + 5u);
}

TEST_F(QueueTest, LostCompleteReplyIsRecognizedWithoutUploadingAgain) {
  MemoryStore& mem = Own<MemoryStore>(MemoryStore::Options{.min_part_size = 1024});
  FaultyStore& store = Own<FaultyStore>(mem);
  UploadQueueOptions options = Options();
  options.multipart_threshold = 4096;
  options.part_size = 1024;
  OpenQueue(store, options);
  store.FailNthCall(1, {.op = StoreOp::kCompleteMultipart, .timing = FaultTiming::kAfter});
  const std::string body = Bytes(5000, 3);
  queue_->Start();
  Put("big", body);
  DrainOk();
  EXPECT_EQ(Object(mem, "big"), body);
  EXPECT_EQ(mem.stats().upload_part, 5u);
  EXPECT_EQ(mem.stats().create_multipart, 1u);
  EXPECT_EQ(queue_->stats().retries, 1u);
}

TEST_F(QueueTest, AbandonedUploadsUnderOwnedPrefixesAreAbortedAtOpen) {
  MemoryStore& mem = Own<MemoryStore>();
  Result<std::string> ours = mem.CreateMultipartUpload("mount/file", {});
  Result<std::string> theirs = mem.CreateMultipartUpload("elsewhere/file", {});
  ASSERT_TRUE(ours.ok() && theirs.ok());
  UploadQueueOptions options = Options();
  options.owned_prefixes = {"mount/"};
  OpenQueue(mem, options);
  Result<std::vector<MultipartUpload>> left = mem.ListMultipartUploads("");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().upload_id, *theirs);
  EXPECT_EQ(queue_->stats().orphans_aborted, 1u);
}

TEST_F(QueueTest, MissingStagedFileAtReopenBecomesDeadLetter) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  Put("lost", "data");
  Put("kept", "data");
  std::optional<PendingPut> lost = PendingPutOf(*queue_, "lost");
  ASSERT_TRUE(lost);
  queue_.reset();
  ASSERT_TRUE(fs::remove(lost->staged_path));

  OpenQueue(store);
  const std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].key, "lost");
  EXPECT_EQ(list[0].state, QueueEntryState::kDead);
  EXPECT_NE(list[0].last_error.find("missing"), std::string::npos) << list[0].last_error;
  EXPECT_EQ(queue_->stats().dead_letters, 1u);
  queue_->Start();
  Status drained = queue_->Drain(seconds(20));
  EXPECT_EQ(drained.kind(), ErrorKind::kIo) << drained.ToString();
  EXPECT_EQ(Object(store, "kept"), "data");
  EXPECT_FALSE(Object(store, "lost"));
  // Still dead after another reopen: never dropped silently.
  queue_.reset();
  OpenQueue(store);
  EXPECT_EQ(queue_->stats().dead_letters, 1u);
}

TEST_F(QueueTest, UnreferencedDataFilesAreRemovedAtOpen) {
  MemoryStore& store = Own<MemoryStore>();
  OpenQueue(store);
  Put("k", "v");
  queue_.reset();
  {
    std::ofstream junk(queue_dir_ + "/data/left-by-a-crash");
    junk << "never committed";
  }
  EXPECT_EQ(DataFiles(), 2u);
  OpenQueue(store);
  EXPECT_EQ(DataFiles(), 1u);
  queue_->Start();
  DrainOk();
  EXPECT_EQ(Object(store, "k"), "v");
}

// A child process enqueues puts and deletes, reporting each acknowledged one through a pipe,
// and is killed with SIGKILL in the middle. After a restart the queue must deliver every
// acknowledged operation byte-identical. The operation in progress at the kill may or may not
// have been committed; either outcome is accepted, nothing else.
TEST_F(QueueTest, SurvivesKillDashNine) {
  const std::string store_dir = dir_ + "/store";
  constexpr int kOps = 60;
  constexpr int kKillAfter = 25;
  auto op_key = [](int i) { return "f" + std::to_string(i % 7); };
  auto op_is_delete = [](int i) { return i % 5 == 4; };
  auto op_body = [](int i) { return Bytes(i % 3 == 0 ? 9000 : 300 + i, 1000 + i); };

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    Result<std::unique_ptr<LocalStore>> store =
        LocalStore::Open(store_dir, LocalStore::Options{.min_part_size = 1024});
    if (!store.ok()) ::_exit(2);
    UploadQueueOptions options = Options();
    options.clock = nullptr;
    options.multipart_threshold = 4096;
    options.part_size = 2048;
    Result<std::unique_ptr<UploadQueue>> queue = UploadQueue::Open(**store, options);
    if (!queue.ok()) ::_exit(3);
    (*queue)->Start();
    for (int i = 0; i < kOps; ++i) {
      Result<uint64_t> seq = Status::Internal("unset");
      if (op_is_delete(i)) {
        seq = (*queue)->EnqueueDelete(op_key(i));
      } else {
        const std::string body = op_body(i);
        seq = (*queue)->EnqueuePut(op_key(i), Stage(body), body.size());
      }
      if (!seq.ok()) ::_exit(4);
      if (::write(pipe_fds[1], &i, sizeof(i)) != sizeof(i)) ::_exit(5);
    }
    while (true) ::pause();
  }
  ::close(pipe_fds[1]);
  int acked = -1;
  int value = 0;
  while (acked + 1 < kKillAfter && ::read(pipe_fds[0], &value, sizeof(value)) == sizeof(value)) {
    acked = value;
  }
  ::kill(child, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
  while (::read(pipe_fds[0], &value, sizeof(value)) == sizeof(value)) acked = value;
  ::close(pipe_fds[0]);
  ASSERT_GE(acked, kKillAfter - 1);

  auto model_after = [&](int ops) {
    std::map<std::string, std::string> model;
    for (int i = 0; i < ops; ++i) {
      if (op_is_delete(i)) {
        model.erase(op_key(i));
      } else {
        model[op_key(i)] = op_body(i);
      }
    }
    return model;
  };
  Result<std::unique_ptr<LocalStore>> opened =
      LocalStore::Open(store_dir, LocalStore::Options{.min_part_size = 1024});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  LocalStore& store = Own(std::move(opened).value());
  UploadQueueOptions options = Options();
  options.multipart_threshold = 4096;
  options.part_size = 2048;
  options.owned_prefixes = {""};
  OpenQueue(store, options);
  queue_->Start();
  DrainOk();
  const std::map<std::string, std::string> contents = Contents(store);
  const bool matches = contents == model_after(acked + 1) ||
                       (acked + 1 < kOps && contents == model_after(acked + 2));
  EXPECT_TRUE(matches) << "acknowledged " << acked + 1 << " operations; the store holds "
                       << contents.size() << " objects";
  Result<std::vector<MultipartUpload>> left = store.ListMultipartUploads("");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "abandoned uploads of the killed process are aborted";
}

}  // namespace
}  // namespace strata::queue_test
