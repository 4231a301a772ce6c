// FaultyStore: wraps any ObjectStore and injects failures, for testing the layers above against
// a misbehaving S3 without a network. Thread-safe: configure and call from any threads. Calls
// are forwarded to the wrapped store; the wrapper holds its own lock only while deciding whether
// a call fails, never across the forwarded call.
//
// What it can do, each rule limited to one kind of operation (StoreOp) or applying to all:
//   - fail the Nth matching call counted from when the rule is added (and optionally the calls
//     right after it): FailNthCall;
//   - fail a fraction of matching calls, drawn from a generator seeded at construction, so a
//     given sequence of calls fails the same way on every run: FailFraction;
//   - fail every matching call: FailAll;
//   - fail before the call reaches the wrapped store, or after it took effect (a reply lost
//     after the server committed: retries must then cope with the write having happened);
//   - cut Get bodies short while reporting success (CutBodies). This simulates a broken server
//     or a connection that closed early without the transport noticing: the Get returns ok with
//     fewer bytes than the requested range and than info.size imply. ObjectStore promises never
//     to do this, so it is a check for the layers above: they must compare the body length with
//     the range they asked for (and the object size) and treat a short body as an error rather
//     than cache or serve it.
// The default injected Status is DefaultInjectedFault(): transient, HTTP 503 "SlowDown".
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/object_store.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/thread_annotations.h"

namespace strata {

enum class StoreOp {
  kHead,
  kGet,
  kPut,
  kCreateMultipart,
  kUploadPart,
  kCompleteMultipart,
  kAbortMultipart,
  kListParts,
  kListMultipartUploads,
  kList,
  kCopy,
  kDelete,
  kDeleteBatch,
};
inline constexpr size_t kStoreOpCount = 13;

// "Head", "Get", "Put", ... for messages.
std::string_view StoreOpName(StoreOp op);

// Transient("injected fault") with HTTP 503 "SlowDown": what FaultyStore injects by default.
Status DefaultInjectedFault();

// When an injected fault strikes.
enum class FaultTiming {
  kBefore,  // the call never reaches the wrapped store
  kAfter,   // the wrapped store performs the call, then its answer is replaced by the fault
};

// One fault to inject: into which calls, with which Status, and when.
struct InjectedFault {
  std::optional<StoreOp> op = std::nullopt;  // only calls of this kind count and fail; nullopt: all
  Status status = DefaultInjectedFault();    // REQUIRES: not OK
  FaultTiming timing = FaultTiming::kBefore;
  // Only calls whose key (the destination of a copy, the prefix of a listing) contains this
  // count and fail: a key the server rejects forever. Empty: every key.
  std::string key_contains{};
};

// How FaultyStore::CutBodies shortens a Get body. The body keeps keep_bytes bytes when set, else
// keep_fraction of its length (rounded down); always at least one byte fewer than it had. Empty
// bodies cannot be cut and are returned unchanged.
struct BodyCut {
  double keep_fraction = 0.5;
  std::optional<uint64_t> keep_bytes = std::nullopt;
  uint64_t times = std::numeric_limits<uint64_t>::max();  // how many Gets to cut
};

class FaultyStore final : public ObjectStore {
 public:
  // `inner` must outlive *this. `seed` drives FailFraction.
  explicit FaultyStore(ObjectStore& inner, uint64_t seed = 1);
  FaultyStore(const FaultyStore&) = delete;
  FaultyStore& operator=(const FaultyStore&) = delete;

  // Fails the `nth` call matching `fault.op` counted from now (1: the next one) and the
  // `times - 1` matching calls after it. REQUIRES: nth >= 1.
  void FailNthCall(uint64_t nth, InjectedFault fault = {}, uint64_t times = 1);
  // Fails each call matching `fault.op` with probability `fraction` (0 to 1).
  void FailFraction(double fraction, InjectedFault fault = {});
  // Fails every call matching `fault.op` until Clear().
  void FailAll(InjectedFault fault = {});
  // Cuts the bodies of successful Gets short (see the header comment) until Clear().
  void CutBodies(BodyCut cut = {});
  // Removes every rule and body cut; counters and the generator's position are kept.
  void Clear();

  // Errors injected so far (not counting cut bodies).
  uint64_t faults_injected() const;
  // Get bodies cut short so far.
  uint64_t bodies_cut() const;
  // Calls received so far, in all or of one kind (failed ones included).
  uint64_t calls() const;
  uint64_t calls(StoreOp op) const;

  std::string Describe() const override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<GetResult> Get(std::string_view key, const GetOptions& options) override;
  // Forwarded to the wrapped store's GetInto; counts, fails and is cut short as a kGet.
  Result<GetIntoResult> GetInto(std::string_view key, const GetOptions& options,
                                std::span<char> dest) override;
  Result<PutResult> Put(std::string_view key, std::string_view body,
                        const PutOptions& options) override;
  Result<std::string> CreateMultipartUpload(std::string_view key,
                                            const PutOptions& options) override;
  Result<PartInfo> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                              std::string_view body) override;
  Result<PutResult> CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                            const std::vector<PartInfo>& parts) override;
  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) override;
  Result<std::vector<PartInfo>> ListParts(std::string_view key,
                                          std::string_view upload_id) override;
  Result<std::vector<MultipartUpload>> ListMultipartUploads(std::string_view prefix) override;
  Result<ListPage> List(const ListOptions& options) override;
  Result<PutResult> Copy(std::string_view source_key, std::string_view dest_key,
                         const CopyOptions& options) override;
  Status Delete(std::string_view key) override;
  Result<std::vector<DeleteFailure>> DeleteBatch(const std::vector<std::string>& keys) override;

 private:
  struct Rule {
    InjectedFault fault;
    // Nth-call rules fail matching calls number [first, first + times); fraction rules draw.
    uint64_t first = 0;
    uint64_t times = 0;
    std::optional<double> fraction;
    uint64_t seen = 0;  // matching calls since the rule was added
  };

  // How many of `size` body bytes a cut leaves, or nullopt when no cut applies. Counts the cut.
  std::optional<uint64_t> CutLength(uint64_t size);
  // Counts the call and returns the fault to inject into it, if any.
  std::optional<InjectedFault> Decide(StoreOp op, std::string_view key);
  // Runs `call` on the wrapped store unless `op` on `key` draws a fault.
  template <typename Call>
  auto Run(StoreOp op, std::string_view key, Call&& call) -> decltype(call());

  ObjectStore& inner_;
  mutable Mutex mu_;
  std::vector<Rule> rules_ GUARDED_BY(mu_);
  std::optional<BodyCut> cut_ GUARDED_BY(mu_);
  std::mt19937_64 rng_ GUARDED_BY(mu_);
  uint64_t faults_injected_ GUARDED_BY(mu_) = 0;
  uint64_t bodies_cut_ GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kStoreOpCount> calls_ GUARDED_BY(mu_){};
};

}  // namespace strata
