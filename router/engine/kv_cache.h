// KvCache: the attention keys and values of every live sequence, in fixed-size blocks of
// `block_tokens` positions handed out from one pool (paged, as in vLLM's PagedAttention), so
// sequences of any length share memory without fragmentation and a finished sequence's blocks
// are reused at once. Memory is reserved up front but only touched pages become resident.
//
// Threading: not thread-safe; owned and driven by one Engine. Reads of distinct positions from
// many threads during a forward pass are safe once writes for that pass are done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tidelane::engine {

class KvCache {
 public:
  // A sequence's block table: blocks[i] holds positions [i * block_tokens, (i + 1) * ...).
  struct Blocks {
    std::vector<std::uint32_t> ids;
  };

  KvCache(std::size_t layers, std::size_t kv_dim, std::size_t block_tokens, std::size_t blocks);

  std::size_t block_tokens() const { return block_tokens_; }
  std::size_t free_blocks() const { return free_.size(); }
  std::size_t total_blocks() const { return total_blocks_; }

  // Grows `table` to hold `positions` positions. Returns false, changing nothing, when the
  // pool has too few free blocks.
  bool Reserve(Blocks& table, std::size_t positions);
  // Shrinks `table` to `positions` positions, returning whole blocks past it to the pool.
  void Shrink(Blocks& table, std::size_t positions);

  float* Key(const Blocks& t, std::size_t layer, std::size_t pos) { return Slot(t, layer, pos, 0); }
  float* Value(const Blocks& t, std::size_t layer, std::size_t pos) {
    return Slot(t, layer, pos, 1);
  }
  const float* Key(const Blocks& t, std::size_t layer, std::size_t pos) const {
    return const_cast<KvCache*>(this)->Slot(t, layer, pos, 0);
  }
  const float* Value(const Blocks& t, std::size_t layer, std::size_t pos) const {
    return const_cast<KvCache*>(this)->Slot(t, layer, pos, 1);
  }

 private:
  float* Slot(const Blocks& t, std::size_t layer, std::size_t pos, int which) {
    const std::size_t block = t.ids[pos / block_tokens_];
    return storage_.get() +
           (((block * layers_ + layer) * 2 + which) * block_tokens_ + pos % block_tokens_) *
               kv_dim_;
  }

  std::size_t layers_, kv_dim_, block_tokens_, total_blocks_;
  std::unique_ptr<float[]> storage_;  // uninitialised on purpose: pages stay untouched until used
  std::vector<std::uint32_t> free_;
};

}  // namespace tidelane::engine
