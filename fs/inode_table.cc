#include "fs/inode_table.h"

#include <vector>

namespace strata {

InodeTable::InodeTable() {
  nodes_[kRootInode] = Node{"", EntryType::kDirectory, 1};
  by_path_[""] = kRootInode;
}

uint64_t InodeTable::Lookup(const std::string& path, EntryType type) {
  MutexLock lock(mu_);
  if (auto it = by_path_.find(path); it != by_path_.end()) {
    Node& node = nodes_.at(it->second);
    if (node.type == type) {
      node.lookups++;
      return it->second;
    }
    // The path changed type: the old inode stays until forgotten but is no longer found.
    if (it->second == kRootInode) return kRootInode;
  }
  const uint64_t ino = next_ino_++;
  nodes_[ino] = Node{path, type, 1};
  by_path_[path] = ino;
  return ino;
}

std::optional<uint64_t> InodeTable::Find(const std::string& path) {
  MutexLock lock(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return std::nullopt;
  return it->second;
}

void InodeTable::Forget(uint64_t ino, uint64_t n) {
  MutexLock lock(mu_);
  if (ino == kRootInode) return;
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  node.lookups = n >= node.lookups ? 0 : node.lookups - n;
  if (node.lookups > 0) return;
  if (auto by = by_path_.find(node.path); by != by_path_.end() && by->second == ino) {
    by_path_.erase(by);
  }
  nodes_.erase(it);
}

void InodeTable::Unlink(const std::string& path) {
  MutexLock lock(mu_);
  if (auto it = by_path_.find(path); it != by_path_.end() && it->second != kRootInode) {
    by_path_.erase(it);
  }
}

void InodeTable::Rename(const std::string& from, const std::string& to) {
  MutexLock lock(mu_);
  if (from.empty() || from == to) return;
  // Whatever was at `to` (and under it) is replaced.
  const std::string to_prefix = to + "/";
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    if (it->first == to || it->first.starts_with(to_prefix)) {
      it = by_path_.erase(it);
    } else {
      ++it;
    }
  }
  const std::string from_prefix = from + "/";
  std::vector<std::pair<std::string, uint64_t>> moved;
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    if (it->first == from || it->first.starts_with(from_prefix)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = by_path_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [path, ino] : moved) {
    nodes_.at(ino).path = path;
    by_path_[path] = ino;
  }
}

std::optional<InodeTable::Node> InodeTable::Get(uint64_t ino) {
  MutexLock lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

size_t InodeTable::size() {
  MutexLock lock(mu_);
  return nodes_.size();
}

}  // namespace strata
