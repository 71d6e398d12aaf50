#include "router/core/router_setup.h"

#include <algorithm>

#include "router/core/baselines.h"
#include "router/core/tidal_policy.h"

namespace tidelane::core {
namespace {

constexpr std::string_view kBaselines[] = {
    "round-robin",        "random", "least-request", "power-of-two",
    "sglang-cache-aware", "llm-d",  "dynamo-kv",     "vllm-prefix"};
constexpr std::string_view kSuffix = "+admission";

}  // namespace

std::unique_ptr<RoutingPolicy> MakePolicy(std::string_view name, std::uint64_t seed) {
  if (name == "round-robin") return MakeRoundRobin();
  if (name == "random") return MakeRandom(seed);
  if (name == "least-request") return MakeLeastRequest();
  if (name == "power-of-two") return MakePowerOfTwo(seed);
  if (name == "sglang-cache-aware") return MakeSglangCacheAware();
  if (name == "llm-d") return MakeLlmd(seed);
  if (name == "dynamo-kv") return MakeDynamoKv(seed);
  if (name == "vllm-prefix") return MakeVllmPrefix(seed);
  TidalOptions o;
  // The policy keeps a view of its name: point it at our literal, not the caller's string.
  const auto names = PolicyNames();
  const auto known = std::find(names.begin(), names.end(), name);
  if (known == names.end()) return nullptr;
  o.name = *known;
  if (name == "tidal" || name == "tidal-no-admission" || name == "tidal-no-lanes" ||
      name == "tidal-no-degrade") {
    return MakeTidal(o, seed);
  }
  if (name == "tidal-no-soft") {
    o.soft = false;
    return MakeTidal(o, seed);
  }
  if (name == "tidal-no-split") {
    o.split = false;
    return MakeTidal(o, seed);
  }
  return nullptr;
}

std::vector<std::string_view> PolicyNames() {
  std::vector<std::string_view> names = {"tidal",          "tidal-no-admission",
                                         "tidal-no-soft",  "tidal-no-lanes",
                                         "tidal-no-split", "tidal-no-degrade"};
  names.insert(names.end(), std::begin(kBaselines), std::end(kBaselines));
  return names;
}

std::vector<std::string> RouterNames() {
  std::vector<std::string> names;
  for (const auto n : PolicyNames()) names.emplace_back(n);
  for (const auto b : kBaselines) names.push_back(std::string(b) + std::string(kSuffix));
  return names;
}

std::optional<RouterSetup> MakeRouter(std::string_view name, std::uint64_t seed) {
  RouterSetup s;
  s.name = std::string(name);
  std::string_view policy = name;
  const bool capped = name.size() > kSuffix.size() && name.ends_with(kSuffix);
  if (capped) policy = name.substr(0, name.size() - kSuffix.size());
  s.policy = MakePolicy(policy, seed);
  if (!s.policy) return std::nullopt;
  const bool tidal = policy.starts_with("tidal");
  if (capped && tidal) return std::nullopt;  // tidal has its own front door
  if (capped) {
    s.admission = MakeFifoCap();
  } else if (policy == "tidal-no-degrade") {
    TidalAdmissionOptions o;
    o.degrade_after_s = 1e18;
    s.admission = MakeTidalAdmission(o);
  } else if (tidal && policy != "tidal-no-admission") {
    s.admission = MakeTidalAdmission();
  } else {
    s.admission = MakeNoAdmission();
  }
  if (tidal && policy != "tidal-no-lanes") s.lanes = std::make_unique<LaneController>();
  s.keeps_contexts = tidal;
  s.steals_work = tidal;
  return s;
}

}  // namespace tidelane::core
