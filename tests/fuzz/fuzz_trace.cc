// Fuzz target: the Azure trace parser must turn any bytes into either a workload or a
// std::runtime_error with a message, never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "router/sim/workload.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto w = tidelane::sim::ParseAzureTrace(in, "fuzz", 0, 1);
    for (const auto& r : w.requests) {
      if (r.request.prompt_tokens == 0 || r.output_tokens == 0) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
