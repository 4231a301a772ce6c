#include "fs/inode_table.h"

namespace strata {

InodeTable::InodeTable() {
  nodes_[kRootInode] = Node{"", EntryType::kDirectory, 1};
  by_path_[""] = kRootInode;
}

uint64_t InodeTable::Lookup(const std::string& path, EntryType type) {
  std::lock_guard lock(mu_);
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

void InodeTable::Forget(uint64_t ino, uint64_t n) {
  std::lock_guard lock(mu_);
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

std::optional<InodeTable::Node> InodeTable::Get(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

size_t InodeTable::size() {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

}  // namespace strata
