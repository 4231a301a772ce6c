#include "fs/merged_view.h"

#include <spdlog/spdlog.h>

#include <set>
#include <utility>

#include "fs/paths.h"

namespace strata {
namespace {

TimePoint Now() { return std::chrono::system_clock::now(); }

}  // namespace

Result<std::optional<EntryInfo>> MergedView::InfoFromPending(const PendingState& pending) {
  if (pending.kind == PendingState::Kind::kPut) {
    EntryInfo info;
    info.size = pending.put.size;
    info.mtime = Now();
    ApplyPosixMetadata(pending.put.options.metadata, info);
    if (pending.put.options.content_type == kDirectoryContentType)
      info.type = EntryType::kDirectory;
    return std::optional<EntryInfo>(info);
  }
  if (pending.kind == PendingState::Kind::kCopy) {
    // Renamed, not yet copied: the source object still holds the content and attributes.
    Result<ObjectInfo> head = metadata_.HeadKey(pending.copy_source);
    if (!head.ok()) {
      if (head.status().IsNotFound()) return std::optional<EntryInfo>();
      return head.status();
    }
    EntryInfo info;
    info.size = head->size;
    info.mtime = head->last_modified;
    info.etag = head->etag;
    ApplyPosixMetadata(head->metadata, info);
    if (pending.metadata) ApplyPosixMetadata(*pending.metadata, info);  // chmod before rename
    return std::optional<EntryInfo>(info);
  }
  return std::optional<EntryInfo>();
}

Result<std::optional<EntryInfo>> MergedView::Resolve(const std::string& path) {
  if (path.empty()) return std::optional<EntryInfo>(DirectoryEntry());
  if (std::shared_ptr<OpenWrite> write = writes_.Find(path)) {
    if (std::optional<EntryInfo> info = write->Current()) return info;
  }
  std::string dir, name;
  SplitPath(path, dir, name);
  if (queue_ == nullptr) return metadata_.Lookup(dir, name);
  const std::string key = metadata_.KeyOf(path);
  PendingState file;
  for (int attempt = 1;; ++attempt) {
    file = queue_->Pending(key);
    if (file.kind != PendingState::Kind::kPut && file.kind != PendingState::Kind::kCopy) break;
    Result<std::optional<EntryInfo>> info = InfoFromPending(file);
    if (!info.ok() || *info) return info;
    // A pending copy whose source is gone finished meanwhile: look at the queue again.
    if (attempt == 5) return Status::Transient("'" + path + "' keeps changing; try again");
  }
  const PendingState marker = queue_->Pending(key + "/");
  if (marker.kind == PendingState::Kind::kPut) {
    EntryInfo info = DirectoryEntry();
    ApplyPosixMetadata(marker.put.options.metadata, info);
    info.type = EntryType::kDirectory;
    return std::optional<EntryInfo>(info);
  }
  // The queue's state is taken before S3's: an operation that finishes in between is then
  // still seen as pending, and S3's answer, older or newer, is corrected by it.
  bool deletes_under = false;
  bool implied = false;  // by a pending child
  for (const auto& [child, state] : queue_->PendingUnder(key + "/")) {
    if (state.kind == PendingState::Kind::kPut || state.kind == PendingState::Kind::kCopy) {
      implied = true;
    }
    if (state.kind == PendingState::Kind::kDeleted) deletes_under = true;
  }
  Result<std::optional<EntryInfo>> info = metadata_.Lookup(dir, name);
  if (implied) {
    // It exists whatever S3 says; its attributes are S3's (its marker's) when S3 has it, so
    // that a change inside never shows the directory with the defaults.
    if (info.ok() && *info && (*info)->type == EntryType::kDirectory) return info;
    return std::optional<EntryInfo>(DirectoryEntry());
  }
  if (!info.ok() || !*info) return info;
  if ((*info)->type == EntryType::kDirectory) {
    // rmdir queued the deletion of the marker of an empty directory.
    if (marker.kind == PendingState::Kind::kDeleted) return std::optional<EntryInfo>();
    if (deletes_under) {
      // A directory whose objects are all being deleted (or renamed away) is gone.
      Result<std::shared_ptr<const DirListing>> listing = List(path, false);
      if (listing.ok() && (*listing)->entries.empty() && !(*listing)->marker) {
        return std::optional<EntryInfo>();
      }
    }
  } else if (file.kind == PendingState::Kind::kDeleted) {
    return std::optional<EntryInfo>();
  } else if (file.kind == PendingState::Kind::kMetadata) {
    ApplyPosixMetadata(*file.metadata, **info);  // chmod, chown, utimens not yet in S3
  }
  return info;
}

Result<std::shared_ptr<const DirListing>> MergedView::List(const std::string& dir,
                                                           bool check_self) {
  if (queue_ == nullptr) return metadata_.List(dir);
  // The queue first, then S3 (see Resolve).
  const std::string prefix = dir.empty() ? metadata_.options().prefix : metadata_.KeyOf(dir) + "/";
  const std::vector<std::pair<std::string, PendingState>> pending = queue_->PendingUnder(prefix);
  Result<std::shared_ptr<const DirListing>> base = metadata_.List(dir);
  auto merged = std::make_shared<DirListing>();
  if (base.ok()) {
    *merged = **base;
  } else if (base.status().IsNotFound()) {
    // Not in S3 (yet): it may exist only in the queue.
    if (!check_self) return std::shared_ptr<const DirListing>(std::move(merged));
    Result<std::optional<EntryInfo>> self = Resolve(dir);
    if (!self.ok()) return self.status();
    if (!*self || (*self)->type != EntryType::kDirectory) return base.status();
  } else {
    return base.status();
  }
  std::set<std::string> emptied;  // subdirectories with deletions under them
  for (const auto& [key, state] : pending) {
    const std::string rest = key.substr(prefix.size());
    if (rest.empty()) continue;  // this directory's own marker
    const size_t slash = rest.find('/');
    const bool live =
        state.kind == PendingState::Kind::kPut || state.kind == PendingState::Kind::kCopy;
    if (slash != std::string::npos) {
      const std::string name = rest.substr(0, slash);
      if (!ValidFileName(name)) continue;
      if (live) {
        EntryInfo& entry = merged->entries[name];
        if (entry.type != EntryType::kDirectory) entry = DirectoryEntry();
        if (slash + 1 == rest.size()) ApplyPosixMetadata(state.put.options.metadata, entry);
        entry.type = EntryType::kDirectory;
      } else if (state.kind == PendingState::Kind::kDeleted) {
        emptied.insert(name);  // gone unless something live remains under it
      }
      continue;
    }
    if (!ValidFileName(rest)) continue;
    if (live) {
      Result<std::optional<EntryInfo>> info = InfoFromPending(state);
      if (!info.ok()) return info.status();
      auto it = merged->entries.find(rest);
      if (*info && (it == merged->entries.end() || it->second.type != EntryType::kDirectory)) {
        merged->entries[rest] = **info;
        merged->unknown.erase(rest);  // this mount's own attributes
      }
    } else if (state.kind == PendingState::Kind::kDeleted) {
      auto it = merged->entries.find(rest);
      if (it != merged->entries.end() && it->second.type != EntryType::kDirectory) {
        merged->entries.erase(it);
      }
    } else if (state.kind == PendingState::Kind::kMetadata) {
      auto it = merged->entries.find(rest);
      if (it != merged->entries.end() && it->second.type != EntryType::kDirectory) {
        ApplyPosixMetadata(*state.metadata, it->second);
        merged->unknown.erase(rest);
      }
    }
  }
  for (const std::string& name : emptied) {
    auto it = merged->entries.find(name);
    if (it == merged->entries.end() || it->second.type != EntryType::kDirectory) continue;
    Result<std::optional<EntryInfo>> still = Resolve(JoinPath(dir, name));
    if (still.ok() && !*still) merged->entries.erase(it);
  }
  for (const std::shared_ptr<OpenWrite>& write : writes_.Children(dir)) {
    std::string parent, name;
    {
      MutexLock lock(write->mu);
      SplitPath(write->path, parent, name);
    }
    if (parent != dir) continue;  // moved meanwhile
    if (std::optional<EntryInfo> info = write->Current()) {
      merged->entries[name] = *info;
      merged->unknown.erase(name);
    }
  }
  return std::shared_ptr<const DirListing>(std::move(merged));
}

Result<SourceReader> MergedView::SourceOf(const std::string& path, uint64_t* size) {
  *size = 0;
  const std::string key = metadata_.KeyOf(path);
  std::optional<ObjectVersion> version;
  for (int attempt = 0; attempt < 5 && !version; ++attempt) {
    PendingState pending = queue_->Pending(key);
    switch (pending.kind) {
      case PendingState::Kind::kDeleted:
        return SourceReader();
      case PendingState::Kind::kPut: {
        Result<std::optional<UploadQueue::PendingContent>> content = queue_->OpenPending(key);
        if (!content.ok()) return content.status();
        if (!*content) continue;  // uploaded meanwhile: ask again
        *size = (*content)->size;
        return LocalSource((*content)->fd);
      }
      case PendingState::Kind::kCopy: {
        Result<ObjectInfo> head = metadata_.HeadKey(pending.copy_source);
        if (!head.ok() && head.status().IsNotFound()) continue;  // copied meanwhile: ask again
        if (!head.ok()) return head.status();
        version =
            ObjectVersion{metadata_.options().bucket, pending.copy_source, head->etag, head->size};
        break;
      }
      case PendingState::Kind::kNone:
      case PendingState::Kind::kMetadata: {  // the body stays what S3 holds
        Result<std::optional<EntryInfo>> info = metadata_.Revalidate(path);
        if (!info.ok()) return info.status();
        if (!*info) return SourceReader();
        version = ObjectVersion{metadata_.options().bucket, key, (*info)->etag, (*info)->size};
        break;
      }
    }
  }
  if (!version) {
    // Never an empty source for a file that has content: the caller would write it back empty.
    return Status::Transient("the content of '" + path + "' kept moving; try again");
  }
  *size = version->size;
  if (version->key == key) {
    std::shared_ptr<ReadStream> stream = streams_(*version);
    return SourceReader([stream](uint64_t offset, std::span<char> out) -> Result<size_t> {
      return stream->Read(offset, out);
    });
  }
  // A pending rename's source: once the copy is done the queue deletes it, and the bytes are
  // read from the copy under `key` instead (the same size, or the content moved on: an error).
  struct CopySource {
    std::mutex mu;
    std::shared_ptr<ReadStream> stream;
    bool switched = false;
  };
  auto state = std::make_shared<CopySource>();
  state->stream = streams_(*version);
  const uint64_t expected_size = version->size;
  return SourceReader(
      [this, state, key, expected_size](uint64_t offset, std::span<char> out) -> Result<size_t> {
        std::shared_ptr<ReadStream> stream;
        bool switched = false;
        {
          std::lock_guard lock(state->mu);
          stream = state->stream;
          switched = state->switched;
        }
        Result<size_t> got = stream->Read(offset, out);
        if (got.ok() || switched || !got.status().IsNotFound()) return got;
        spdlog::debug("read of '{}' through its pending rename: the source '{}' is gone ({})", key,
                      stream->object().key, got.status().ToString());
        Result<ObjectInfo> head = metadata_.HeadKey(key);
        if (!head.ok()) return head.status();
        if (head->size != expected_size) {
          return Status::PreconditionFailed("'" + key + "' changed while its rename was pending");
        }
        {
          std::lock_guard lock(state->mu);
          if (!state->switched) {
            state->stream =
                streams_(ObjectVersion{metadata_.options().bucket, key, head->etag, head->size});
            state->switched = true;
          }
          stream = state->stream;
        }
        return stream->Read(offset, out);
      });
}

}  // namespace strata
