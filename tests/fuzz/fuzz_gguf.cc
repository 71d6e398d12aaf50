// Fuzz target: the GGUF loader must turn any bytes into either a file whose every tensor lies
// inside the image, or an error message — never a crash, a hang or an allocation sized by an
// unchecked field. Accepted files then go through the model loader, which must also fail
// cleanly on missing or mis-shaped tensors.
#include <cstddef>
#include <cstdint>

#include "router/engine/gguf.h"
#include "router/engine/model.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tidelane::engine::GgufFile;
  auto file = GgufFile::FromMemory({data, size}, "fuzz.gguf");
  if (!file) {
    if (file.error().empty()) __builtin_trap();
    return 0;
  }
  for (const auto& t : (*file)->tensors()) {
    if (t.data < data || t.data + t.bytes > data + size) __builtin_trap();
  }
  auto model = tidelane::engine::Model::FromGguf(std::move(file).value());
  if (model) {
    // A model that loads must be internally consistent.
    const auto& c = (*model)->config();
    if (c.heads % c.kv_heads != 0 || c.head_dim * c.heads != c.dim) __builtin_trap();
  }
  return 0;
}
