// Helpers shared by the upload queue tests: GateStore, an ObjectStore wrapper that can hold one
// call at a gate and records the state every mutation left its key in, and QueueTest, a fixture
// with a temp directory, a staging area and a FakeClock.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backends/faulty_store.h"
#include "backends/object_store.h"
#include "base/clock.h"
#include "cache/upload_queue.h"
#include "tests/support/memory_store.h"

namespace strata::queue_test {

namespace fs = std::filesystem;

inline bool IsOk(const Status& status) { return status.ok(); }
template <typename T>
bool IsOk(const Result<T>& result) {
  return result.ok();
}

// Forwards every call to `inner`. Arm() makes the nth matching call wait at a gate until
// Release(), which lets it through or fails it. Every successful mutation (put, completed
// multipart upload, copy, delete) is recorded together with the state it left its key in.
class GateStore final : public ObjectStore {
 public:
  using History = std::map<std::string, std::vector<std::optional<std::string>>>;

  explicit GateStore(ObjectStore& inner) : inner_(inner) {}

  // Holds the `nth` call of `op` (on `key`, or any key when empty) counted from now.
  void Arm(StoreOp op, std::string key = "", int nth = 1) {
    std::lock_guard lock(mu_);
    gate_ = Gate{op, std::move(key), nth};
  }
  // Waits until a call is held at the gate.
  bool WaitHeld() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_; });
  }
  // Lets the held call go on to the inner store (OK) or fail with `result`.
  void Release(Status result = Status::Ok()) {
    std::lock_guard lock(mu_);
    release_ = std::move(result);
    released_ = true;
    cv_.notify_all();
  }
  History history() {
    std::lock_guard lock(record_mu_);
    return history_;
  }

  std::string Describe() const override { return "gate(" + inner_.Describe() + ")"; }
  Result<ObjectInfo> Head(std::string_view key) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kHead, key));
    return inner_.Head(key);
  }
  Result<GetResult> Get(std::string_view key, const GetOptions& options) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kGet, key));
    return inner_.Get(key, options);
  }
  Result<PutResult> Put(std::string_view key, std::string_view body,
                        const PutOptions& options) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kPut, key));
    return Mutate(key, [&] { return inner_.Put(key, body, options); });
  }
  Result<std::string> CreateMultipartUpload(std::string_view key,
                                            const PutOptions& options) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kCreateMultipart, key));
    return inner_.CreateMultipartUpload(key, options);
  }
  Result<PartInfo> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                              std::string_view body) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kUploadPart, key));
    return inner_.UploadPart(key, upload_id, part_number, body);
  }
  Result<PutResult> CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                            const std::vector<PartInfo>& parts) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kCompleteMultipart, key));
    return Mutate(key, [&] { return inner_.CompleteMultipartUpload(key, upload_id, parts); });
  }
  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kAbortMultipart, key));
    return inner_.AbortMultipartUpload(key, upload_id);
  }
  Result<std::vector<PartInfo>> ListParts(std::string_view key,
                                          std::string_view upload_id) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kListParts, key));
    return inner_.ListParts(key, upload_id);
  }
  Result<std::vector<MultipartUpload>> ListMultipartUploads(std::string_view prefix) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kListMultipartUploads, prefix));
    return inner_.ListMultipartUploads(prefix);
  }
  Result<ListPage> List(const ListOptions& options) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kList, options.prefix));
    return inner_.List(options);
  }
  Result<PutResult> Copy(std::string_view source_key, std::string_view dest_key,
                         const CopyOptions& options) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kCopy, dest_key));
    return Mutate(dest_key, [&] { return inner_.Copy(source_key, dest_key, options); });
  }
  Status Delete(std::string_view key) override {
    STRATA_RETURN_IF_ERROR(Pass(StoreOp::kDelete, key));
    return Mutate(key, [&] { return inner_.Delete(key); });
  }
  Result<std::vector<DeleteFailure>> DeleteBatch(const std::vector<std::string>& keys) override {
    return inner_.DeleteBatch(keys);
  }

 private:
  struct Gate {
    StoreOp op = StoreOp::kPut;
    std::string key{};
    int remaining = 0;
  };

  Status Pass(StoreOp op, std::string_view key) {
    std::unique_lock lock(mu_);
    if (!gate_.has_value() || gate_->op != op || (!gate_->key.empty() && gate_->key != key)) {
      return Status::Ok();
    }
    if (--gate_->remaining > 0) return Status::Ok();
    gate_.reset();
    held_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    held_ = false;
    released_ = false;
    return release_;
  }

  template <typename Call>
  auto Mutate(std::string_view key, Call&& call) -> decltype(call()) {
    std::lock_guard lock(record_mu_);
    auto result = call();
    if (IsOk(result)) {
      Result<GetResult> now = inner_.Get(key, {});
      history_[std::string(key)].push_back(now.ok() ? std::optional<std::string>(now->body)
                                                    : std::nullopt);
    }
    return result;
  }

  ObjectStore& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Gate> gate_;
  bool held_ = false;
  bool released_ = false;
  Status release_;
  std::mutex record_mu_;  // makes a mutation and the read of its result one step
  History history_;
};

// Whether `observed` (states of one key, in store order) is a subsequence, repeats allowed, of
// `model` (states in enqueue order, starting from "absent"): no state ever came back after a
// newer one replaced it.
inline bool InModelOrder(const std::vector<std::optional<std::string>>& observed,
                         const std::vector<std::optional<std::string>>& model) {
  size_t at = 0;
  for (const auto& state : observed) {
    while (at < model.size() && model[at] != state) ++at;
    if (at == model.size()) return false;
  }
  return true;
}

inline std::string Bytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>('a' + rng() % 26);
  return out;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The newest pending put of `key` (through pending renames); nullopt when there is none or the
// key is being deleted.
inline std::optional<PendingPut> PendingPutOf(UploadQueue& queue, const std::string& key) {
  PendingState state = queue.Pending(key);
  if (state.kind != PendingState::Kind::kPut) return std::nullopt;
  return std::move(state.put);
}

// Whether `key` is being deleted (its newest pending operation is a delete).
inline bool BeingDeleted(UploadQueue& queue, const std::string& key) {
  return queue.Pending(key).kind == PendingState::Kind::kDeleted;
}

// The whole contents of a store as key -> body.
inline std::map<std::string, std::string> Contents(ObjectStore& store) {
  std::map<std::string, std::string> out;
  ListOptions options;
  while (true) {
    Result<ListPage> page = store.List(options);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) return out;
    for (const ObjectInfo& object : page->objects) {
      Result<GetResult> got = store.Get(object.key, {});
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (got.ok()) out[object.key] = got->body;
    }
    if (!page->truncated) return out;
    options.continuation_token = page->next_continuation_token;
  }
}

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-upload-queue-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    staging_ = dir + "/staging";
    queue_dir_ = dir + "/queue";
    fs::create_directories(staging_);
  }
  void TearDown() override {
    queue_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  UploadQueueOptions Options() {
    UploadQueueOptions options;
    options.dir = queue_dir_;
    options.workers = 4;
    options.multipart_threshold = 1 << 20;
    options.part_size = 256 << 10;
    options.clock = &clock_;
    options.seed = 42;
    return options;
  }

  void OpenQueue(ObjectStore& store, UploadQueueOptions options) {
    queue_.reset();
    Result<std::unique_ptr<UploadQueue>> queue = UploadQueue::Open(store, std::move(options));
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(queue).value();
  }
  void OpenQueue(ObjectStore& store) { OpenQueue(store, Options()); }

  // Writes `content` to a new fsynced file in the staging area and returns its path.
  std::string Stage(const std::string& content) {
    const std::string path = staging_ + "/staged-" + std::to_string(++staged_);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      EXPECT_GT(n, 0);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    EXPECT_EQ(::fsync(fd), 0);
    ::close(fd);
    return path;
  }

  uint64_t Put(const std::string& key, const std::string& content) {
    Result<uint64_t> seq = queue_->EnqueuePut(key, Stage(content), content.size());
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    return seq.ok() ? *seq : 0;
  }
  uint64_t Delete(const std::string& key) {
    Result<uint64_t> seq = queue_->EnqueueDelete(key);
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    return seq.ok() ? *seq : 0;
  }
  uint64_t Rename(const std::string& from, const std::string& to) {
    Result<uint64_t> seq = queue_->EnqueueRename(from, to);
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    return seq.ok() ? *seq : 0;
  }

  void DrainOk() {
    Status st = queue_->Drain(std::chrono::seconds(20));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  size_t DataFiles() const {
    size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(queue_dir_ + "/data", ec), end; !ec && it != end;
         it.increment(ec)) {
      ++n;
    }
    return n;
  }

  static std::optional<std::string> Object(ObjectStore& store, const std::string& key) {
    Result<GetResult> got = store.Get(key, {});
    if (!got.ok()) return std::nullopt;
    return got->body;
  }

  // Stores outlive the queue: a test's stores come from Own(), which keeps them until the
  // fixture is destroyed, after TearDown closed the queue.
  template <typename Store, typename... Args>
  Store& Own(Args&&... args) {
    auto store = std::make_shared<Store>(std::forward<Args>(args)...);
    stores_.push_back(store);
    return *store;
  }
  template <typename Store>
  Store& Own(std::unique_ptr<Store> store) {
    std::shared_ptr<Store> shared = std::move(store);
    stores_.push_back(shared);
    return *shared;
  }

  std::vector<std::shared_ptr<void>> stores_;
  std::string dir_;
  std::string staging_;
  std::string queue_dir_;
  int staged_ = 0;
  FakeClock clock_;
  std::unique_ptr<UploadQueue> queue_;
};

}  // namespace strata::queue_test
