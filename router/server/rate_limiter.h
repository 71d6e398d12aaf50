// RateLimiter: a token bucket per client credential, so one leaked or runaway token cannot
// starve everyone else. Peak shaving (admission, fair queue) handles honest surges; this is
// the cap on a single caller, enforced before any work is queued.
//
// Each key (a bearer token's hash, never the token itself) refills at `rate_per_s` up to
// `burst`. The set of keys is bounded: past `max_keys`, the bucket idle the longest is
// dropped (a dropped key starts again full, which only ever errs towards letting a caller in).
//
// Deterministic: the caller passes the time, so tests need no sleeping. Thread-safe: one
// mutex, held for a hash-map lookup.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tidelane::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    double rate_per_s = 0;  // 0 = unlimited (the default: the bundled router serves one user)
    double burst = 0;       // bucket size; at least 1 when rate_per_s > 0
    std::size_t max_keys = 4096;
  };

  struct Decision {
    bool allowed = true;
    std::chrono::milliseconds retry_after{0};  // when not allowed: until one token is back
  };

  explicit RateLimiter(Options options);

  bool enabled() const { return options_.rate_per_s > 0; }

  // Takes one token from `key`'s bucket at time `now`.
  Decision Take(std::string_view key, Clock::time_point now);

  // A key derived from a credential that is safe to keep in memory and print in logs.
  static std::string KeyFor(std::string_view token);

  std::size_t keys() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void EvictIdlest();

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace tidelane::server
