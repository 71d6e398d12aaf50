// What ledger.cc and ledger_retention.cc share: the clock and the retention's batch sizes.
// Internal to the ledger.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace tidelane::server::ledger_internal {

// Retention deletes at most this many requests per transaction, so a commit that waits for
// the connection waits for a few milliseconds at most; a commit that must make room itself (a
// burst outran the writer's passes) deletes fewer, since its caller waits for it.
constexpr std::size_t kPruneBatch = 64;
constexpr std::size_t kRoomBatchInCommit = 16;

inline std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tidelane::server::ledger_internal
