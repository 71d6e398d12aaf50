#include "router/server/rate_limiter.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tidelane::server {

RateLimiter::RateLimiter(Options options)
    : options_([&] {
        if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
        if (options.rate_per_s > 0) options.burst = std::max(1.0, options.burst);
        options.max_keys = std::max<std::size_t>(1, options.max_keys);
        return options;
      }()) {}

std::string RateLimiter::KeyFor(std::string_view token) {
  // A short BLAKE2b digest: distinct per token, and useless to someone reading a heap dump.
  unsigned char digest[16];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  char hex[sizeof digest * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

RateLimiter::Decision RateLimiter::Take(std::string_view key, Clock::time_point now) {
  if (!enabled()) return {};
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_keys) EvictIdlest();
    it = buckets_.emplace(std::string(key), Bucket{options_.burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.updated) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(options_.burst, b.tokens + elapsed * options_.rate_per_s);
    b.updated = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  const double wait_s = (1.0 - b.tokens) / options_.rate_per_s;
  return {false, std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_s * 1000)))};
}

std::size_t RateLimiter::keys() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

void RateLimiter::EvictIdlest() {
  auto idlest = buckets_.begin();
  for (auto it = buckets_.begin(); it != buckets_.end(); ++it) {
    if (it->second.updated < idlest->second.updated) idlest = it;
  }
  if (idlest != buckets_.end()) buckets_.erase(idlest);
}

}  // namespace tidelane::server
