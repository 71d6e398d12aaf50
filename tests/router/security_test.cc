// The router's per-credential rate limit and the TLS file checks: a runaway client is capped
// without touching anyone else, and a misconfigured certificate or a key others can read is
// refused at start with a message that names the file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "router/proto/tls.h"
#include "router/server/rate_limiter.h"

using tidelane::server::RateLimiter;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

fs::path FreshDir(const std::string& name) {
  const auto dir =
      fs::temp_directory_path() / ("tidelane-security-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

fs::path Write(const fs::path& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

std::string ErrorOf(const tidelane::tls::Files& files) {
  try {
    tidelane::tls::Validate(files);
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

const char kPem[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const char kKeyPem[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

}  // namespace

TEST(RateLimiter, UnlimitedByDefault) {
  RateLimiter limiter({});
  const auto t0 = RateLimiter::Clock::time_point{};
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limiter.Take("k", t0).allowed);
  EXPECT_EQ(limiter.keys(), 0u);
}

TEST(RateLimiter, BurstThenSteadyRateWithRetryAfter) {
  RateLimiter limiter({.rate_per_s = 2, .burst = 5});
  const auto t0 = RateLimiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Take("a", t0).allowed) << i;
  const auto refused = limiter.Take("a", t0);
  EXPECT_FALSE(refused.allowed);
  // At 2 tokens a second, the next one is back in half a second.
  EXPECT_EQ(refused.retry_after, 500ms);
  EXPECT_FALSE(limiter.Take("a", t0 + 499ms).allowed);
  EXPECT_TRUE(limiter.Take("a", t0 + 500ms).allowed);
  // A long pause refills only up to the burst.
  const auto later = t0 + 1h;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Take("a", later).allowed) << i;
  EXPECT_FALSE(limiter.Take("a", later).allowed);
}

TEST(RateLimiter, OneCallerDoesNotStarveAnother) {
  RateLimiter limiter({.rate_per_s = 1, .burst = 1});
  const auto t0 = RateLimiter::Clock::time_point{} + 1h;
  EXPECT_TRUE(limiter.Take("noisy", t0).allowed);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter.Take("noisy", t0).allowed);
  EXPECT_TRUE(limiter.Take("quiet", t0).allowed);
}

TEST(RateLimiter, KeysAreBoundedAndNeverTheTokenItself) {
  RateLimiter limiter({.rate_per_s = 1, .burst = 1, .max_keys = 8});
  const auto t0 = RateLimiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 100; ++i) {
    limiter.Take(RateLimiter::KeyFor("token-" + std::to_string(i)), t0 + std::chrono::seconds(i));
  }
  EXPECT_LE(limiter.keys(), 8u);
  const auto key = RateLimiter::KeyFor("s3cret-token");
  EXPECT_EQ(key.find("s3cret"), std::string::npos);
  EXPECT_EQ(key, RateLimiter::KeyFor("s3cret-token"));
  EXPECT_NE(key, RateLimiter::KeyFor("s3cret-tokeN"));
}

TEST(TlsFiles, NothingConfiguredIsPlaintext) {
  EXPECT_EQ(ErrorOf({}), "");
  EXPECT_NE(tidelane::tls::ServerCredentials({}, tidelane::tls::ClientCerts::kNone), nullptr);
  EXPECT_NE(tidelane::tls::ChannelCredentials({}), nullptr);
}

TEST(TlsFiles, RefusesHalfConfigurationsAndBadFilesNamingThem) {
  const auto dir = FreshDir("files");
  const auto cert = Write(dir / "cert.pem", kPem, 0644);
  const auto key = Write(dir / "key.pem", kKeyPem, 0600);
  EXPECT_EQ(ErrorOf({cert, key, cert}), "");

  EXPECT_NE(ErrorOf({cert, {}, {}}).find("--tls-key"), std::string::npos);
  EXPECT_NE(ErrorOf({{}, key, {}}).find("--tls-cert"), std::string::npos);

  const auto missing = dir / "nope.pem";
  EXPECT_NE(ErrorOf({missing, key, {}}).find(missing.string()), std::string::npos);

  const auto open_key = Write(dir / "open-key.pem", kKeyPem, 0644);
  const auto open_error = ErrorOf({cert, open_key, {}});
  EXPECT_NE(open_error.find("chmod 600"), std::string::npos) << open_error;

  const auto not_pem = Write(dir / "ca.der", "\x30\x82\x01\x0a", 0644);
  EXPECT_NE(ErrorOf({{}, {}, not_pem}).find("not PEM"), std::string::npos);

  const auto empty = Write(dir / "empty.pem", "", 0644);
  EXPECT_NE(ErrorOf({{}, {}, empty}).find("empty"), std::string::npos);
  fs::remove_all(dir);
}
