// The simulator keeps its promises: every request ends exactly once, runs replay exactly
// under a seed, the tidal router loses no conversation when a node dies (published routers
// do), and the loaders give clear errors for bad files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "router/core/router_setup.h"
#include "router/sim/cluster.h"
#include "router/sim/metrics.h"
#include "router/sim/simulator.h"
#include "router/sim/workload.h"

using namespace tidelane;

namespace {

sim::Workload SmallSurge(std::uint64_t seed) {
  auto w = sim::Poisson(2, 30, seed);
  sim::SurgeOptions s;
  s.users = 150;
  s.at_s = 10;
  s.window_s = 5;
  sim::AddSurge(w, s, seed);
  return w;
}

sim::SimResult Simulated(const std::string& router, const sim::Workload& w, std::uint64_t seed,
                         sim::SimOptions o = {}) {
  auto setup = core::MakeRouter(router, seed);
  EXPECT_TRUE(setup) << router;
  return sim::Simulate(w, sim::ClusterPreset("hetero-7"), *setup, o);
}

std::filesystem::path Temp(const std::string& name, const std::string& text) {
  const auto p = std::filesystem::temp_directory_path() / ("tidelane-sim-test-" + name);
  std::ofstream(p) << text;
  return p;
}

}  // namespace

TEST(Simulator, EveryRequestEndsExactlyOnceForEveryRouter) {
  const auto w = SmallSurge(3);
  for (const auto& name : core::RouterNames()) {
    const auto r = Simulated(name, w, 3);
    ASSERT_EQ(r.requests.size(), w.requests.size()) << name;
    for (const auto& q : r.requests) {
      const int endings = (q.finish >= 0) + q.rejected + q.lost;
      ASSERT_EQ(endings, 1) << name << " request arriving at " << q.arrival;
      if (q.finish >= 0) {
        EXPECT_GE(q.first_token, q.dispatch);
        EXPECT_GE(q.dispatch, q.arrival);
        EXPECT_GE(q.finish, q.first_token);
        EXPECT_GE(q.output, 1u);
      }
    }
  }
}

TEST(Simulator, TidalAcceptsEveryoneAtOnceAndLosesNothing) {
  const auto w = SmallSurge(4);
  const auto r = Simulated("tidal", w, 4);
  const auto rep = sim::Summarize(r, {}, {});
  EXPECT_EQ(rep.lost_contexts, 0u);
  EXPECT_DOUBLE_EQ(rep.accepted_within_1s, 1.0);
  EXPECT_EQ(rep.completed + rep.rejected, rep.arrivals);
}

TEST(Simulator, ReplaysExactlyUnderASeed) {
  const auto w = SmallSurge(5);
  const auto a = Simulated("tidal", w, 5);
  const auto b = Simulated("tidal", w, 5);
  ASSERT_EQ(a.requests.size(), b.requests.size());
  for (std::size_t i = 0; i < a.requests.size(); ++i) {
    EXPECT_EQ(a.requests[i].finish, b.requests[i].finish);
    EXPECT_EQ(a.requests[i].split, b.requests[i].split);
  }
  const auto c = Simulated("tidal", w, 6);
  bool differs = false;
  for (std::size_t i = 0; i < a.requests.size(); ++i)
    differs |= a.requests[i].finish != c.requests[i].finish;
  EXPECT_TRUE(differs) << "another seed should route differently";
}

TEST(Simulator, ANodeDyingMidSurgeLosesNothingWithTidalButDoesWithPublishedRouters) {
  const auto w = SmallSurge(7);
  sim::SimOptions o;
  o.failures = {{"high-0", 14.0}};
  const auto tidal = sim::Summarize(Simulated("tidal", w, 7, o), o, {});
  EXPECT_EQ(tidal.lost_contexts, 0u);
  EXPECT_GT(tidal.redirects, 0u);
  const auto rr = sim::Summarize(Simulated("round-robin", w, 7, o), o, {});
  EXPECT_GT(rr.lost_contexts, 0u);
}

TEST(Simulator, AdmissionShavesThePeakOffTheNodes) {
  auto w = sim::Poisson(2, 60, 8);
  sim::SurgeOptions s;
  s.users = 600;
  s.at_s = 10;
  s.window_s = 5;
  sim::AddSurge(w, s, 8);
  const auto with = sim::Summarize(Simulated("tidal", w, 8), {}, {});
  const auto without = sim::Summarize(Simulated("tidal-no-admission", w, 8), {}, {});
  EXPECT_LT(with.paralysis_node_seconds, without.paralysis_node_seconds);
  EXPECT_LT(with.ttft_p99_ms, without.ttft_p99_ms);
}

TEST(Workload, ReadsTheAzureTraceInOrder) {
  const auto w = sim::LoadAzureTrace(TIDELANE_SHARED_DIR "/traces/azure-llm-2023-conv.csv", 120, 1);
  ASSERT_GT(w.requests.size(), 100u);
  EXPECT_LE(w.duration_s, 120);
  for (std::size_t i = 1; i < w.requests.size(); ++i) {
    EXPECT_LE(w.requests[i - 1].request.arrival_s, w.requests[i].request.arrival_s);
  }
  // First row of the trace: 374 prompt tokens, 44 generated.
  EXPECT_EQ(w.requests[0].request.prompt_tokens, 374u);
  EXPECT_EQ(w.requests[0].output_tokens, 44u);
}

TEST(Workload, BadTracesSayWhatAndWhere) {
  const auto header = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  const auto row = "2023-11-16 18:15:46.6805900,374,44\n";
  EXPECT_THROW(sim::LoadAzureTrace("/nonexistent/trace.csv", 0, 1), std::runtime_error);
  EXPECT_THROW(sim::LoadAzureTrace(Temp("nohdr", row).string(), 0, 1), std::runtime_error);
  try {
    sim::LoadAzureTrace(
        Temp("badrow", std::string(header) + row + "2023-11-16 18:15:47.0,abc,5\n").string(), 0, 1);
    FAIL() << "a non-numeric token count must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      sim::LoadAzureTrace(Temp("badts", std::string(header) + "yesterday,1,2\n").string(), 0, 1),
      std::runtime_error);
}

TEST(Cluster, PresetsAndFilesWithOverridesAndClearErrors) {
  const auto h = sim::LoadCluster("hetero-28");
  ASSERT_EQ(h.nodes.size(), 28u);
  EXPECT_EQ(std::count_if(h.nodes.begin(), h.nodes.end(),
                          [](auto& n) { return n.profile.tier == core::Tier::kHigh; }),
            4);
  EXPECT_EQ(std::count_if(h.nodes.begin(), h.nodes.end(),
                          [](auto& n) { return n.profile.tier == core::Tier::kLow; }),
            16);
  const auto f = sim::LoadCluster(
      Temp("c.json",
           R"({"nodes":[{"profile":"high","count":2},{"profile":"low","count":1,"max_batch":2}]})")
          .string());
  ASSERT_EQ(f.nodes.size(), 3u);
  EXPECT_EQ(f.nodes[2].profile.max_batch, 2u);
  EXPECT_THROW(sim::LoadCluster(Temp("bad.json", "{nodes:").string()), std::runtime_error);
  EXPECT_THROW(
      sim::LoadCluster(Temp("field.json", R"({"nodes":[{"profile":"high","speed":3}]})").string()),
      std::runtime_error);
  EXPECT_THROW(sim::LoadCluster(Temp("prof.json", R"({"nodes":[{"profile":"quantum"}]})").string()),
               std::runtime_error);
  EXPECT_THROW(sim::LoadCluster("no-such-preset"), std::runtime_error);
}

TEST(Metrics, CapacityBoundIsTheArrivalRateWhenTheClusterIsIdle) {
  const auto w = sim::Poisson(0.5, 100, 1);
  const double bound = sim::CapacityBoundGoodput(sim::ClusterPreset("homo-high-8"), w, {}, {});
  EXPECT_NEAR(bound, w.requests.size() / 100.0, 0.2);
  std::vector<double> v{5, 1, 3};
  EXPECT_DOUBLE_EQ(sim::Percentile(v, 50), 3);
}
