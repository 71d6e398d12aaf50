#include "router/engine/kv_cache.h"

namespace tidelane::engine {

std::string_view KvTypeName(KvType type) {
  return type == KvType::kF16 ? "f16" : "f32";
}

std::optional<KvType> ParseKvType(std::string_view name) {
  if (name == "f32") return KvType::kF32;
  if (name == "f16") return KvType::kF16;
  return std::nullopt;
}

KvCache::KvCache(std::size_t layers, std::size_t kv_dim, std::size_t block_tokens,
                 std::size_t blocks, KvType type)
    : layers_(layers),
      kv_dim_(kv_dim),
      block_tokens_(block_tokens),
      total_blocks_(blocks),
      type_(type),
      storage_(
          new std::uint8_t[layers_ * 2 * blocks * block_tokens * kv_dim * KvElementBytes(type)]) {
  free_.reserve(blocks);
  // Hand out low block numbers first so a small load touches little memory.
  for (std::size_t i = blocks; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
}

bool KvCache::Reserve(Blocks& table, std::size_t positions) {
  const std::size_t need = (positions + block_tokens_ - 1) / block_tokens_;
  if (need <= table.ids.size()) return true;
  if (need - table.ids.size() > free_.size()) return false;
  while (table.ids.size() < need) {
    table.ids.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvCache::Shrink(Blocks& table, std::size_t positions) {
  const std::size_t keep = (positions + block_tokens_ - 1) / block_tokens_;
  while (table.ids.size() > keep) {
    free_.push_back(table.ids.back());
    table.ids.pop_back();
  }
}

}  // namespace tidelane::engine
