#include "fs/open_write.h"

#include "fs/paths.h"

namespace strata {

// A SourceReader over a local file (a pending upload's data, or what a commit handed over).
SourceReader LocalSource(std::shared_ptr<Fd> fd) {
  return [fd = std::move(fd)](uint64_t offset, std::span<char> out) -> Result<size_t> {
    return ReadFull(fd->get(), offset, out, "committed data");
  };
}

std::shared_ptr<OpenWrite> OpenWriteTable::PutIfAbsent(const std::string& path,
                                                       std::shared_ptr<OpenWrite> write) {
  MutexLock lock(mu_);
  auto [it, inserted] = writes_.emplace(path, std::move(write));
  return it->second;
}

std::optional<EntryInfo> OpenWrite::Current() {
  MutexLock lock(mu);
  if (unlinked) return std::nullopt;
  EntryInfo now = info;
  if (staged) now.size = staged->size();
  return now;
}

std::shared_ptr<OpenWrite> OpenWriteTable::Find(const std::string& path) {
  MutexLock lock(mu_);
  auto it = writes_.find(path);
  return it == writes_.end() ? nullptr : it->second;
}

void OpenWriteTable::Put(const std::string& path, std::shared_ptr<OpenWrite> write) {
  MutexLock lock(mu_);
  writes_[path] = std::move(write);
}

void OpenWriteTable::Erase(const std::string& path, const std::shared_ptr<OpenWrite>& write) {
  MutexLock lock(mu_);
  auto it = writes_.find(path);
  if (it != writes_.end() && (write == nullptr || it->second == write)) writes_.erase(it);
}

std::vector<std::shared_ptr<OpenWrite>> OpenWriteTable::Children(const std::string& dir) {
  std::vector<std::shared_ptr<OpenWrite>> out;
  MutexLock lock(mu_);
  for (const auto& [path, write] : writes_) {
    if (!path.empty() && ParentPath(path) == dir) out.push_back(write);
  }
  return out;
}

std::vector<std::shared_ptr<OpenWrite>> OpenWriteTable::Within(const std::string& dir) {
  std::vector<std::shared_ptr<OpenWrite>> out;
  MutexLock lock(mu_);
  for (const auto& [path, write] : writes_) {
    if (PathWithin(path, dir)) out.push_back(write);
  }
  return out;
}

void OpenWriteTable::Move(const std::shared_ptr<OpenWrite>& write, const std::string& to) {
  MutexLock lock(mu_);
  MutexLock write_lock(write->mu);
  auto it = writes_.find(write->path);
  if (it != writes_.end() && it->second == write) writes_.erase(it);
  write->path = to;
  writes_[to] = write;
}

void OpenWriteTable::Unlink(const std::shared_ptr<OpenWrite>& write) {
  MutexLock lock(mu_);
  MutexLock write_lock(write->mu);
  write->unlinked = true;
  auto it = writes_.find(write->path);
  if (it != writes_.end() && it->second == write) writes_.erase(it);
}

void OpenWriteTable::EraseIfIdle(const std::shared_ptr<OpenWrite>& write) {
  MutexLock lock(mu_);
  MutexLock write_lock(write->mu);
  if (write->writers > 0 || (write->dirty && !write->unlinked)) return;
  auto it = writes_.find(write->path);
  if (it != writes_.end() && it->second == write) writes_.erase(it);
}

size_t OpenWriteTable::size() {
  MutexLock lock(mu_);
  return writes_.size();
}

}  // namespace strata
