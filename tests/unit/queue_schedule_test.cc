// QueueSchedule's ordering and drop rules for metadata changes (kSetMetadata), driven directly:
// plans are committed in memory and entries claimed and completed as a worker would.
#include "cache/queue_schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata {
namespace {

class QueueScheduleTest : public ::testing::Test {
 protected:
  uint64_t Put(const std::string& key, Metadata metadata = {}) {
    QueueRecord put;
    put.key = key;
    put.data_file = "file-" + std::to_string(++files_);
    put.size = 10;
    put.options.metadata = std::move(metadata);
    return Commit(schedule_.PlanPut(std::move(put)));
  }
  uint64_t Delete(const std::string& key) { return Commit(schedule_.PlanDelete(key, 0)); }
  uint64_t Rename(const std::string& from, const std::string& to) {
    Result<QueueSchedule::Plan> plan = schedule_.PlanRename(from, to, 0);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? Commit(*plan) : 0;
  }
  uint64_t SetMetadata(const std::string& key, const std::string& mode,
                       const std::string& base_etag) {
    QueueRecord change;
    change.key = key;
    change.size = 10;
    change.options.metadata = {{"mode", mode}};
    change.options.if_match = base_etag;
    return Commit(schedule_.PlanSetMetadata(std::move(change)));
  }
  uint64_t Commit(const QueueSchedule::Plan& plan) {
    last_drops_ = plan.drops;
    last_inserts_ = plan.inserts;
    schedule_.Commit(plan);
    return plan.ticket;
  }
  // Claims every entry that may run now; returns them in claim order.
  std::vector<QueueRecord> TakeAll() {
    std::vector<QueueRecord> taken;
    while (schedule_.HasReady(true)) {
      uint64_t run_id = 0;
      bool retry = false;
      taken.push_back(schedule_.TakeReady(true, &run_id, &retry));
    }
    return taken;
  }
  static std::vector<QueueOp> Ops(const std::vector<QueueRecord>& records) {
    std::vector<QueueOp> ops;
    for (const QueueRecord& record : records) ops.push_back(record.op);
    return ops;
  }

  QueueSchedule schedule_{"/data"};
  int files_ = 0;
  std::vector<uint64_t> last_drops_;
  std::vector<QueueRecord> last_inserts_;
};

TEST_F(QueueScheduleTest, SetMetadataRunsInOrderWithTheOtherOperationsOfItsKey) {
  const uint64_t put = Put("k");
  const uint64_t change = SetMetadata("k", "33152", "etag-a");
  EXPECT_TRUE(last_drops_.empty()) << "a metadata change never drops a put";
  std::vector<QueueRecord> ready = TakeAll();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].seq, put);
  schedule_.Complete(put);
  ready = TakeAll();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].seq, change);
  EXPECT_EQ(ready[0].op, QueueOp::kSetMetadata);
  EXPECT_EQ(ready[0].options.if_match, "etag-a");
  EXPECT_EQ(ready[0].options.metadata.at("mode"), "33152");
}

TEST_F(QueueScheduleTest, PendingMetadataIsLaidOverWhatTheKeyHolds) {
  SetMetadata("k", "33152", "etag-a");
  PendingState state = schedule_.Pending("k");
  EXPECT_EQ(state.kind, PendingState::Kind::kMetadata);
  ASSERT_TRUE(state.metadata.has_value());
  EXPECT_EQ(state.metadata->at("mode"), "33152");
  EXPECT_EQ(schedule_.Pending("other").kind, PendingState::Kind::kNone);
  // Behind a running put (which it cannot drop), the put's content with the new metadata.
  Put("p", {{"mode", "33188"}, {"uid", "7"}});
  TakeAll();
  SetMetadata("p", "33152", "etag-b");
  state = schedule_.Pending("p");
  EXPECT_EQ(state.kind, PendingState::Kind::kPut);
  EXPECT_EQ(state.put.options.metadata.at("mode"), "33152");
  EXPECT_EQ(state.put.options.metadata.at("uid"), "7");
}

TEST_F(QueueScheduleTest, NewerPutOrDeleteDropsATrailingSetMetadata) {
  const uint64_t change = SetMetadata("k", "33152", "etag-a");
  const uint64_t put = Put("k", {{"mode", "33188"}});
  EXPECT_EQ(last_drops_, std::vector<uint64_t>{change});
  PendingState state = schedule_.Pending("k");
  EXPECT_EQ(state.kind, PendingState::Kind::kPut);
  EXPECT_EQ(state.put.options.metadata.at("mode"), "33188") << "the put carries its own metadata";
  EXPECT_EQ(schedule_.Outcome(change), std::nullopt) << "waits on the put that replaced it";
  schedule_.Complete(put);
  EXPECT_TRUE(schedule_.Outcome(change)->ok());

  const uint64_t other = SetMetadata("d", "33152", "etag-d");
  Delete("d");
  EXPECT_EQ(last_drops_, std::vector<uint64_t>{other});
  EXPECT_EQ(Ops(TakeAll()), std::vector<QueueOp>{QueueOp::kDelete});
}

TEST_F(QueueScheduleTest, NewerSetMetadataMergesAndKeepsTheOlderBaseEtag) {
  const uint64_t first = SetMetadata("k", "33152", "etag-a");
  const uint64_t second = SetMetadata("k", "33216", "etag-b");
  EXPECT_EQ(last_drops_, std::vector<uint64_t>{first});
  ASSERT_EQ(last_inserts_.size(), 1u);
  EXPECT_EQ(last_inserts_[0].options.if_match, "etag-a");
  EXPECT_EQ(schedule_.Pending("k").metadata->at("mode"), "33216");
  std::vector<QueueRecord> ready = TakeAll();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].seq, second);
  EXPECT_EQ(ready[0].options.if_match, "etag-a");
  EXPECT_EQ(ready[0].options.metadata.at("mode"), "33216");
}

TEST_F(QueueScheduleTest, SetMetadataBehindARunningOneWaitsAndDropsNothing) {
  const uint64_t running = SetMetadata("k", "33152", "etag-a");
  ASSERT_EQ(TakeAll().size(), 1u);
  const uint64_t next = SetMetadata("k", "33216", "etag-a");
  EXPECT_TRUE(last_drops_.empty()) << "a running entry is never dropped";
  ASSERT_EQ(last_inserts_.size(), 1u);
  EXPECT_EQ(last_inserts_[0].options.if_match, "")
      << "the ETag the running copy leaves is not known yet";
  EXPECT_TRUE(TakeAll().empty());
  EXPECT_EQ(schedule_.Pending("k").metadata->at("mode"), "33216");
  schedule_.Complete(running);
  std::vector<QueueRecord> ready = TakeAll();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].seq, next);
  // A put behind a running change does not drop it either.
  Put("k");
  EXPECT_TRUE(last_drops_.empty());
}

TEST_F(QueueScheduleTest, RenameKeepsATrailingSetMetadataBeforeTheCopy) {
  const uint64_t change = SetMetadata("f", "33152", "etag-f");
  Rename("f", "t");
  EXPECT_TRUE(last_drops_.empty());
  EXPECT_EQ(Ops(last_inserts_), (std::vector<QueueOp>{QueueOp::kCopy, QueueOp::kDelete}));
  PendingState target = schedule_.Pending("t");
  EXPECT_EQ(target.kind, PendingState::Kind::kCopy);
  EXPECT_EQ(target.copy_source, "f");
  ASSERT_TRUE(target.metadata.has_value()) << "the copy will carry the new metadata";
  EXPECT_EQ(target.metadata->at("mode"), "33152");
  EXPECT_EQ(schedule_.Pending("f").kind, PendingState::Kind::kDeleted);

  std::vector<QueueRecord> ready = TakeAll();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].seq, change) << "the metadata change of the source runs first";
  schedule_.Complete(change);
  EXPECT_EQ(Ops(TakeAll()), std::vector<QueueOp>{QueueOp::kCopy});
}

TEST_F(QueueScheduleTest, RenameOntoAKeyDropsItsTrailingSetMetadata) {
  Put("f");
  const uint64_t change = SetMetadata("t", "33152", "etag-t");
  Rename("f", "t");
  EXPECT_NE(std::find(last_drops_.begin(), last_drops_.end(), change), last_drops_.end());
  EXPECT_EQ(schedule_.Pending("t").kind, PendingState::Kind::kPut);
}

}  // namespace
}  // namespace strata
