#include "backends/faulty_store.h"

#include <algorithm>
#include <cassert>
#include <type_traits>
#include <utility>

namespace strata {

std::string_view StoreOpName(StoreOp op) {
  switch (op) {
    case StoreOp::kHead:
      return "Head";
    case StoreOp::kGet:
      return "Get";
    case StoreOp::kPut:
      return "Put";
    case StoreOp::kCreateMultipart:
      return "CreateMultipartUpload";
    case StoreOp::kUploadPart:
      return "UploadPart";
    case StoreOp::kCompleteMultipart:
      return "CompleteMultipartUpload";
    case StoreOp::kAbortMultipart:
      return "AbortMultipartUpload";
    case StoreOp::kListParts:
      return "ListParts";
    case StoreOp::kListMultipartUploads:
      return "ListMultipartUploads";
    case StoreOp::kList:
      return "List";
    case StoreOp::kCopy:
      return "Copy";
    case StoreOp::kDelete:
      return "Delete";
    case StoreOp::kDeleteBatch:
      return "DeleteBatch";
  }
  return "unknown";
}

Status DefaultInjectedFault() {
  return Status::Transient("injected fault").WithRemote(503, "SlowDown");
}

FaultyStore::FaultyStore(ObjectStore& inner, uint64_t seed) : inner_(inner), rng_(seed) {}

void FaultyStore::FailNthCall(uint64_t nth, InjectedFault fault, uint64_t times) {
  assert(nth >= 1 && !fault.status.ok());
  MutexLock lock(mu_);
  Rule rule;
  rule.fault = std::move(fault);
  rule.first = nth;
  rule.times = times;
  rules_.push_back(std::move(rule));
}

void FaultyStore::FailFraction(double fraction, InjectedFault fault) {
  assert(!fault.status.ok());
  MutexLock lock(mu_);
  Rule rule;
  rule.fault = std::move(fault);
  rule.fraction = std::clamp(fraction, 0.0, 1.0);
  rules_.push_back(std::move(rule));
}

void FaultyStore::FailAll(InjectedFault fault) { FailFraction(1.0, std::move(fault)); }

void FaultyStore::CutBodies(BodyCut cut) {
  MutexLock lock(mu_);
  cut_ = cut;
}

void FaultyStore::Clear() {
  MutexLock lock(mu_);
  rules_.clear();
  cut_.reset();
}

uint64_t FaultyStore::faults_injected() const {
  MutexLock lock(mu_);
  return faults_injected_;
}

uint64_t FaultyStore::bodies_cut() const {
  MutexLock lock(mu_);
  return bodies_cut_;
}

uint64_t FaultyStore::calls() const {
  MutexLock lock(mu_);
  uint64_t total = 0;
  for (uint64_t n : calls_) total += n;
  return total;
}

uint64_t FaultyStore::calls(StoreOp op) const {
  MutexLock lock(mu_);
  return calls_[static_cast<size_t>(op)];
}

std::optional<InjectedFault> FaultyStore::Decide(StoreOp op, std::string_view key) {
  MutexLock lock(mu_);
  ++calls_[static_cast<size_t>(op)];
  std::optional<InjectedFault> chosen;
  // Every matching rule counts the call and draws, even when an earlier rule already chose to
  // fail it, so that one rule's pattern does not depend on the others.
  for (Rule& rule : rules_) {
    if (rule.fault.op && *rule.fault.op != op) continue;
    if (!rule.fault.key_contains.empty() && key.find(rule.fault.key_contains) == key.npos) {
      continue;
    }
    ++rule.seen;
    bool fail;
    if (rule.fraction) {
      // 53 random bits as a double in [0, 1): the same on every platform for a given seed.
      double draw = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
      fail = draw < *rule.fraction;
    } else {
      fail = rule.seen >= rule.first && rule.seen - rule.first < rule.times;
    }
    if (fail && !chosen) chosen = rule.fault;
  }
  if (chosen) ++faults_injected_;
  return chosen;
}

template <typename Call>
auto FaultyStore::Run(StoreOp op, std::string_view key, Call&& call) -> decltype(call()) {
  std::optional<InjectedFault> fault = Decide(op, key);
  if (fault && fault->timing == FaultTiming::kBefore) return fault->status;
  auto result = call();
  if (fault) return fault->status;
  return result;
}

std::string FaultyStore::Describe() const { return "faulty(" + inner_.Describe() + ")"; }

Result<ObjectInfo> FaultyStore::Head(std::string_view key) {
  return Run(StoreOp::kHead, key, [&] { return inner_.Head(key); });
}

std::optional<uint64_t> FaultyStore::CutLength(uint64_t size) {
  if (size == 0) return std::nullopt;
  MutexLock lock(mu_);
  if (!cut_ || cut_->times == 0) return std::nullopt;
  uint64_t keep = cut_->keep_bytes
                      ? *cut_->keep_bytes
                      : static_cast<uint64_t>(static_cast<double>(size) *
                                              std::clamp(cut_->keep_fraction, 0.0, 1.0));
  --cut_->times;
  ++bodies_cut_;
  return std::min(keep, size - 1);
}

Result<GetResult> FaultyStore::Get(std::string_view key, const GetOptions& options) {
  Result<GetResult> result = Run(StoreOp::kGet, key, [&] { return inner_.Get(key, options); });
  if (!result.ok()) return result;
  if (std::optional<uint64_t> keep = CutLength(result->body.size())) result->body.resize(*keep);
  return result;
}

Result<GetIntoResult> FaultyStore::GetInto(std::string_view key, const GetOptions& options,
                                           std::span<char> dest) {
  Result<GetIntoResult> result =
      Run(StoreOp::kGet, key, [&] { return inner_.GetInto(key, options, dest); });
  if (!result.ok()) return result;
  if (std::optional<uint64_t> keep = CutLength(result->bytes)) result->bytes = *keep;
  return result;
}

Result<PutResult> FaultyStore::Put(std::string_view key, std::string_view body,
                                   const PutOptions& options) {
  return Run(StoreOp::kPut, key, [&] { return inner_.Put(key, body, options); });
}

Result<std::string> FaultyStore::CreateMultipartUpload(std::string_view key,
                                                       const PutOptions& options) {
  return Run(StoreOp::kCreateMultipart, key,
             [&] { return inner_.CreateMultipartUpload(key, options); });
}

Result<PartInfo> FaultyStore::UploadPart(std::string_view key, std::string_view upload_id,
                                         int part_number, std::string_view body) {
  return Run(StoreOp::kUploadPart, key,
             [&] { return inner_.UploadPart(key, upload_id, part_number, body); });
}

Result<PutResult> FaultyStore::CompleteMultipartUpload(std::string_view key,
                                                       std::string_view upload_id,
                                                       const std::vector<PartInfo>& parts) {
  return Run(StoreOp::kCompleteMultipart, key,
             [&] { return inner_.CompleteMultipartUpload(key, upload_id, parts); });
}

Status FaultyStore::AbortMultipartUpload(std::string_view key, std::string_view upload_id) {
  return Run(StoreOp::kAbortMultipart, key,
             [&] { return inner_.AbortMultipartUpload(key, upload_id); });
}

Result<std::vector<PartInfo>> FaultyStore::ListParts(std::string_view key,
                                                     std::string_view upload_id) {
  return Run(StoreOp::kListParts, key, [&] { return inner_.ListParts(key, upload_id); });
}

Result<std::vector<MultipartUpload>> FaultyStore::ListMultipartUploads(std::string_view prefix) {
  return Run(StoreOp::kListMultipartUploads, prefix,
             [&] { return inner_.ListMultipartUploads(prefix); });
}

Result<ListPage> FaultyStore::List(const ListOptions& options) {
  return Run(StoreOp::kList, options.prefix, [&] { return inner_.List(options); });
}

Result<PutResult> FaultyStore::Copy(std::string_view source_key, std::string_view dest_key,
                                    const CopyOptions& options) {
  return Run(StoreOp::kCopy, dest_key, [&] { return inner_.Copy(source_key, dest_key, options); });
}

Status FaultyStore::Delete(std::string_view key) {
  return Run(StoreOp::kDelete, key, [&] { return inner_.Delete(key); });
}

Result<std::vector<DeleteFailure>> FaultyStore::DeleteBatch(const std::vector<std::string>& keys) {
  return Run(StoreOp::kDeleteBatch, std::string_view(), [&] { return inner_.DeleteBatch(keys); });
}

}  // namespace strata
