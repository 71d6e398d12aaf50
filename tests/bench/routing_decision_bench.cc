// The cost of one routing decision (Route, and separately the OnPlaced bookkeeping) for every
// policy, at cluster sizes from 10 to 10,000 nodes. Besides Google Benchmark's mean, each run
// reports the median and p99 of individually timed decisions (steady_clock around each call, ~20 ns
// of timer overhead included). Run with: scripts/bench-routing (or
// build/release/bin/routing_decision_bench).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "router/core/core.h"

using namespace tidelane::core;

namespace {

struct Cluster {
  std::vector<NodeProfile> profiles;
  std::vector<NodeState> nodes;

  explicit Cluster(std::size_t n) {
    profiles.reserve(n);
    Rng rng(99);
    for (std::size_t i = 0; i < n; ++i) {
      // The hetero-28 mix: 1/7 high, 2/7 mid, 4/7 low.
      const char* tier = i % 7 == 0 ? "high" : i % 7 < 3 ? "mid" : "low";
      profiles.push_back(*FindProfile(tier));
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      NodeState s;
      s.id = i;
      s.profile = &profiles[i];
      for (auto& v : s.saturation.v) v = rng.Uniform() * 0.8;
      s.running = rng.Below(s.profile->max_batch);
      s.queued_prefill_tokens = rng.Below(4000);
      s.outstanding = s.running;
      nodes.push_back(s);
    }
  }
};

void Decide(benchmark::State& state, const std::string& policy) {
  Cluster c(static_cast<std::size_t>(state.range(0)));
  auto router = MakeRouter(policy, 1);
  Rng rng(7);
  // 64 conversations sharing 4 system prompts, so prefix-aware policies have work to do.
  std::vector<Request> requests(256);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto& r = requests[i];
    r.id = i;
    r.prompt_tokens = 200 + rng.Below(3000);
    r.max_tokens = 1024;
    r.expected_output_tokens = 200;
    std::uint64_t h = 1;
    const std::uint32_t blocks = r.prompt_tokens / 16;
    for (std::uint32_t b = 0; b < blocks; ++b) {
      h = ChainBlockHash(h, b < 32 ? (i % 4) * 100000 + b : (i % 64) * 100000 + b);
      r.prefix_blocks.push_back(h);
    }
  }
  std::vector<double> ns;
  std::vector<double> placed_ns;
  ns.reserve(1 << 20);
  placed_ns.reserve(1 << 20);
  double now = 0;
  std::size_t k = 0;
  for (auto _ : state) {
    const Request& r = requests[k++ % requests.size()];
    now += 0.001;  // a decision per simulated millisecond
    const ClusterView view{c.nodes, now, Slo{}};
    const auto t0 = std::chrono::steady_clock::now();
    const auto at = router->policy->Route(r, view);
    const auto t1 = std::chrono::steady_clock::now();
    if (at) router->policy->OnPlaced(r, *at, view);
    const auto t2 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(at);
    if (ns.size() < ns.capacity()) {
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      placed_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count());
    }
  }
  // The decision is Route; OnPlaced is the bookkeeping after it (prefix caches learn).
  const auto median = [](std::vector<double>& v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[static_cast<std::size_t>(q * (v.size() - 1))];
  };
  state.counters["route_p50_ns"] = median(ns, 0.5);
  state.counters["route_p99_ns"] = median(ns, 0.99);
  state.counters["placed_p50_ns"] = median(placed_ns, 0.5);
  state.counters["nodes"] = static_cast<double>(c.nodes.size());
}

void RegisterAll() {
  for (const auto name : PolicyNames()) {
    if (name.starts_with("tidal-")) continue;  // ablations decide like tidal
    benchmark::RegisterBenchmark(("decide/" + std::string(name)).c_str(),
                                 [n = std::string(name)](benchmark::State& s) { Decide(s, n); })
        ->Arg(10)
        ->Arg(100)
        ->Arg(1000)
        ->Arg(10000);
  }
}

}  // namespace

int main(int argc, char** argv) {
  RegisterAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
