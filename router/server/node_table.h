// NodeTable: the router's view of its workers and its admission queue, in one place because
// admission ("is there a free slot?") and placement ("which node?") are one decision.
//
// A request takes a ticket and waits in FIFO order until it is at the head and the routing
// policy places it on a node with a free slot; the waiter hears its position and expected
// wait whenever they change. Leases are returned with Release.
//
// Threading: every method is thread-safe (one mutex). Admission never blocks a thread (a
// queued request is a record with callbacks); Acquire blocks briefly for a slot. No callback
// is ever called with the lock held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "router/core/admission.h"
#include "router/core/lane_controller.h"
#include "router/core/node_profile.h"
#include "router/core/policy.h"
#include "tidelane/v1/chat.pb.h"
#include "tidelane/v1/monitor.pb.h"
#include "tidelane/v1/registry.pb.h"
#include "tidelane/v1/worker.grpc.pb.h"

namespace tidelane::server {

// A slot on a node, held while a request runs there.
struct Lease {
  std::string node;
  std::uint64_t connection = 0;  // which registration of that node (names survive restarts)
  v1::Lane lane = v1::LANE_MIXED;
  std::shared_ptr<v1::WorkerService::StubInterface> stub;
  std::chrono::steady_clock::time_point since;
  std::uint32_t prompt_tokens = 0;
  bool prefilled = false;
  // WHOLE, or the half of a split request this slot is for. A request counts once in flight:
  // on its WHOLE or DECODE lease (the PREFILL one is given back as soon as the KV has moved).
  v1::Stage stage = v1::STAGE_WHOLE;
};

struct AcquireResult {
  std::optional<Lease> lease;                        // WHOLE, or PREFILL when `decode` is set too
  v1::ErrorCode error = v1::ERROR_CODE_UNSPECIFIED;  // set when there is no lease
  std::string message;
  std::optional<Lease> decode;  // a split placement: the slot held on the decode node
};

// When a split placement (router/core Placement::Split) really splits. It does only between
// two workers that announce kv_handoff and run the same engine and model; otherwise, and for
// prompts shorter than min_prompt_tokens (the handoff costs more than it saves), the request
// runs whole on the node chosen for its prefill.
struct SplitOptions {
  std::uint32_t min_prompt_tokens = 0;
};

struct AdmitResult {
  bool admitted = false;
  bool degraded = false;         // admitted after a long wait, with max_tokens cut
  std::uint32_t max_tokens = 0;  // the cut, when degraded
  v1::ErrorCode error = v1::ERROR_CODE_UNSPECIFIED;
  std::string message;
  std::uint32_t retry_after_ms = 0;
};

// A Prometheus-style cumulative histogram.
struct Histogram {
  std::vector<double> bounds;         // upper bounds, ascending (the +Inf bucket is implied)
  std::vector<std::uint64_t> counts;  // per bucket, not cumulative; size bounds + 1
  double sum = 0;
  std::uint64_t count = 0;
  void Observe(double v);
};

struct LatencyHistograms {
  Histogram ttft_s;  // accepted -> first token
  Histogram tpot_s;  // mean time per output token after the first
};

// Where the router's directives to one connected worker go (its registry stream). It outlives
// the stream: once that has ended, Send drops what it is given. Thread-safe; Send never blocks
// on the worker and never calls back into the NodeTable.
class DirectiveSink {
 public:
  virtual ~DirectiveSink() = default;
  virtual void Send(v1::RouterDirective directive) = 0;
};

struct WaitUpdate {
  std::uint32_t position = 0;  // requests ahead in the queue
  std::uint32_t eta_ms = 0;
};

class NodeTable {
 public:
  // `admission` may be null: no front door, every request goes straight to placement. `lanes`
  // may be null: no tide, every node stays in the lane it registered with.
  NodeTable(std::unique_ptr<core::RoutingPolicy> policy, std::unique_ptr<core::Admission> admission,
            SplitOptions split = {}, std::unique_ptr<core::LaneController> lanes = nullptr);

  // Adds a worker, replacing any earlier registration of the same name. Returns the
  // connection id that identifies this registration in Remove and UpdateTelemetry.
  // `directives` (may be null) reaches the worker: lane changes and drains are sent there.
  std::uint64_t Add(const v1::Register& registration,
                    std::shared_ptr<v1::WorkerService::StubInterface> stub,
                    std::shared_ptr<DirectiveSink> directives = nullptr);
  // Removes the registration `connection` of `name`; a no-op when a newer one replaced it.
  void Remove(const std::string& name, std::uint64_t connection);
  void UpdateTelemetry(const std::string& name, std::uint64_t connection, const v1::Telemetry& t);

  // The front door (router/core admission: capacity by Little's law, a weighted fair queue
  // per user, degrade past a wait, reject only past the bound). Never blocks: on_done is
  // called exactly once — before AdmitAsync returns when the request goes at once or is
  // rejected, else later, on the thread that frees its place (a finishing request, a prompt
  // prefilled, a joining worker, Withdraw, Shutdown). While queued, on_wait hears its place at
  // once and again when it moves (TellPositions). Callbacks run without the table's lock, so
  // they may call back into it. Every admitted request must Leave.
  struct AdmissionCallbacks {
    std::function<void(WaitUpdate)> on_wait;
    std::function<void(AdmitResult)> on_done;
  };
  void AdmitAsync(const core::Request& request, AdmissionCallbacks callbacks);
  // A queued request's client went away: takes it out of line; its on_done hears so.
  void Withdraw(std::uint64_t request_id);
  // Re-tells queued requests whose place moved enough to be worth a message, and releases
  // any the admission policy lets go with time. The router calls it about once a second.
  void TellPositions();
  // An admitted request has finished (or failed, or was cancelled) after `service_s` seconds.
  void Leave(double service_s);

  // Waits for a slot as described above. `exclude` lists connections that must not be chosen
  // (one that just failed this request). Returns an error when `cancelled` turns true, the
  // table is shutting down, or no worker has been registered for `no_node_timeout`.
  AcquireResult Acquire(const core::Request& request, const std::set<std::uint64_t>& exclude,
                        const std::function<bool()>& cancelled,
                        const std::function<void(WaitUpdate)>& on_wait,
                        std::chrono::milliseconds no_node_timeout);
  // Acquire's placement without waiting: a lease when a slot is free now and no request is
  // waiting for one already; nullopt otherwise (the caller then calls Acquire, which waits,
  // tells the place in line and reports errors). For callers on threads that must not block.
  std::optional<AcquireResult> TryAcquire(const core::Request& request,
                                          const std::set<std::uint64_t>& exclude);
  // How many requests wait at the front door (a surge is on when this is not zero).
  std::size_t WaitingToBeAdmitted() const;
  // The connections of workers that have sent no telemetry for `bound` (frozen, or cut off
  // without the connection noticing): they take no new requests and show as DOWN until they
  // report again, and their running requests are the caller's to move.
  std::vector<std::uint64_t> Silent(std::chrono::milliseconds bound);
  // Gives the slot back; `served` says whether the request finished there (for a PREFILL
  // lease: whether its KV cache was handed on).
  void Release(const Lease& lease, bool served);
  // A split request's KV cache moved from `from` to `to`: KV_TRANSFER and DECODE flows for
  // the monitor, and the handoff counters.
  void RecordHandoff(std::uint64_t request_id, const Lease& from, const Lease& to,
                     std::uint64_t kv_bytes);
  // The request on `lease` produced its first token: its prompt is no longer queued there, so
  // requests waiting at the door for prefill capacity may be admitted (their admission
  // callbacks run on this thread, after the table's lock is released).
  void MarkPrefilled(Lease& lease);

  enum class Outcome { kAccepted, kServed, kFailed, kRejected };
  void Count(Outcome outcome);
  void RecordRedirect(const v1::RedirectRecord& record);
  // A served request's latencies, for /metrics.
  void RecordLatency(double ttft_s, double tpot_s);
  LatencyHistograms Latencies() const;

  // The tide (router/core LaneController), about once a second: the share of prefill work in
  // recent demand moves nodes between the MIXED, PREFILL and DECODE lanes. Only high- and
  // mid-tier nodes that registered as MIXED and can hand a KV cache on take part (a lane means
  // nothing to one that cannot, a lane the operator gave stays, and a low-tier node in the
  // decode lane sat idle in a surge of short prompts). A node to move first drains (takes nothing
  // new); once idle it changes lane and its worker gets SetLane. A no-op without lanes.
  void MoveLanes();

  // Whether SetPolicy may turn the tide on (the router's --tide; default yes, as for a table
  // built with lanes). Call before serving.
  void AllowTide(bool allowed);

  // Routing policy by name (with it the tide, when allowed: on for the tidal policies but
  // tidal-no-lanes); false when there is no such policy. Turning the tide off sends moved nodes
  // back to the lanes they registered with.
  bool SetPolicy(const std::string& name);
  std::string PolicyName() const;
  // The operator's state for a node: DRAINING and CORDONED take nothing new there and tell its
  // worker (Drain; cordon_only for CORDONED), READY after either lifts it (Undrain). False for
  // an unknown node.
  bool SetNodeState(const std::string& node, v1::NodeState state);

  // A consistent copy of everything the monitor shows. Flows and redirects are those after
  // event number `*cursor` (0 for all still kept), and `*cursor` moves past them, so each
  // watcher sees every event once however many watch.
  v1::ClusterSnapshot Snapshot(std::uint64_t* cursor);
  // Wakes every waiter with an error; used at shutdown.
  void Shutdown();

 private:
  struct Node {
    v1::Register registration;
    std::uint64_t connection = 0;
    std::shared_ptr<v1::WorkerService::StubInterface> stub;
    v1::Lane lane = v1::LANE_MIXED;
    v1::NodeState state = v1::NODE_STATE_READY;
    std::uint32_t active = 0;
    std::uint64_t served = 0;
    v1::Telemetry telemetry;
    core::NodeProfile profile{};  // from the registration
    std::uint64_t outstanding_prefill_tokens = 0;
    double reported_at_s = 0;  // steady-clock seconds of the registration or last telemetry
    bool silent = false;       // no telemetry past the stall bound (Silent)
    std::shared_ptr<DirectiveSink> directives;
    std::optional<v1::Lane> next_lane;  // draining for this lane change (MoveLanes)
    bool tidal = false;  // registered MIXED and can hand a KV cache on: the tide may move it
  };
  using Directives = std::vector<std::pair<std::shared_ptr<DirectiveSink>, v1::RouterDirective>>;
  // Node `n` (named `name`), if it drained for a lane change and is idle, switches now; its
  // directive goes to `out`. Called with mu_ held.
  void FinishLaneMoveLocked(const std::string& name, Node& n, Directives& out);
  // Turns the tide off: pending moves cancelled, moved nodes back to their registered lanes
  // (directives to `out`). Called with mu_ held.
  void StopTideLocked(Directives& out);
  static void Send(Directives& directives);

  std::uint32_t PositionOf(std::uint64_t ticket) const;
  // The routing policy's placement on a free slot, its slots taken; nullopt when no node has
  // one. Called with mu_ held.
  std::optional<AcquireResult> PlaceLocked(const core::Request& request,
                                           const std::set<std::uint64_t>& exclude);
  // The nodes as routing sees them; `slot_gate` marks nodes without a free slot as not
  // accepting (placement), otherwise only state and `exclude` count (capacity estimates).
  std::vector<core::NodeState> States(const std::set<std::uint64_t>& exclude, bool slot_gate,
                                      std::vector<Node*>* order);
  // Releases what the admission policy lets go; returns their callbacks and results, to be
  // called once the lock is dropped.
  using Wakeups = std::vector<std::pair<AdmissionCallbacks, AdmitResult>>;
  Wakeups PollAdmission();
  static void Deliver(Wakeups& wakeups);
  std::uint32_t EtaMs(std::uint32_t position) const;
  void RemoveTicket(std::uint64_t ticket);
  bool CanSplit(const Node& prefill, const Node& decode, const core::Request& request) const;
  void AddFlow(std::uint64_t request_id, const std::string& to, v1::Stage stage,
               const std::string& from = {}, std::uint64_t kv_bytes = 0);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<core::RoutingPolicy> policy_;
  std::unique_ptr<core::Admission> admission_;
  const SplitOptions split_;
  std::unique_ptr<core::LaneController> lanes_;
  bool tide_allowed_ = true;
  double last_lane_plan_s_ = 0;
  // Requests waiting at the front door, by request id.
  struct Queued {
    AdmissionCallbacks callbacks;
    std::uint32_t told = 0;  // the place last told
  };
  std::map<std::uint64_t, Queued> admission_waiters_;
  std::map<std::string, Node> nodes_;
  std::deque<std::uint64_t> queue_;
  std::uint64_t next_ticket_ = 1;
  std::uint64_t unplaced_prompt_tokens_ = 0;  // of the requests waiting in Acquire
  std::uint64_t next_connection_ = 1;
  double mean_service_ms_ = 2000;  // EWMA of lease durations, for ETAs
  bool shutting_down_ = false;
  v1::Counters counters_;
  LatencyHistograms latencies_{
      {{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}, std::vector<std::uint64_t>(12), 0, 0},
      {{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}, std::vector<std::uint64_t>(8), 0, 0}};
  // Recent flows and redirects for watchers, numbered; bounded so an unwatched router's
  // memory does not grow.
  static constexpr std::size_t kEventLog = 4096;
  std::uint64_t next_event_ = 1;
  std::deque<std::pair<std::uint64_t, v1::Flow>> flows_;
  std::deque<std::pair<std::uint64_t, v1::RedirectRecord>> redirects_;
  // Recent (steady seconds, TTFT ms) pairs for the snapshots' TTFT percentiles; bounded.
  static constexpr double kTtftWindowS = 10;
  static constexpr std::size_t kTtftKept = 8192;
  std::deque<std::pair<double, double>> recent_ttft_;
};

}  // namespace tidelane::server
