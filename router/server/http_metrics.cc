// The Prometheus text exposition of the router's counters and histograms (GET /metrics).
#include <sstream>

#include "router/server/http_server.h"

namespace tidelane::server {

namespace {

void RenderHistogram(std::ostringstream& out, const std::string& name, const std::string& help,
                     const Histogram& h) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out << name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cumulative << "\n";
  }
  out << name << "_bucket{le=\"+Inf\"} " << h.count << "\n";
  out << name << "_sum " << h.sum << "\n" << name << "_count " << h.count << "\n";
}

}  // namespace

std::string RenderMetrics(const v1::ClusterSnapshot& s, const LatencyHistograms& latencies,
                          const Ledger* ledger) {
  std::ostringstream out;
  const auto& c = s.counters();
  out << "# HELP tidelane_requests_total Requests by outcome since the router started.\n"
      << "# TYPE tidelane_requests_total counter\n"
      << "tidelane_requests_total{outcome=\"accepted\"} " << c.accepted() << "\n"
      << "tidelane_requests_total{outcome=\"served\"} " << c.served() << "\n"
      << "tidelane_requests_total{outcome=\"degraded\"} " << c.degraded() << "\n"
      << "tidelane_requests_total{outcome=\"rejected\"} " << c.rejected() << "\n"
      << "tidelane_requests_total{outcome=\"failed\"} " << c.failed() << "\n"
      << "# HELP tidelane_redirects_total Requests moved to another node mid-answer.\n"
      << "# TYPE tidelane_redirects_total counter\n"
      << "tidelane_redirects_total " << c.redirects() << "\n"
      << "# HELP tidelane_kv_handoffs_total Requests prefilled on one node and decoded on "
         "another.\n"
      << "# TYPE tidelane_kv_handoffs_total counter\n"
      << "tidelane_kv_handoffs_total " << c.kv_handoffs() << "\n"
      << "# HELP tidelane_kv_transfer_bytes_total KV-cache bytes moved between nodes.\n"
      << "# TYPE tidelane_kv_transfer_bytes_total counter\n"
      << "tidelane_kv_transfer_bytes_total " << c.kv_bytes() << "\n"
      << "# HELP tidelane_lane_moves_total Nodes moved between lanes by the tide.\n"
      << "# TYPE tidelane_lane_moves_total counter\n"
      << "tidelane_lane_moves_total " << c.lane_moves() << "\n"
      << "# HELP tidelane_queue_length Requests waiting for admission.\n"
      << "# TYPE tidelane_queue_length gauge\n"
      << "tidelane_queue_length " << c.queued() << "\n"
      << "# HELP tidelane_in_flight Requests running on workers.\n"
      << "# TYPE tidelane_in_flight gauge\n"
      << "tidelane_in_flight " << c.in_flight() << "\n"
      << "# HELP tidelane_node_active_requests Requests running on each node.\n"
      << "# TYPE tidelane_node_active_requests gauge\n";
  for (const auto& n : s.nodes()) {
    out << "tidelane_node_active_requests{node=\"" << n.name() << "\"} " << n.active_requests()
        << "\n";
  }
  out << "# HELP tidelane_node_batch_occupancy Running sequences over max batch, per node.\n"
      << "# TYPE tidelane_node_batch_occupancy gauge\n";
  for (const auto& n : s.nodes()) {
    out << "tidelane_node_batch_occupancy{node=\"" << n.name() << "\"} "
        << n.saturation().batch_occupancy() << "\n";
  }
  RenderHistogram(out, "tidelane_ttft_seconds",
                  "Time from acceptance to the first token of served requests.", latencies.ttft_s);
  RenderHistogram(out, "tidelane_tpot_seconds",
                  "Mean time per output token after the first, per served request.",
                  latencies.tpot_s);
  if (ledger) {
    const auto pruned = ledger->Pruned();
    const auto checkpoints = ledger->Checkpoints();
    const auto sizes = ledger->Sizes();
    out << "# HELP tidelane_ledger_pruned_requests_total Finished requests deleted from the "
           "ledger: past their retention (expired) or to make room under --ledger-max-mb "
           "(room).\n"
        << "# TYPE tidelane_ledger_pruned_requests_total counter\n"
        << "tidelane_ledger_pruned_requests_total{reason=\"expired\"} " << pruned.expired << "\n"
        << "tidelane_ledger_pruned_requests_total{reason=\"room\"} " << pruned.for_room << "\n"
        << "# HELP tidelane_ledger_checkpoints_total WAL checkpoints completed: by the ledger's "
           "writer between commits (background) or inside a commit (in_commit).\n"
        << "# TYPE tidelane_ledger_checkpoints_total counter\n"
        << "tidelane_ledger_checkpoints_total{where=\"background\"} " << checkpoints.background
        << "\n"
        << "tidelane_ledger_checkpoints_total{where=\"in_commit\"} " << checkpoints.in_commit
        << "\n"
        << "# HELP tidelane_ledger_bytes The ledger's files on disk: the database (which "
           "--ledger-max-mb bounds) and its write-ahead log.\n"
        << "# TYPE tidelane_ledger_bytes gauge\n"
        << "tidelane_ledger_bytes{file=\"database\"} " << sizes.database << "\n"
        << "tidelane_ledger_bytes{file=\"wal\"} " << sizes.wal << "\n";
  }
  return out.str();
}

}  // namespace tidelane::server
