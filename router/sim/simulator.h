// Simulate: a discrete-event simulation of one router (policy + admission + lanes) in front of
// a cluster of nodes serving a workload. Deterministic under the seed: the same inputs give the
// same records (only decision_ns, the measured cost of each routing call, varies).
//
// Nodes run iteration-level continuous batching with chunked prefill, as vLLM does: each step
// decodes one token for every running sequence past its prompt and processes up to a chunk of
// prompt tokens; a step takes DecodeStepMs(batch) + prompt tokens / prefill rate. Sequences
// take KV blocks as their context grows; when blocks run out the newest sequence is preempted
// and recomputed. Each node keeps an LRU prefix cache of prompt blocks. A split request
// prefills on one node, then its KV cache crosses the slower of the two links to its decode
// node. Nodes report telemetry every report interval; between reports the router sees only
// its own counts. Lane changes drain a node before it switches.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "router/core/cluster_view.h"
#include "router/core/router_setup.h"
#include "router/sim/cluster.h"
#include "router/sim/workload.h"

namespace tidelane::sim {

struct SimOptions {
  core::Slo slo;                    // TTFT (from dispatch) and TPOT objectives
  double report_interval_s = 0.25;  // telemetry period
  double drain_limit_s = 1800;      // stop this long after the last arrival
  double lane_interval_s = 1.0;
  double series_bucket_s = 1.0;
  std::vector<std::pair<std::string, double>> failures;  // node name, time it dies
};

struct RequestRecord {
  double arrival = 0;
  double dispatch = -1;  // left the front door for a node
  double first_token = -1;
  double finish = -1;
  std::uint32_t output = 0;  // tokens produced
  std::uint32_t user = 0;
  bool surge = false;
  bool accepted_event = false;  // told its place in line (Accepted) at arrival
  bool degraded = false;
  bool rejected = false;
  bool lost = false;  // neither finished nor rejected: the conversation was dropped
  std::uint32_t redirects = 0;
  bool split = false;
};

struct NodeRecord {
  std::string name;
  core::Tier tier = core::Tier::kMid;
  double paralysis_s = 0;  // time with prefill backlog, decode latency or KV at/over limit
  double busy_s = 0;
  std::uint64_t served = 0;
  std::uint64_t preemptions = 0;
  std::uint32_t lane_moves = 0;
};

struct SeriesPoint {
  double t = 0;
  std::uint32_t arrivals = 0;
  std::uint32_t completions = 0;
  std::uint32_t good = 0;  // completions within both SLOs
  std::uint32_t queued = 0;
  std::uint32_t in_flight = 0;
  std::uint32_t prefill_lanes = 0;
  std::vector<double> ttft_ms;  // cluster TTFT of this bucket's completions
};

struct SimResult {
  std::string router;
  std::vector<RequestRecord> requests;  // in workload order
  std::vector<NodeRecord> nodes;
  std::vector<double> decision_ns;
  std::vector<SeriesPoint> series;
  std::uint64_t redirects = 0;
  std::uint64_t steals = 0;  // requests an idle node took from a backlogged one
  double end_s = 0;
};

SimResult Simulate(const Workload& workload, const ClusterSpec& cluster, core::RouterSetup& router,
                   const SimOptions& options);

}  // namespace tidelane::sim
