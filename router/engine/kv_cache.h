// KvCache: the attention keys and values of every live sequence, in fixed-size blocks of
// `block_tokens` positions handed out from one pool (paged, as in vLLM's PagedAttention), so
// sequences of any length share memory without fragmentation and a finished sequence's blocks
// are reused at once. Memory is reserved up front but only touched pages become resident.
//
// Elements are F32 or IEEE half (F16, as llama.cpp's default cache): a decode step after a long
// prompt reads every cached key and value of its sequence, so half the bytes is up to half the
// attention's memory time. Keys and values are computed in F32 and rounded to nearest (ties to
// even) when stored; attention widens them back (exactly) and accumulates in F32. A magnitude
// past the largest half, 65504, would be stored as infinity (llama.cpp's F16 default makes the
// same trade; KvType::kF32 is there for a model that needs it).
//
// Layout: layer-major, [layer][keys, values][block][position in block][kv_dim]. One layer's
// keys (or values) of the whole pool are one region, so a sequence's blocks, which the pool
// hands out in increasing order (and takes back so that a run is reissued in order), lie one
// after another there: a decode step's attention reads each layer's cache as long runs.
// Block-major, [block][layer][keys, values], put one layer's consecutive blocks a whole block
// of every layer apart (192 KiB in the benchmark model), and plain loads of them ran at about
// half the streaming bandwidth. Export blobs hold rows, not blocks: the layout is not part of
// their format.
//
// Threading: not thread-safe; owned and driven by one Engine. Reads of distinct positions from
// many threads during a forward pass are safe once writes for that pass are done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace tidelane::engine {

// The element type of the KV cache (and of an exported context). The values are the ones an
// export blob records.
enum class KvType : std::uint32_t { kF32 = 0, kF16 = 1 };
std::string_view KvTypeName(KvType type);  // "f32", "f16"
std::optional<KvType> ParseKvType(std::string_view name);
inline std::size_t KvElementBytes(KvType type) {
  return type == KvType::kF16 ? 2 : 4;
}

class KvCache {
 public:
  // A sequence's block table: blocks[i] holds positions [i * block_tokens, (i + 1) * ...).
  struct Blocks {
    std::vector<std::uint32_t> ids;
  };

  KvCache(std::size_t layers, std::size_t kv_dim, std::size_t block_tokens, std::size_t blocks,
          KvType type);

  KvType type() const { return type_; }
  // Bytes of one position's keys (or values) in one layer: kv_dim elements.
  std::size_t row_bytes() const { return kv_dim_ * KvElementBytes(type_); }
  std::size_t block_tokens() const { return block_tokens_; }
  std::size_t free_blocks() const { return free_.size(); }
  std::size_t total_blocks() const { return total_blocks_; }

  // Grows `table` to hold `positions` positions. Returns false, changing nothing, when the
  // pool has too few free blocks.
  bool Reserve(Blocks& table, std::size_t positions);
  // Shrinks `table` to `positions` positions, returning whole blocks past it to the pool.
  void Shrink(Blocks& table, std::size_t positions);

  // The row_bytes() bytes of a position's keys or values: kv_dim floats or kv_dim halves (as
  // uint16_t bits), as type() says. Consecutive positions of a block are row_bytes() apart.
  std::uint8_t* Key(const Blocks& t, std::size_t layer, std::size_t pos) {
    return Slot(t, layer, pos, 0);
  }
  std::uint8_t* Value(const Blocks& t, std::size_t layer, std::size_t pos) {
    return Slot(t, layer, pos, 1);
  }
  const std::uint8_t* Key(const Blocks& t, std::size_t layer, std::size_t pos) const {
    return const_cast<KvCache*>(this)->Slot(t, layer, pos, 0);
  }
  const std::uint8_t* Value(const Blocks& t, std::size_t layer, std::size_t pos) const {
    return const_cast<KvCache*>(this)->Slot(t, layer, pos, 1);
  }

 private:
  std::uint8_t* Slot(const Blocks& t, std::size_t layer, std::size_t pos, int which) {
    const std::size_t block = t.ids[pos / block_tokens_];
    return storage_.get() +
           (((layer * 2 + which) * total_blocks_ + block) * block_tokens_ + pos % block_tokens_) *
               row_bytes();
  }

  std::size_t layers_, kv_dim_, block_tokens_, total_blocks_;
  KvType type_;
  // Uninitialised on purpose: pages stay untouched until used. operator new[] aligns it to 16
  // bytes, so every float row is aligned to its element (row_bytes() is a multiple of 4 or 2).
  std::unique_ptr<std::uint8_t[]> storage_;
  std::vector<std::uint32_t> free_;
};

}  // namespace tidelane::engine
