#include "cache/queue_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

#include "backends/s3_multipart.h"
#include "base/posix_file.h"

namespace strata {
namespace {

using Outcome = QueueRunner::Outcome;
using RunResult = QueueRunner::RunResult;

RunResult Done(std::string etag = "") {
  return RunResult{Outcome::kDone, Status::Ok(), std::move(etag)};
}
RunResult Failed(Status status) { return RunResult{Outcome::kFailed, std::move(status), ""}; }
RunResult Stopped() { return RunResult{Outcome::kStopped, Status::Ok(), ""}; }

// A metadata change whose object another writer replaced or deleted: that version wins.
RunResult NotApplied(const QueueRecord& record, std::string_view why) {
  spdlog::warn(
      "upload queue: '{}' was replaced or deleted by another writer ({}); chmod/chown/utimens "
      "not applied",
      record.key, why);
  return Done();
}

// Local failures to save progress are worth retrying (a full disk may get space back).
Status SaveFailed(const Status& st) {
  return Status::Transient("cannot save upload progress: " + st.ToString());
}

// Reads exactly `length` bytes at `offset` into *out.
Status ReadAt(int fd, uint64_t offset, uint64_t length, const std::string& path, std::string* out) {
  out->resize(length);
  STRATA_ASSIGN_OR_RETURN(const size_t n, ReadFull(fd, offset, std::span<char>(*out), path));
  if (n < length) return Status::Corrupt("staged file " + path + " ends early");
  return Status::Ok();
}

bool IsHexMd5(std::string_view etag) {
  return etag.size() == 32 && std::all_of(etag.begin(), etag.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

}  // namespace

QueueRunner::QueueRunner(ObjectStore& store, QueueDb& db, Options options)
    : store_(store), db_(db), options_(options) {}

uint64_t QueueRunner::PartSizeFor(uint64_t size) const {
  const uint64_t max_parts = static_cast<uint64_t>(kMaxPartNumber);
  return std::max(options_.part_size, (size + max_parts - 1) / max_parts);
}

QueueRunner::RunResult QueueRunner::Run(QueueRecord& record, const std::string& data_path,
                                        const Hooks& hooks) {
  switch (record.op) {
    case QueueOp::kPut:
      return RunPut(record, data_path, hooks);
    case QueueOp::kDelete: {
      Status st = store_.Delete(record.key);
      return st.ok() ? Done() : Failed(std::move(st));
    }
    case QueueOp::kCopy: {
      Result<PutResult> copied = store_.Copy(record.source, record.key, CopyOptions{});
      return copied.ok() ? Done(copied->etag) : Failed(copied.status());
    }
    case QueueOp::kSetMetadata:
      return RunSetMetadata(record);
  }
  return Failed(Status::Internal("unknown queue operation"));
}

QueueRunner::RunResult QueueRunner::RunPut(QueueRecord& record, const std::string& data_path,
                                           const Hooks& hooks) {
  Fd fd(::open(data_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Failed(Status::Io("staged file " + data_path + " of '" + record.key +
                             "' cannot be opened: " + std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return Failed(Status::Io("stat " + data_path + ": " + std::strerror(errno)));
  }
  if (static_cast<uint64_t>(st.st_size) != record.size) {
    return Failed(Status::Corrupt("staged file " + data_path + " has " +
                                  std::to_string(st.st_size) + " bytes; the queue recorded " +
                                  std::to_string(record.size)));
  }
  if (!record.upload_id.empty() || record.size >= options_.multipart_threshold) {
    return RunMultipart(record, fd.get(), hooks);
  }
  std::string body;
  Status read = ReadAt(fd.get(), 0, record.size, data_path, &body);
  if (!read.ok()) return Failed(std::move(read));
  Result<PutResult> put = store_.Put(record.key, body, record.options);
  if (!put.ok()) return Failed(put.status());
  if (hooks.on_bytes_sent) hooks.on_bytes_sent(record.size);
  return Done(put->etag);
}

QueueRunner::RunResult QueueRunner::RunSetMetadata(const QueueRecord& record) {
  Result<ObjectInfo> head = store_.Head(record.key);
  if (!head.ok()) {
    if (head.status().IsNotFound()) return NotApplied(record, "it is gone");
    return Failed(head.status());
  }
  const bool applied = std::all_of(
      record.options.metadata.begin(), record.options.metadata.end(), [&](const auto& field) {
        auto it = head->metadata.find(field.first);
        return it != head->metadata.end() && it->second == field.second;
      });
  // Already there: an earlier attempt copied, and its reply (or the record of it) was lost.
  if (applied) return Done(head->etag);
  if (!record.options.if_match.empty() && !EtagMatches(record.options.if_match, head->etag)) {
    return NotApplied(
        record, "ETag " + head->etag + ", the change was based on " + record.options.if_match);
  }
  if (head->size > kMaxCopyObjectBytes) {
    spdlog::error(
        "upload queue: cannot change the metadata of '{}': {} bytes is above the 5 GiB one "
        "CopyObject copies (UploadPartCopy is not implemented)",
        record.key, head->size);
    return Failed(Status::InvalidArgument("metadata change of '" + record.key + "' (" +
                                          std::to_string(head->size) +
                                          " bytes): objects above 5 GiB cannot be copied"));
  }
  CopyOptions options;
  options.directive = MetadataDirective::kReplace;
  options.content_type = head->content_type;
  options.metadata = head->metadata;  // names the change does not set are kept
  for (const auto& [name, value] : record.options.metadata) {
    options.metadata.insert_or_assign(name, value);
  }
  options.if_match = head->etag;
  Result<PutResult> copied = store_.Copy(record.key, record.key, options);
  if (copied.ok()) return Done(copied->etag);
  if (copied.status().kind() == ErrorKind::kPreconditionFailed) {
    return NotApplied(record, "it changed during the copy");
  }
  if (copied.status().IsNotFound()) return NotApplied(record, "it is gone");
  return Failed(copied.status());
}

QueueRunner::RunResult QueueRunner::RunMultipart(QueueRecord& record, int fd, const Hooks& hooks) {
  if (!record.upload_id.empty()) {
    Result<std::vector<PartInfo>> listed = store_.ListParts(record.key, record.upload_id);
    if (!listed.ok()) {
      if (!listed.status().IsNotFound()) return Failed(listed.status());
      if (std::optional<std::string> etag = CompletedEarlier(record)) return Done(*etag);
      spdlog::info("upload queue: multipart upload {} of '{}' is gone; starting over",
                   record.upload_id, record.key);
      Status st = ForgetUpload(record, hooks);
      if (!st.ok()) return Failed(SaveFailed(st));
    } else {
      // Keep the saved parts the store confirms; upload the others again.
      std::map<int, const PartInfo*> in_store;
      for (const PartInfo& part : *listed) in_store[part.part_number] = &part;
      std::erase_if(record.parts, [&](const PartInfo& saved) {
        auto it = in_store.find(saved.part_number);
        return it == in_store.end() || it->second->size != saved.size ||
               !EtagMatches(saved.etag, it->second->etag);
      });
    }
  }
  if (record.upload_id.empty()) {
    const uint64_t part_size = PartSizeFor(record.size);
    Result<std::string> created = store_.CreateMultipartUpload(record.key, record.options);
    if (!created.ok()) return Failed(created.status());
    Status st = db_.SetUpload(record.seq, *created, part_size);
    if (!st.ok()) {
      IgnoreError(store_.AbortMultipartUpload(record.key, *created),
                  "the upload is not recorded; the next open aborts it if this fails");
      return Failed(SaveFailed(st));
    }
    record.upload_id = *created;
    record.part_size = part_size;
    record.parts.clear();
    if (hooks.on_progress) hooks.on_progress(record);
  }

  const uint64_t part_size = record.part_size;
  const uint64_t count = (record.size + part_size - 1) / part_size;
  std::vector<int> todo;
  for (uint64_t index = 0; index < count; ++index) {
    const int number = static_cast<int>(index + 1);
    const bool have = std::any_of(record.parts.begin(), record.parts.end(),
                                  [&](const PartInfo& p) { return p.part_number == number; });
    if (!have) todo.push_back(number);
  }
  // Several parts in flight: one stream rarely fills the link (or keeps S3 busy). Each part is
  // saved as soon as the store acknowledges it, in whatever order they finish.
  std::mutex mu;
  size_t next = 0;
  Status failure;         // the first failure; no new part starts after it
  bool vanished = false;  // the store no longer knows the upload
  bool stopped = false;
  auto upload_parts = [&] {
    std::string body;
    for (;;) {
      int number = 0;
      {
        std::lock_guard lock(mu);
        if (next == todo.size() || !failure.ok() || vanished || stopped) return;
        if (hooks.should_stop && hooks.should_stop()) {
          stopped = true;
          return;
        }
        number = todo[next++];
      }
      const uint64_t offset = static_cast<uint64_t>(number - 1) * part_size;
      const uint64_t length = std::min(part_size, record.size - offset);
      Status read = ReadAt(fd, offset, length, record.key, &body);
      if (!read.ok()) {
        std::lock_guard lock(mu);
        if (failure.ok()) failure = std::move(read);
        return;
      }
      Result<PartInfo> part = store_.UploadPart(record.key, record.upload_id, number, body);
      std::lock_guard lock(mu);
      if (!part.ok()) {
        if (part.status().IsNotFound()) {
          vanished = true;
        } else if (failure.ok()) {
          failure = part.status();
        }
        return;
      }
      PartInfo info = std::move(part).value();
      info.part_number = number;
      info.size = length;
      Status st = db_.AddPart(record.seq, info);
      if (!st.ok()) {
        if (failure.ok()) failure = SaveFailed(st);
        return;
      }
      record.parts.push_back(std::move(info));
      std::sort(record.parts.begin(), record.parts.end(),
                [](const PartInfo& a, const PartInfo& b) { return a.part_number < b.part_number; });
      if (hooks.on_progress) hooks.on_progress(record);
      if (hooks.on_bytes_sent) hooks.on_bytes_sent(length);
    }
  };
  std::vector<std::thread> helpers;
  const size_t streams = std::min<size_t>(std::max(1, options_.part_parallelism), todo.size());
  for (size_t i = 1; i < streams; ++i) helpers.emplace_back(upload_parts);
  upload_parts();
  for (std::thread& helper : helpers) helper.join();
  if (vanished) {
    Status st = ForgetUpload(record, hooks);
    if (!st.ok()) return Failed(SaveFailed(st));
    return Failed(Status::Transient("multipart upload of '" + record.key + "' vanished"));
  }
  if (!failure.ok()) return Failed(std::move(failure));
  if (stopped) return Stopped();

  Result<PutResult> completed =
      store_.CompleteMultipartUpload(record.key, record.upload_id, record.parts);
  if (completed.ok()) return Done(completed->etag);
  if (!completed.status().IsNotFound()) return Failed(completed.status());
  if (std::optional<std::string> etag = CompletedEarlier(record)) return Done(*etag);
  Status st = ForgetUpload(record, hooks);
  if (!st.ok()) return Failed(SaveFailed(st));
  return Failed(
      Status::Transient("multipart upload of '" + record.key +
                        "' vanished before completion: " + completed.status().ToString()));
}

Status QueueRunner::ForgetUpload(QueueRecord& record, const Hooks& hooks) {
  STRATA_RETURN_IF_ERROR(db_.SetUpload(record.seq, "", 0));
  record.upload_id.clear();
  record.part_size = 0;
  record.parts.clear();
  if (hooks.on_progress) hooks.on_progress(record);
  return Status::Ok();
}

std::optional<std::string> QueueRunner::CompletedEarlier(const QueueRecord& record) {
  if (record.part_size == 0 || record.parts.empty()) return std::nullopt;
  const uint64_t count = (record.size + record.part_size - 1) / record.part_size;
  if (record.parts.size() != count) return std::nullopt;
  for (const PartInfo& part : record.parts) {
    if (!IsHexMd5(part.etag)) return std::nullopt;
  }
  Result<ObjectInfo> head = store_.Head(record.key);
  if (!head.ok() || head->size != record.size ||
      !EtagMatches(MultipartEtag(record.parts), head->etag)) {
    return std::nullopt;
  }
  return head->etag;
}

}  // namespace strata
