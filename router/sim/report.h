// Reports of simulation runs: the JSON tidelane-sim writes, and per-second CSV series for
// plots.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "router/sim/metrics.h"

namespace tidelane::sim {

nlohmann::json ToJson(const PolicyReport& report);

// {"workload":{...},"cluster":{...},"capacity_bound_goodput_rps":X,"policies":[...]}
nlohmann::json RunReport(const nlohmann::json& workload, const ClusterSpec& cluster,
                         double capacity_bound, const std::vector<PolicyReport>& reports);

// t,arrivals,completions,goodput,ttft_p50_ms,ttft_p99_ms,queued,in_flight,prefill_lanes
void WriteSeriesCsv(const SimResult& result, std::ostream& out);

}  // namespace tidelane::sim
