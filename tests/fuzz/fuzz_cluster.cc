// Fuzz target: the cluster file parser must turn any bytes into either a cluster of valid
// nodes or a std::runtime_error with a message, never a crash or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "router/sim/cluster.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto c = tidelane::sim::ParseCluster(in, "fuzz");
    for (const auto& n : c.nodes) {
      if (n.profile.max_batch == 0 || n.profile.prefill_tokens_per_s <= 0) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
