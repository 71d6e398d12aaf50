// Metrics of a simulation run, as tidelane-sim reports them. Definitions (docs/benchmarks/
// routing.md repeats them next to the figures):
//  - TTFT is measured from dispatch (when the request leaves the front door for a node); the
//    wait at the front door is reported separately (queue_wait, e2e TTFT), because a router
//    that queues tells the user at once (Accepted) while one that does not leaves them hanging.
//  - goodput: completions per second that met both the TTFT and TPOT SLOs.
//  - accepted_within_1s: share of arrivals told their place in line (Accepted) at once, or
//    given their first token, within one second of arriving.
//  - lost_contexts: arrivals that neither finished nor were rejected with retry-after.
//  - paralysis: node-seconds with prefill backlog, decode latency or KV cache at its limit.
//  - jain_fairness: Jain's index over users of (requests served within SLO / requests sent).
#pragma once

#include <string>

#include "router/sim/cluster.h"
#include "router/sim/simulator.h"
#include "router/sim/workload.h"

namespace tidelane::sim {

struct Window {
  double start_s = 0;
  double length_s = 0;  // 0 = the whole run
};

struct PolicyReport {
  std::string name;
  double goodput_rps = 0;       // over the measurement window
  double goodput_run_rps = 0;   // over the whole run
  double goodput_full_rps = 0;  // over the window, counting only answers not degraded
  double slo_attainment = 0;    // good / arrivals
  double ttft_p50_ms = 0, ttft_p99_ms = 0;
  double e2e_ttft_p50_ms = 0, e2e_ttft_p99_ms = 0;
  double tpot_p50_ms = 0, tpot_p99_ms = 0;
  double queue_wait_p50_ms = 0, queue_wait_p99_ms = 0;
  double accepted_within_1s = 0;
  std::uint64_t arrivals = 0, completed = 0, degraded = 0, rejected = 0, lost_contexts = 0;
  std::uint64_t redirects = 0, steals = 0, splits = 0, preemptions = 0, lane_moves = 0;
  double paralysis_node_seconds = 0;
  double jain_fairness = 0;
  double decision_ns_p50 = 0, decision_ns_p99 = 0;
  double makespan_s = 0;
  std::vector<NodeRecord> nodes;
};

PolicyReport Summarize(const SimResult& result, const SimOptions& options, const Window& window);

// The goodput no router can beat over `window`: the arrival rate, capped by the cluster's
// throughput when every node runs its largest batch within the TPOT SLO and each request costs
// its (uncached) prefill plus its share of decode steps. Prefix-cache hits can beat it.
double CapacityBoundGoodput(const ClusterSpec& cluster, const Workload& workload,
                            const core::Slo& slo, const Window& window);

// The p-th percentile (0..100) of `values` (sorted in place); 0 for none.
double Percentile(std::vector<double>& values, double p);

}  // namespace tidelane::sim
