#include "router/core/prefix_index.h"

#include <algorithm>

namespace tidelane::core {

void PrefixIndex::AddHolder(std::uint64_t block, std::uint32_t node) {
  auto& h = holders_[block];
  if (std::find(h.begin(), h.end(), node) == h.end()) h.push_back(node);
}

void PrefixIndex::RemoveHolder(std::uint64_t block, std::uint32_t node) {
  const auto it = holders_.find(block);
  if (it == holders_.end()) return;
  std::erase(it->second, node);
  if (it->second.empty()) holders_.erase(it);
}

void PrefixIndex::Insert(std::uint32_t node, std::uint32_t capacity_blocks,
                         std::span<const std::uint64_t> blocks) {
  NodeCache& c = nodes_[node];
  c.capacity = std::max<std::uint32_t>(1, capacity_blocks);
  // Deepest block first, so the prompt's first block ends up most recently used: eviction
  // then trims prefixes from their tails, as a radix cache evicts leaves, and "holds block i"
  // keeps implying "holds blocks 0..i-1".
  for (auto rit = blocks.rbegin(); rit != blocks.rend(); ++rit) {
    const std::uint64_t b = *rit;
    if (const auto it = c.where.find(b); it != c.where.end()) {
      c.lru.splice(c.lru.begin(), c.lru, it->second);
      continue;
    }
    c.lru.push_front(b);
    c.where[b] = c.lru.begin();
    c.present.Insert(b);
    AddHolder(b, node);
    while (c.lru.size() > c.capacity) {
      const std::uint64_t old = c.lru.back();
      c.lru.pop_back();
      c.where.erase(old);
      c.present.Erase(old);
      RemoveHolder(old, node);
    }
  }
}

std::uint32_t PrefixIndex::Match(std::uint32_t node, std::span<const std::uint64_t> blocks) const {
  const auto it = nodes_.find(node);
  if (it == nodes_.end()) return 0;
  // Held blocks form a prefix (tails are evicted first), so binary search the depth.
  const auto& where = it->second.present;
  if (blocks.empty() || !where.Contains(blocks[0])) return 0;
  std::size_t lo = 1;
  std::size_t hi = blocks.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi + 1) / 2;
    if (where.Contains(blocks[mid - 1])) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return static_cast<std::uint32_t>(lo);
}

PrefixIndex::Best PrefixIndex::Longest(std::span<const std::uint64_t> blocks) const {
  // Binary search for the deepest block anyone holds (chained hashes make holding monotone).
  std::size_t lo = 0;
  std::size_t hi = blocks.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi + 1) / 2;
    if (holders_.contains(blocks[mid - 1])) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  if (lo == 0) return {};
  return {static_cast<std::uint32_t>(lo), holders_.at(blocks[lo - 1])};
}

std::span<const std::uint32_t> PrefixIndex::Holders(std::uint64_t block) const {
  const auto it = holders_.find(block);
  if (it == holders_.end()) return {};
  return it->second;
}

std::uint32_t PrefixIndex::Size(std::uint32_t node) const {
  const auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : static_cast<std::uint32_t>(it->second.lru.size());
}

void PrefixIndex::Forget(std::uint32_t node) {
  const auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  for (const std::uint64_t b : it->second.lru) RemoveHolder(b, node);
  nodes_.erase(it);
}

}  // namespace tidelane::core
