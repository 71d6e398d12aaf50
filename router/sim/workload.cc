#include "router/sim/workload.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "router/core/random.h"

namespace tidelane::sim {
namespace {

constexpr std::uint32_t kBlockTokens = 16;
constexpr std::uint32_t kMaxTokens = 2048;

// Block hashes for a prompt of `tokens` tokens: the first `shared_tokens` come from a
// content stream `shared_key` (a system prompt many users share); the rest from `own_key`.
std::vector<std::uint64_t> Blocks(std::uint32_t tokens, std::uint64_t shared_key,
                                  std::uint32_t shared_tokens, std::uint64_t own_key) {
  std::vector<std::uint64_t> out;
  std::uint64_t h = 0x7469646c616e65ull;  // "tidlane"
  for (std::uint32_t b = 0; b + 1 <= tokens / kBlockTokens; ++b) {
    const bool shared = (b + 1) * kBlockTokens <= shared_tokens;
    h = core::ChainBlockHash(h, shared ? shared_key * 1000003ull + b : own_key * 1000003ull + b);
    out.push_back(h);
  }
  return out;
}

SimRequest Make(std::uint64_t id, double t, std::uint32_t prompt, std::uint32_t output,
                std::uint32_t user, std::uint64_t own_key) {
  SimRequest s;
  s.request.id = id;
  s.request.user = user;
  s.request.prompt_tokens = std::max<std::uint32_t>(1, prompt);
  s.request.max_tokens = kMaxTokens;
  s.request.session = own_key;
  s.request.arrival_s = t;
  s.request.prefix_blocks = Blocks(s.request.prompt_tokens, 0, 0, own_key);
  s.output_tokens = std::clamp<std::uint32_t>(output, 1, kMaxTokens);
  return s;
}

// Log-normal sizes fitted by eye to the Azure 2023 conversation trace's medians and spread.
std::uint32_t LogNormal(core::Rng& rng, double median, double sigma, std::uint32_t cap) {
  const double u1 = std::max(1e-12, rng.Uniform());
  const double u2 = rng.Uniform();
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  return static_cast<std::uint32_t>(
      std::clamp(median * std::exp(sigma * z), 1.0, static_cast<double>(cap)));
}

double ParseTimestamp(const std::string& s, std::size_t line) {
  // "2023-11-16 18:15:46.6805900": seconds within the day are enough for a one-day trace.
  int y, mo, d, h, mi;
  double sec;
  if (std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6) {
    throw std::runtime_error("trace line " + std::to_string(line) + ": bad TIMESTAMP '" + s + "'");
  }
  return d * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
}

// A token count: digits only (a trailing CR from Windows line ends is allowed), at most a
// million; a million-token request is beyond any model such a trace describes.
std::uint32_t ParseCount(std::string field, std::size_t line) {
  if (!field.empty() && field.back() == '\r') field.pop_back();
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size()) {
    throw std::runtime_error("trace line " + std::to_string(line) + ": token count '" +
                             field.substr(0, 32) + "' is not a non-negative integer");
  }
  if (value > 1'000'000) {
    throw std::runtime_error("trace line " + std::to_string(line) + ": token count over 1,000,000");
  }
  return static_cast<std::uint32_t>(value);
}

void Sort(Workload& w) {
  std::stable_sort(w.requests.begin(), w.requests.end(), [](const auto& a, const auto& b) {
    return a.request.arrival_s < b.request.arrival_s;
  });
  for (std::size_t i = 0; i < w.requests.size(); ++i) w.requests[i].request.id = i;
  w.duration_s = w.requests.empty() ? 0 : w.requests.back().request.arrival_s;
}

}  // namespace

Workload LoadAzureTrace(const std::string& path, double max_duration_s, std::uint64_t seed) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open trace " + path);
  return ParseAzureTrace(in, path, max_duration_s, seed);
}

Workload ParseAzureTrace(std::istream& in, const std::string& path, double max_duration_s,
                         std::uint64_t seed) {
  std::string line;
  std::getline(in, line);
  if (line.rfind("TIMESTAMP,ContextTokens,GeneratedTokens", 0) != 0) {
    throw std::runtime_error(path + ": expected header TIMESTAMP,ContextTokens,GeneratedTokens");
  }
  core::Rng rng(seed);
  Workload w;
  w.description = "azure-trace:" + path;
  double t0 = -1;
  std::size_t n = 1;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line == "\r") continue;
    std::stringstream row(line);
    std::string ts, ctx, gen;
    if (!std::getline(row, ts, ',') || !std::getline(row, ctx, ',') || !std::getline(row, gen)) {
      throw std::runtime_error("trace line " + std::to_string(n) + ": expected three fields");
    }
    const double t = ParseTimestamp(ts, n);
    if (t0 < 0) t0 = t;
    if (max_duration_s > 0 && t - t0 > max_duration_s) break;
    const std::uint32_t prompt = ParseCount(ctx, n);
    const std::uint32_t output = ParseCount(gen, n);
    // The trace has no users or contents: each row is its own user and conversation.
    w.requests.push_back(
        Make(0, t - t0, prompt, output, static_cast<std::uint32_t>(1000000 + n), rng.Next()));
  }
  Sort(w);
  return w;
}

Workload Poisson(double rate, double duration_s, std::uint64_t seed) {
  return Bursty(rate, rate, duration_s, 0, duration_s, seed);
}

Workload Bursty(double low_rate, double high_rate, double on_s, double off_s, double duration_s,
                std::uint64_t seed) {
  core::Rng rng(seed);
  Workload w;
  w.description = low_rate == high_rate ? "poisson" : "bursty";
  double t = 0;
  std::uint32_t user = 2000000;
  while (t < duration_s) {
    const double period = on_s + off_s;
    const double phase = period > 0 ? std::fmod(t, period) : 0;
    const double rate = phase < on_s ? high_rate : low_rate;
    t += rng.Exponential(1.0 / std::max(rate, 1e-6));
    if (t >= duration_s) break;
    w.requests.push_back(Make(0, t, LogNormal(rng, 1000, 0.9, 8000), LogNormal(rng, 200, 0.9, 1500),
                              ++user, rng.Next()));
  }
  Sort(w);
  return w;
}

void AddSurge(Workload& w, const SurgeOptions& o, std::uint64_t seed) {
  core::Rng rng(seed ^ 0x5eedull);
  const std::uint32_t system_tokens[] = {512, 768, 1024, 384, 640, 896, 256, 1152};
  for (std::uint32_t u = 0; u < o.users; ++u) {
    const std::uint32_t system = rng.Below(std::max(1u, o.system_prompts));
    const std::uint32_t sys_len = system_tokens[system % 8];
    const std::uint64_t conversation = rng.Next();
    const std::uint32_t turns = 1 + rng.Below(std::max(1u, o.max_turns));
    double t = o.at_s + rng.Uniform() * o.window_s;
    std::uint32_t history = sys_len;
    for (std::uint32_t k = 0; k < turns; ++k) {
      const std::uint32_t question = LogNormal(rng, 60, 0.8, 1000);
      const std::uint32_t answer = LogNormal(rng, 180, 0.8, 1200);
      SimRequest s = Make(0, t, history + question, answer, u, conversation);
      s.request.session = conversation;
      s.request.prefix_blocks =
          Blocks(s.request.prompt_tokens, 1000 + system, sys_len, conversation);
      s.surge = true;
      w.requests.push_back(std::move(s));
      history += question + answer;
      // The next turn comes after the user has read this answer and typed the next one.
      t += rng.Exponential(o.think_time_s) + answer * 0.03;
    }
  }
  w.description += "+surge(" + std::to_string(o.users) + " users)";
  Sort(w);
}

}  // namespace tidelane::sim
