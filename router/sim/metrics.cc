#include "router/sim/metrics.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace tidelane::sim {

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * (v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

PolicyReport Summarize(const SimResult& r, const SimOptions& o, const Window& window) {
  PolicyReport rep;
  rep.name = r.router;
  std::vector<double> ttft, e2e, tpot, wait, decisions = r.decision_ns;
  std::uint64_t good_window = 0, good_full = 0, good_run = 0, accepted_fast = 0;
  struct UserTally {
    double sent = 0, good = 0;
  };
  std::unordered_map<std::uint32_t, UserTally> users;
  const double w_start = window.start_s;
  const double w_len = window.length_s > 0 ? window.length_s : r.end_s;
  for (const auto& q : r.requests) {
    ++rep.arrivals;
    auto& u = users[q.user];
    u.sent += 1;
    if (q.rejected) ++rep.rejected;
    if (q.lost) ++rep.lost_contexts;
    if (q.degraded) ++rep.degraded;
    if (q.split) ++rep.splits;
    const bool told = q.accepted_event && !q.rejected;
    if (told || (q.first_token >= 0 && q.first_token - q.arrival <= 1.0)) ++accepted_fast;
    if (q.dispatch >= 0) wait.push_back(1000.0 * (q.dispatch - q.arrival));
    if (q.finish < 0) continue;
    ++rep.completed;
    const double t = 1000.0 * (q.first_token - q.dispatch);
    const double p = q.output > 1 ? 1000.0 * (q.finish - q.first_token) / (q.output - 1) : 0;
    ttft.push_back(t);
    e2e.push_back(1000.0 * (q.first_token - q.arrival));
    if (q.output > 1) tpot.push_back(p);
    if (t <= o.slo.ttft_ms && p <= o.slo.tpot_ms) {
      ++good_run;
      u.good += 1;
      if (q.finish >= w_start && q.finish < w_start + w_len) {
        ++good_window;
        if (!q.degraded) ++good_full;
      }
    }
  }
  rep.goodput_rps = good_window / w_len;
  rep.goodput_full_rps = good_full / w_len;
  rep.goodput_run_rps = r.end_s > 0 ? good_run / r.end_s : 0;
  rep.slo_attainment = rep.arrivals ? static_cast<double>(good_run) / rep.arrivals : 0;
  rep.accepted_within_1s = rep.arrivals ? static_cast<double>(accepted_fast) / rep.arrivals : 0;
  rep.ttft_p50_ms = Percentile(ttft, 50);
  rep.ttft_p99_ms = Percentile(ttft, 99);
  rep.e2e_ttft_p50_ms = Percentile(e2e, 50);
  rep.e2e_ttft_p99_ms = Percentile(e2e, 99);
  rep.tpot_p50_ms = Percentile(tpot, 50);
  rep.tpot_p99_ms = Percentile(tpot, 99);
  rep.queue_wait_p50_ms = Percentile(wait, 50);
  rep.queue_wait_p99_ms = Percentile(wait, 99);
  rep.decision_ns_p50 = Percentile(decisions, 50);
  rep.decision_ns_p99 = Percentile(decisions, 99);
  rep.redirects = r.redirects;
  rep.steals = r.steals;
  for (const auto& n : r.nodes) {
    rep.paralysis_node_seconds += n.paralysis_s;
    rep.preemptions += n.preemptions;
    rep.lane_moves += n.lane_moves;
  }
  double sum = 0, sum_sq = 0;
  for (const auto& [_, u] : users) {
    const double x = u.good / u.sent;
    sum += x;
    sum_sq += x * x;
  }
  rep.jain_fairness = sum_sq > 0 ? sum * sum / (users.size() * sum_sq) : 0;
  rep.makespan_s = r.end_s;
  rep.nodes = r.nodes;
  return rep;
}

double CapacityBoundGoodput(const ClusterSpec& cluster, const Workload& w, const core::Slo& slo,
                            const Window& window) {
  double prompt = 0, output = 0, n = 0;
  const double w_len = window.length_s > 0 ? window.length_s : std::max(1.0, w.duration_s);
  for (const auto& q : w.requests) {
    if (q.request.arrival_s < window.start_s || q.request.arrival_s >= window.start_s + w_len)
      continue;
    prompt += q.request.prompt_tokens;
    output += q.output_tokens;
    n += 1;
  }
  if (n == 0) return 0;
  prompt /= n;
  output /= n;
  double throughput = 0;
  for (const auto& node : cluster.nodes) {
    const auto& p = node.profile;
    const std::uint32_t b = p.BatchWithinTpot(slo.tpot_ms);
    const double seconds =
        prompt / p.prefill_tokens_per_s + output * p.DecodeStepMs(b) / 1000.0 / b;
    throughput += 1.0 / seconds;
  }
  return std::min(n / w_len, throughput);
}

}  // namespace tidelane::sim
