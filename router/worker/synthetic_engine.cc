#include "router/worker/synthetic_engine.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <span>
#include <stdexcept>
#include <thread>

#include "router/receipt/receipt.h"
#include "router/worker/kv_handoff.h"

namespace tidelane::worker {
namespace {

constexpr std::uint32_t kDefaultMaxTokens = 48;

constexpr std::array<std::string_view, 32> kWords{
    "the",    "tide",    "lane",   "router",  "shaves", "every", "peak",    "so",
    "no",     "node",    "drowns", "while",   "each",   "user",  "waits",   "briefly",
    "and",    "answers", "flow",   "through", "quiet",  "water", "between", "prefill",
    "decode", "stages",  "spread", "softly",  "across", "many",  "modest",  "machines"};

// FNV-1a: a stable hash, so the same conversation gives the same answer on every worker.
std::uint64_t Fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// SplitMix64: a tiny counter-based generator; token i depends only on (seed, i).
std::uint64_t SplitMix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct ActiveGuard {
  std::atomic<std::uint32_t>& n;
  explicit ActiveGuard(std::atomic<std::uint32_t>& counter) : n(counter) { ++n; }
  ~ActiveGuard() { --n; }
  ActiveGuard(const ActiveGuard&) = delete;
  ActiveGuard& operator=(const ActiveGuard&) = delete;
};

}  // namespace

SyntheticEngine::SyntheticEngine(core::NodeProfile profile, double time_scale)
    : profile_(profile), time_scale_(time_scale) {}

std::uint32_t SyntheticEngine::CountTokens(std::string_view text) {
  std::uint32_t n = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      if (!in_word) ++n;
      in_word = true;
    } else {
      in_word = false;
      if (!std::isspace(c)) ++n;
    }
  }
  return n;
}

std::vector<std::string> SyntheticEngine::AnswerTokens(const std::vector<Message>& messages,
                                                       std::uint32_t max_tokens) {
  std::uint64_t seed = Fnv1a("tidelane");
  for (const auto& m : messages) seed = Fnv1a(m.content, Fnv1a(m.role, seed));
  const std::uint32_t n = max_tokens ? max_tokens : kDefaultMaxTokens;
  // The answer ends with a full stop at a length drawn from the seed, like a model's EOS.
  const std::uint32_t natural = 12 + static_cast<std::uint32_t>(SplitMix(seed) % 28);
  std::vector<std::string> tokens;
  tokens.reserve(std::min(n, natural));
  for (std::uint32_t i = 0; i < n && i < natural; ++i) {
    std::string_view word = kWords[SplitMix(seed + i + 1) % kWords.size()];
    std::string t = i == 0 ? "" : " ";
    t += word;
    if (i == 0) t[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    if (i + 1 == natural) t += ".";
    tokens.push_back(std::move(t));
  }
  return tokens;
}

bool SyntheticEngine::Work(double ms, const std::function<bool()>& cancelled) {
  using Clock = std::chrono::steady_clock;
  const auto to_ticks = [](double millis) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(std::max(0.0, millis)));
  };
  const auto end = Clock::now() + to_ticks(ms);
  const auto poll = to_ticks(kCancelPollMs);
  std::unique_lock lock(mu_);
  // A real engine notices a departed client between prefill chunks; this one, between slices
  // of the wait.
  while (!shutting_down_) {
    const auto now = Clock::now();
    if (now >= end) return true;
    if (cancelled) {
      lock.unlock();
      const bool gone = cancelled();
      lock.lock();
      if (gone) return false;
    }
    const Clock::duration left = end - now;
    shutdown_cv_.wait_for(lock, cancelled ? std::min(left, poll) : left,
                          [&] { return shutting_down_; });
  }
  return false;
}

void SyntheticEngine::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  shutdown_cv_.notify_all();
}

std::uint32_t SyntheticEngine::PromptTokens(const GenerationInput& input) {
  bool has_user = false;
  std::uint32_t prompt_tokens = 0;
  for (const auto& m : input.messages) {
    has_user = has_user || m.role == "user";
    prompt_tokens += CountTokens(m.content) + 4;  // + role markers of a chat template
  }
  if (!has_user) throw std::invalid_argument("the conversation has no user message");
  return prompt_tokens;
}

GenerationResult SyntheticEngine::Run(const GenerationInput& input, const TokenSink& sink) {
  return Generate(input, sink, Phase::kWhole);
}

GenerationResult SyntheticEngine::Generate(const GenerationInput& input, const TokenSink& sink,
                                           Phase phase) {
  const std::uint32_t prompt_tokens = PromptTokens(input);
  ActiveGuard guard(active_);
  const auto answer = AnswerTokens(input.messages, input.max_tokens);
  GenerationResult result;
  result.prompt_tokens = prompt_tokens;
  const auto start = static_cast<std::uint32_t>(input.generated.size());
  bool working = true;
  if (phase != Phase::kDecode) {
    // A resumed request re-prefills its prompt plus what was generated so far; a decode from
    // a handoff has its cache already.
    result.prefill_ms = profile_.PrefillMs(prompt_tokens) * time_scale_;
    working = Work(profile_.PrefillMs(prompt_tokens + start) * time_scale_, input.cancelled);
  }

  std::uint32_t i = start;
  // Prefill emits the first token only; the decode node continues from the next.
  const auto end =
      phase == Phase::kPrefill
          ? std::min<std::uint32_t>(static_cast<std::uint32_t>(answer.size()), start + 1)
          : static_cast<std::uint32_t>(answer.size());
  for (; i < end; ++i) {
    const bool step = phase == Phase::kDecode || i > start;
    if (working && step) {
      working = Work(profile_.DecodeStepMs(active_.load()) * time_scale_, input.cancelled);
    }
    if (!working || !sink(i, answer[i])) {
      result.completion_tokens = i;
      result.finish_reason = "cancelled";
      return result;
    }
  }
  result.completion_tokens = std::max<std::uint32_t>(i, start);
  if (phase == Phase::kPrefill && i < answer.size()) {
    result.finish_reason = "handoff";
    return result;
  }
  // Only a natural end carries the full stop; anything else was cut by max_tokens.
  result.finish_reason = !answer.empty() && answer.back().ends_with('.') ? "stop" : "length";
  return result;
}

namespace {

// The synthetic "KV cache": bytes that depend only on the request and its prompt, so the
// decode side can tell a cache of this conversation from any other.
void FillKv(std::span<std::uint8_t> kv, std::string_view request_id, std::string_view prompt) {
  const std::uint64_t seed = Fnv1a(prompt, Fnv1a(request_id));
  for (std::size_t i = 0; i < kv.size(); i += 8) {
    const std::uint64_t word = SplitMix(seed + i / 8);
    std::memcpy(kv.data() + i, &word, std::min<std::size_t>(8, kv.size() - i));
  }
}

std::string MessagesHash(const GenerationInput& input) {
  std::vector<std::string> parts;
  for (const auto& m : input.messages) {
    parts.push_back(m.role);
    parts.push_back(m.content);
  }
  return receipt::Sha256Strings(parts);
}

}  // namespace

std::uint64_t SyntheticEngine::KvBytes(std::uint32_t tokens) const {
  const double bytes = profile_.kv_bytes_per_token * static_cast<double>(tokens);
  return static_cast<std::uint64_t>(std::min(bytes, static_cast<double>(kMaxKvBytes)));
}

PrefillOutput SyntheticEngine::Prefill(const GenerationInput& input, const TokenSink& sink) {
  PrefillOutput out{Generate(input, sink, Phase::kPrefill), {}};
  if (out.result.finish_reason != "handoff") return out;
  HandoffHeader h;
  h.engine = std::string(Kind());
  h.model = Model();
  h.request_id = input.request_id;
  h.prompt_sha256 = MessagesHash(input);
  h.prompt_prefix = static_cast<std::uint32_t>(input.generated.size());
  h.resume_index = out.result.completion_tokens;
  // The cache of the prompt and of what was said before, as the profile's model would hold.
  std::vector<std::uint8_t> kv(KvBytes(out.result.prompt_tokens + h.prompt_prefix));
  FillKv(kv, h.request_id, h.prompt_sha256);
  out.handoff = PackHandoff(h, kv);
  return out;
}

GenerationResult SyntheticEngine::Decode(const GenerationInput& input, std::string_view handoff,
                                         const TokenSink& sink) {
  const UnpackedHandoff u = UnpackHandoff(handoff);
  CheckHandoff(u.header, Kind(), Model(), input);
  if (u.header.prompt_sha256 != MessagesHash(input)) {
    throw KvHandoffError(KvHandoffError::Kind::kForeign,
                         "the KV handoff does not belong here: it holds another prompt than "
                         "this conversation's");
  }
  std::vector<std::uint8_t> expected(u.kv.size());
  FillKv(expected, u.header.request_id, u.header.prompt_sha256);
  if (!std::equal(expected.begin(), expected.end(), u.kv.begin())) {
    throw KvHandoffError(KvHandoffError::Kind::kCorrupt,
                         "the KV handoff is unusable: its cache is not the one made for it");
  }
  return Generate(input, sink, Phase::kDecode);
}

}  // namespace tidelane::worker
