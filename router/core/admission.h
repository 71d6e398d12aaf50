// Admission: the front door. Every arrival gets an answer at once: go now, wait at a known
// place in line with an expected wait, or (last resort) come back later. Queued requests are
// released as capacity frees, in the admission's own order.
//
// Implementations: none (as the baselines publish: everything goes straight to a node), a
// generic FIFO concurrency cap (the same for every baseline, to isolate routing), and the
// tidal admission (capacity by Little's law, weighted fair queue per user with interactive
// ahead of batch, degrade past a wait bound, reject only past a hard bound).
//
// Threading: not thread-safe; one owner (the router's node table, the simulator).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "router/core/cluster_view.h"
#include "router/core/request.h"

namespace tidelane::core {

struct OfferResult {
  enum class Kind { kNow, kQueued, kRejected } kind = Kind::kNow;
  std::uint32_t position = 0;  // 1-based place in line when queued
  double eta_s = 0;            // expected wait before dispatch
  double retry_after_s = 0;    // when rejected
};

struct Released {
  Request request;
  bool degraded = false;  // max_tokens was cut to serve it sooner
  double waited_s = 0;
};

class Admission {
 public:
  virtual ~Admission() = default;

  virtual std::string_view Name() const = 0;
  // A request arrives at `now`. kNow: dispatch it at once (it counts as in flight).
  virtual OfferResult Offer(const Request& request, double now, const ClusterView& cluster) = 0;
  // Appends to `out` the queued requests that may be dispatched now, in order.
  virtual void Poll(double now, const ClusterView& cluster, std::vector<Released>& out) = 0;
  // A dispatched request left the cluster after `service_s`; frees its capacity.
  virtual void OnFinished(double now, double service_s) = 0;
  // Takes a queued request out of line (its client gave up); false when it was not queued.
  virtual bool Withdraw(std::uint64_t request_id) = 0;
  // The current place in line of a queued request, or 0 when it is not queued.
  virtual std::uint32_t PositionOf(std::uint64_t request_id) const = 0;

  virtual std::size_t Queued() const = 0;
  virtual std::size_t InFlight() const = 0;
  virtual double CapacityInFlight() const = 0;  // how many may be in flight now
};

struct TidalAdmissionOptions {
  double degrade_after_s = 30;  // waited this long: serve it with fewer tokens
  std::uint32_t degraded_max_tokens = 128;
  double reject_after_s = 3600;        // expected wait beyond this: reject with retry-after
  std::size_t max_queued = 1'000'000;  // hard memory bound
  double interactive_weight = 4;       // WFQ weight of interactive vs batch (1)
};

// Everything goes now; nothing is ever queued.
std::unique_ptr<Admission> MakeNoAdmission();
// FIFO with a concurrency cap of `per_slot_factor` x the cluster's total max batch.
std::unique_ptr<Admission> MakeFifoCap(double per_slot_factor = 1.0);
// Tidal: two bounds, requests running (Little's law on what completes) and prompt tokens waiting
// for prefill (what the prefill nodes clear in half the TTFT SLO: the nodes' outstanding
// prompts plus `ClusterView::unplaced_prompt_tokens`). It re-reads the view at most every 50 ms,
// counting what it lets in meanwhile, but reads it afresh before it would queue an arrival into
// an empty line or keep the head of the line waiting: a stale count must not hold a request
// that nothing running will release. Callers poll it when capacity frees (a request ends, a
// prompt is prefilled).
std::unique_ptr<Admission> MakeTidalAdmission(const TidalAdmissionOptions& options = {});

// Requests a node can run within the TPOT SLO at once, summed over accepting nodes.
double SloConcurrency(const ClusterView& cluster);

}  // namespace tidelane::core
