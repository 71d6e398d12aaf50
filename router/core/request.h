// Request: what a routing decision may know about one request. The router fills it from a
// ChatRequest; the simulator from its workload. The true answer length is not in here: no
// router knows it in advance, only an estimate.
#pragma once

#include <cstdint>
#include <vector>

namespace tidelane::core {

enum class Priority { kInteractive, kBatch };

struct Request {
  std::uint64_t id = 0;
  std::uint32_t user = 0;  // fairness key
  Priority priority = Priority::kInteractive;
  std::uint32_t prompt_tokens = 0;
  std::uint32_t max_tokens = 0;              // the client's cap on the answer
  std::uint32_t expected_output_tokens = 0;  // the router's estimate of the answer length
  std::uint64_t session = 0;                 // conversation key, for session affinity
  // Chained hashes of the prompt's full KV blocks: block i's hash covers tokens
  // [0, (i + 1) * block_tokens), so equal hashes mean equal prefixes.
  std::vector<std::uint64_t> prefix_blocks;
  double arrival_s = 0;
};

// Chains block hashes the way prefix caches do: hash(i) = mix(hash(i-1), content(i)).
inline std::uint64_t ChainBlockHash(std::uint64_t previous, std::uint64_t block_content) {
  std::uint64_t x =
      previous ^ (block_content + 0x9e3779b97f4a7c15ull + (previous << 6) + (previous >> 2));
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace tidelane::core
