// The engine's side of a device-resident forward pass (backend.h's DeviceForward): Engine
// methods kept apart from engine.cc's CPU pass. The engine still validates the pass and
// reserves its KV blocks (Forward, before it comes here), so every documented failure of
// Forward happens before the device is touched; what the device gets is the rows' tokens and
// positions, each row's sequence's block table and the rows whose logits are wanted.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "router/engine/engine.h"

namespace tidelane::engine {

Status Engine::AttachDevice() {
  DeviceForward* device = backend_->device_forward();
  if (device == nullptr) return Ok{};
  // TIDELANE_CUDA_FORWARD=0 keeps the per-product path on a device backend (comparisons).
  if (const char* env = std::getenv("TIDELANE_CUDA_FORWARD");
      env != nullptr && std::string_view(env) == "0")
    return Ok{};
  auto prepared =
      device->Prepare(*model_, inv_freq_, kv_.block_tokens(), kv_.total_blocks(), kv_.type());
  if (!prepared) return Error{prepared.error()};
  if (!prepared->ready) {
    // A model or cache the whole pass does not take still runs, slower: this engine's pass with
    // each product on the device. One line on stderr says so and why (the daemons and
    // tidelane-generate log stderr), since it costs ~3x in decode speed; forward_on_device()
    // answers false.
    std::fprintf(stderr,
                 "tidelane engine: %s: the whole forward pass stays off the device (%s); "
                 "running the engine's pass with each weight product on the %s backend\n",
                 config().name.c_str(), prepared->why_not.c_str(),
                 std::string(backend_->Name()).c_str());
    device_declined_ = prepared->why_not;
    return Ok{};
  }
  device_ = device;
  return Ok{};
}

Result<std::vector<std::vector<float>>> Engine::ForwardOnDevice(std::span<const Step> steps) {
  std::vector<std::int32_t> tokens, positions;
  std::vector<std::uint32_t> row_table, tables, block_ids, wanted;
  tables.reserve(steps.size() + 1);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Sequence& seq = seqs_.at(steps[i].sequence);
    tables.push_back(static_cast<std::uint32_t>(block_ids.size()));
    block_ids.insert(block_ids.end(), seq.blocks.ids.begin(), seq.blocks.ids.end());
    const std::size_t n = steps[i].tokens.size();
    for (std::size_t j = 0; j < n; ++j) {
      if (steps[i].all_logits || j + 1 == n)
        wanted.push_back(static_cast<std::uint32_t>(tokens.size()));
      tokens.push_back(steps[i].tokens[j]);
      positions.push_back(static_cast<std::int32_t>(seq.tokens.size() + j));
      row_table.push_back(static_cast<std::uint32_t>(i));
    }
  }
  tables.push_back(static_cast<std::uint32_t>(block_ids.size()));
  std::vector<float> logits(wanted.size() * config().vocab);
  device_->Forward({tokens, positions, row_table, tables, block_ids, wanted}, logits.data());
  return Commit(steps, logits);
}

void Engine::CopyDeviceKv(const KvCache::Blocks& blocks, bool upload) const {
  // The host cache is the staging area: Export reads the rows it holds after a download, and
  // Import has written the blob's rows there before an upload. Whole blocks go (a sequence's
  // last block may be part-filled; the rest of it is never read).
  auto& kv = const_cast<KvCache&>(kv_);
  const std::size_t block = kv.block_tokens();
  std::vector<DeviceForward::KvBlockCopy> copies;
  copies.reserve(config().layers * 2 * blocks.ids.size());
  for (std::size_t l = 0; l < config().layers; ++l) {
    for (std::size_t i = 0; i < blocks.ids.size(); ++i) {
      const auto layer = static_cast<std::uint32_t>(l);
      copies.push_back({layer, 0, blocks.ids[i], kv.Key(blocks, l, i * block)});
      copies.push_back({layer, 1, blocks.ids[i], kv.Value(blocks, l, i * block)});
    }
  }
  if (upload) {
    device_->UploadKv(copies);
  } else {
    device_->DownloadKv(copies);
  }
}

}  // namespace tidelane::engine
