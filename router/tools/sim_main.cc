// tidelane-sim: runs routers against a simulated cluster and reports what each delivers.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "router/core/router_setup.h"
#include "router/sim/cluster.h"
#include "router/sim/metrics.h"
#include "router/sim/report.h"
#include "router/sim/simulator.h"
#include "router/sim/workload.h"

using namespace tidelane;

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

}  // namespace

namespace {

int Run(int argc, char** argv) {
  CLI::App cli{"tidelane-sim: discrete-event simulation of routers in front of a cluster"};
  std::string trace, synthetic, cluster_name = "hetero-28", policies = "all", json_out, csv_dir;
  double duration = 0, surge_at = 60, surge_window = 10, ttft_slo = 2000, tpot_slo = 100;
  std::uint32_t surge_users = 0, surge_turns = 3;
  std::uint64_t seed = 1;
  double window_len = 0;
  std::vector<std::string> failures;
  cli.add_option("--trace", trace, "Azure LLM trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens)");
  cli.add_option(
      "--synthetic", synthetic,
      "Synthetic arrivals instead of a trace: poisson:RATE or bursty:LOW:HIGH:ON_S:OFF_S");
  cli.add_option("--duration", duration, "Seconds of workload to use (0 = the whole trace)")
      ->capture_default_str();
  cli.add_option("--cluster", cluster_name,
                 "Cluster preset (hetero-28, hetero-7, homo-high-8, homo-mid-16) or JSON file")
      ->capture_default_str();
  cli.add_option("--surge-users", surge_users,
                 "Users arriving in a surge, each with a multi-turn conversation");
  cli.add_option("--surge-window", surge_window,
                 "Seconds over which the surge's first messages arrive")
      ->capture_default_str();
  cli.add_option("--surge-at", surge_at, "When the surge starts (seconds)")->capture_default_str();
  cli.add_option("--surge-turns", surge_turns, "Most turns per surge user")->capture_default_str();
  cli.add_option("--policies", policies, "all, or a comma-separated list of router names")
      ->capture_default_str();
  cli.add_option("--seed", seed, "Seed for workloads and policies")->capture_default_str();
  cli.add_option("--ttft-slo-ms", ttft_slo, "TTFT objective, from dispatch")->capture_default_str();
  cli.add_option("--tpot-slo-ms", tpot_slo, "Time-per-output-token objective")
      ->capture_default_str();
  cli.add_option("--window", window_len,
                 "Goodput window length from --surge-at (0 = max(60, 6 x surge window) with a "
                 "surge, else the run)");
  cli.add_option("--fail", failures, "NODE@SECONDS: that node dies then (repeatable)");
  cli.add_option("--json", json_out, "Write the report as JSON here (default: stdout)");
  cli.add_option("--csv-dir", csv_dir, "Write a per-second CSV series per router here");
  CLI11_PARSE(cli, argc, argv);

  try {
    sim::Workload workload;
    nlohmann::json workload_json;
    if (!trace.empty()) {
      workload = sim::LoadAzureTrace(trace, duration, seed);
      workload_json["trace"] = trace;
    } else if (!synthetic.empty()) {
      const auto parts = Split(synthetic, ':');
      const double d = duration > 0 ? duration : 600;
      if (parts.size() == 2 && parts[0] == "poisson") {
        workload = sim::Poisson(std::stod(parts[1]), d, seed);
      } else if (parts.size() == 5 && parts[0] == "bursty") {
        workload = sim::Bursty(std::stod(parts[1]), std::stod(parts[2]), std::stod(parts[3]),
                               std::stod(parts[4]), d, seed);
      } else {
        throw std::runtime_error("--synthetic must be poisson:RATE or bursty:LOW:HIGH:ON_S:OFF_S");
      }
      workload_json["synthetic"] = synthetic;
    } else if (surge_users == 0) {
      throw std::runtime_error("give --trace, --synthetic or --surge-users");
    }
    workload_json["base_requests"] = workload.requests.size();
    if (surge_users > 0) {
      sim::SurgeOptions s;
      s.users = surge_users;
      s.at_s = surge_at;
      s.window_s = surge_window;
      s.max_turns = surge_turns;
      sim::AddSurge(workload, s, seed);
      workload_json["surge"] = {{"users", surge_users},
                                {"at_s", surge_at},
                                {"window_s", surge_window},
                                {"max_turns", surge_turns}};
    }
    workload_json["requests"] = workload.requests.size();
    workload_json["duration_s"] = workload.duration_s;
    workload_json["seed"] = seed;
    workload_json["slo"] = {{"ttft_ms", ttft_slo}, {"tpot_ms", tpot_slo}};

    const auto cluster = sim::LoadCluster(cluster_name);
    sim::SimOptions options;
    options.slo = {ttft_slo, tpot_slo};
    for (const auto& f : failures) {
      const auto at = f.rfind('@');
      if (at == std::string::npos) throw std::runtime_error("--fail takes NODE@SECONDS, not " + f);
      options.failures.emplace_back(f.substr(0, at), std::stod(f.substr(at + 1)));
    }
    sim::Window window;
    if (surge_users > 0) {
      window.start_s = surge_at;
      window.length_s = window_len > 0 ? window_len : std::max(60.0, 6 * surge_window);
    } else if (window_len > 0) {
      window.length_s = window_len;
    }
    workload_json["window"] = {{"start_s", window.start_s}, {"length_s", window.length_s}};

    std::vector<std::string> names = policies == "all" ? core::RouterNames() : Split(policies, ',');
    std::vector<sim::PolicyReport> reports(names.size());
    // Routers are independent: run them on all cores (each run is itself deterministic).
    std::vector<std::string> errors(names.size());
    std::atomic<std::size_t> next{0};
    const auto worker = [&] {
      for (std::size_t i; (i = next++) < names.size();) {
        auto setup = core::MakeRouter(names[i], seed);
        if (!setup) {
          errors[i] = "no router called '" + names[i] + "'";
          continue;
        }
        const auto result = sim::Simulate(workload, cluster, *setup, options);
        reports[i] = sim::Summarize(result, options, window);
        if (!csv_dir.empty()) {
          std::filesystem::create_directories(csv_dir);
          std::ofstream csv(std::filesystem::path(csv_dir) / (names[i] + ".csv"));
          sim::WriteSeriesCsv(result, csv);
        }
      }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t)
      threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    for (const auto& e : errors) {
      if (!e.empty()) throw std::runtime_error(e);
    }
    const double bound = sim::CapacityBoundGoodput(cluster, workload, options.slo, window);
    const auto report = sim::RunReport(workload_json, cluster, bound, reports);
    if (json_out.empty()) {
      std::cout << report.dump(2) << "\n";
    } else {
      std::ofstream(json_out) << report.dump(2) << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "tidelane-sim: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace

// Errors are reported where they happen; anything escaping is a bug, said plainly.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "fatal: " << e.what() << "\n";
    return 1;
  }
}
