#include "router/sim/report.h"

#include <map>

namespace tidelane::sim {

namespace {

nlohmann::json NodesJson(const std::vector<NodeRecord>& nodes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : nodes) {
    out.push_back({{"name", n.name},
                   {"served", n.served},
                   {"busy_s", n.busy_s},
                   {"paralysis_s", n.paralysis_s},
                   {"preemptions", n.preemptions},
                   {"lane_moves", n.lane_moves}});
  }
  return out;
}

}  // namespace

nlohmann::json ToJson(const PolicyReport& r) {
  return {{"name", r.name},
          {"goodput_rps", r.goodput_rps},
          {"goodput_run_rps", r.goodput_run_rps},
          {"goodput_full_rps", r.goodput_full_rps},
          {"slo_attainment", r.slo_attainment},
          {"ttft_p50_ms", r.ttft_p50_ms},
          {"ttft_p99_ms", r.ttft_p99_ms},
          {"e2e_ttft_p50_ms", r.e2e_ttft_p50_ms},
          {"e2e_ttft_p99_ms", r.e2e_ttft_p99_ms},
          {"tpot_p50_ms", r.tpot_p50_ms},
          {"tpot_p99_ms", r.tpot_p99_ms},
          {"queue_wait_p50_ms", r.queue_wait_p50_ms},
          {"queue_wait_p99_ms", r.queue_wait_p99_ms},
          {"accepted_within_1s", r.accepted_within_1s},
          {"arrivals", r.arrivals},
          {"completed", r.completed},
          {"degraded", r.degraded},
          {"rejected", r.rejected},
          {"lost_contexts", r.lost_contexts},
          {"paralysis_node_seconds", r.paralysis_node_seconds},
          {"redirects", r.redirects},
          {"steals", r.steals},
          {"splits", r.splits},
          {"preemptions", r.preemptions},
          {"lane_moves", r.lane_moves},
          {"jain_fairness", r.jain_fairness},
          {"decision_ns_p50", r.decision_ns_p50},
          {"decision_ns_p99", r.decision_ns_p99},
          {"makespan_s", r.makespan_s},
          {"nodes", NodesJson(r.nodes)}};
}

nlohmann::json RunReport(const nlohmann::json& workload, const ClusterSpec& cluster,
                         double capacity_bound, const std::vector<PolicyReport>& reports) {
  std::map<std::string, int> tiers;
  for (const auto& n : cluster.nodes) ++tiers[std::string(n.profile.name)];
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& r : reports) policies.push_back(ToJson(r));
  return {{"workload", workload},
          {"cluster", {{"name", cluster.name}, {"nodes", cluster.nodes.size()}, {"tiers", tiers}}},
          {"capacity_bound_goodput_rps", capacity_bound},
          {"policies", policies}};
}

void WriteSeriesCsv(const SimResult& result, std::ostream& out) {
  out << "t,arrivals,completions,goodput,ttft_p50_ms,ttft_p99_ms,queued,in_flight,prefill_lanes\n";
  for (const auto& b : result.series) {
    auto ttft = b.ttft_ms;
    const double p50 = Percentile(ttft, 50);
    const double p99 = Percentile(ttft, 99);
    out << b.t << ',' << b.arrivals << ',' << b.completions << ',' << b.good << ',' << p50 << ','
        << p99 << ',' << b.queued << ',' << b.in_flight << ',' << b.prefill_lanes << '\n';
  }
}

}  // namespace tidelane::sim
