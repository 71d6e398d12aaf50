// PrefixIndex: the router's approximate picture of which KV blocks each node holds, built
// from what it sent there (no node reports its cache), bounded per node with LRU eviction.
// Because block hashes are chained, a node holding block i of a prompt almost always holds
// blocks 0..i-1 too, so the longest cached prefix is found by binary search over depth.
//
// Threading: not thread-safe; owned by one policy.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "router/core/flat_set.h"

namespace tidelane::core {

class PrefixIndex {
 public:
  // Each node remembers at most `capacity_blocks(node)` blocks; set per node on first insert.
  void Insert(std::uint32_t node, std::uint32_t capacity_blocks,
              std::span<const std::uint64_t> blocks);
  // How many leading blocks of `blocks` `node` is believed to hold.
  std::uint32_t Match(std::uint32_t node, std::span<const std::uint64_t> blocks) const;
  // Nodes believed to hold the longest leading run of `blocks`, and that run's length.
  struct Best {
    std::uint32_t depth = 0;
    std::span<const std::uint32_t> nodes;
  };
  Best Longest(std::span<const std::uint64_t> blocks) const;
  // Nodes believed to hold `block` (empty when none).
  std::span<const std::uint32_t> Holders(std::uint64_t block) const;
  // Blocks a node is believed to hold (SGLang's "tree size").
  std::uint32_t Size(std::uint32_t node) const;
  void Forget(std::uint32_t node);

 private:
  struct NodeCache {
    std::uint32_t capacity = 0;
    std::list<std::uint64_t> lru;  // most recent first
    std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> where;
    FlatSet present;  // the keys of `where`, for fast membership on the routing path
  };
  void AddHolder(std::uint64_t block, std::uint32_t node);
  void RemoveHolder(std::uint64_t block, std::uint32_t node);

  std::unordered_map<std::uint32_t, NodeCache> nodes_;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> holders_;
};

}  // namespace tidelane::core
