// UploadQueue's metadata changes (EnqueueSetMetadata): one CopyObject of the key onto itself,
// no body uploaded; another writer's newer version wins; the change survives a restart.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/faulty_store.h"
#include "cache/queue_db.h"
#include "cache/upload_queue.h"
#include "tests/unit/upload_queue_test_util.h"

namespace strata::queue_test {
namespace {

// What on_done saw: key and ETag of every entry done.
struct Done {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> entries;
};

class QueueMetadataTest : public QueueTest {
 protected:
  UploadQueueOptions OptionsWithDone() {
    UploadQueueOptions options = Options();
    options.on_done = [this](const QueueRecord& record, const std::string& etag) {
      std::lock_guard lock(done_.mu);
      done_.entries.emplace_back(record.key, etag);
    };
    return options;
  }
  // An object written by "another tool", with a content type and metadata of its own.
  std::string Seed(ObjectStore& store, const std::string& key, const std::string& body) {
    Result<PutResult> put = store.Put(
        key, body,
        PutOptions{.content_type = "text/plain", .metadata = {{"mode", "33188"}, {"tag", "x"}}});
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return put.ok() ? put->etag : "";
  }
  uint64_t SetMode(const std::string& key, const std::string& mode, const std::string& etag) {
    Result<uint64_t> seq = queue_->EnqueueSetMetadata(key, {{"mode", mode}}, etag, 4);
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    return seq.ok() ? *seq : 0;
  }

  Done done_;
};

TEST_F(QueueMetadataTest, CopiesTheObjectOntoItselfWithoutUploadingTheBody) {
  MemoryStore& store = Own<MemoryStore>();
  const std::string etag = Seed(store, "k", "body");
  OpenQueue(store, OptionsWithDone());
  SetMode("k", "33152", etag);
  PendingState pending = queue_->Pending("k");
  EXPECT_EQ(pending.kind, PendingState::Kind::kMetadata);
  queue_->Start();
  DrainOk();
  EXPECT_EQ(store.stats().put, 1u) << "only the seeding put";
  EXPECT_EQ(store.stats().copy, 1u);
  EXPECT_EQ(store.stats().bytes_written, 4u);
  Result<ObjectInfo> head = store.Head("k");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(Object(store, "k"), "body");
  EXPECT_EQ(head->metadata.at("mode"), "33152");
  EXPECT_EQ(head->metadata.at("tag"), "x") << "metadata the change does not name is kept";
  EXPECT_EQ(head->content_type, "text/plain") << "REPLACE must not reset the content type";
  std::lock_guard lock(done_.mu);
  ASSERT_EQ(done_.entries.size(), 1u);
  EXPECT_EQ(done_.entries[0].second, head->etag) << "on_done gets the ETag the copy returned";
  EXPECT_EQ(queue_->Pending("k").kind, PendingState::Kind::kNone);
}

TEST_F(QueueMetadataTest, AnotherWritersVersionWinsAndTheEntryCompletes) {
  MemoryStore& store = Own<MemoryStore>();
  const std::string etag = Seed(store, "k", "old");
  Seed(store, "gone", "soon deleted");
  OpenQueue(store, OptionsWithDone());
  SetMode("k", "33152", etag);
  SetMode("gone", "33152", "");
  // Another writer replaces one and deletes the other between enqueue and run.
  ASSERT_TRUE(store.Put("k", "new", PutOptions{.metadata = {{"mode", "33261"}}}).ok());
  ASSERT_TRUE(store.Delete("gone").ok());
  queue_->Start();
  DrainOk();
  EXPECT_EQ(store.stats().copy, 0u);
  EXPECT_EQ(Object(store, "k"), "new");
  EXPECT_EQ(store.Head("k")->metadata.at("mode"), "33261");
  EXPECT_FALSE(Object(store, "gone"));
  EXPECT_EQ(queue_->stats().depth, 0u);
  EXPECT_EQ(queue_->stats().dead_letters, 0u);
  std::lock_guard lock(done_.mu);
  ASSERT_EQ(done_.entries.size(), 2u);
  EXPECT_EQ(done_.entries[0].second, "") << "not applied: no ETag";
  EXPECT_EQ(done_.entries[1].second, "");
}

TEST_F(QueueMetadataTest, APreconditionFailureOfTheCopyCompletesOtherFailuresRetry) {
  MemoryStore& mem = Own<MemoryStore>();
  FaultyStore& store = Own<FaultyStore>(mem);
  const std::string etag = Seed(mem, "k", "body");
  const std::string other = Seed(mem, "r", "body");
  OpenQueue(store);
  store.FailNthCall(1, InjectedFault{.op = StoreOp::kCopy,
                                     .status = Status::PreconditionFailed("changed"),
                                     .key_contains = "k"});
  store.FailNthCall(1, InjectedFault{.op = StoreOp::kCopy, .key_contains = "r"}, 2);
  SetMode("k", "33152", etag);
  SetMode("r", "33152", other);
  queue_->Start();
  DrainOk();
  EXPECT_EQ(mem.Head("k")->metadata.at("mode"), "33188") << "412: not applied, not retried";
  EXPECT_EQ(mem.Head("r")->metadata.at("mode"), "33152") << "transient failures are retried";
  EXPECT_EQ(store.calls(StoreOp::kCopy), 4u);
  EXPECT_EQ(queue_->stats().dead_letters, 0u);
}

TEST_F(QueueMetadataTest, APendingChangeSurvivesARestart) {
  MemoryStore& store = Own<MemoryStore>();
  const std::string etag = Seed(store, "k", "body");
  OpenQueue(store);
  const uint64_t seq = SetMode("k", "33152", etag);
  queue_.reset();

  OpenQueue(store);
  PendingState pending = queue_->Pending("k");
  ASSERT_EQ(pending.kind, PendingState::Kind::kMetadata);
  EXPECT_EQ(pending.metadata->at("mode"), "33152");
  std::vector<QueueEntryView> list = queue_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].sequence, seq);
  EXPECT_EQ(list[0].op, QueueOp::kSetMetadata);
  EXPECT_EQ(QueueOpName(list[0].op), "set-metadata");
  queue_->Start();
  DrainOk();
  EXPECT_EQ(store.Head("k")->metadata.at("mode"), "33152");
  EXPECT_EQ(store.stats().copy, 1u);
}

TEST_F(QueueMetadataTest, QueueDbStoresAMetadataChangeInThePutColumns) {
  fs::create_directories(queue_dir_);
  Result<std::unique_ptr<QueueDb>> db = QueueDb::Open(queue_dir_ + "/queue.db");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  QueueRecord change;
  change.seq = 7;
  change.op = QueueOp::kSetMetadata;
  change.key = "k";
  change.size = 123;
  change.options.metadata = {{"mode", "33152"}, {"uid", "5"}};
  change.options.if_match = "etag-a";
  ASSERT_TRUE((*db)->Apply(QueueDb::Batch{.inserts = {change}, .next_seq = 8}).ok());
  Result<QueueDb::Contents> loaded = (*db)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->records.size(), 1u);
  const QueueRecord& back = loaded->records[0];
  EXPECT_EQ(back.op, QueueOp::kSetMetadata);
  EXPECT_EQ(back.key, "k");
  EXPECT_EQ(back.size, 123u);
  EXPECT_EQ(back.options.metadata, change.options.metadata);
  EXPECT_EQ(back.options.if_match, "etag-a");
  EXPECT_TRUE(back.data_file.empty());
}

}  // namespace
}  // namespace strata::queue_test
