#include "router/server/node_table.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <utility>

#include "router/core/router_setup.h"

namespace tidelane::server {

namespace {

double SecondsNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

v1::Lane ToProto(core::Lane lane) {
  return lane == core::Lane::kPrefill  ? v1::LANE_PREFILL
         : lane == core::Lane::kDecode ? v1::LANE_DECODE
                                       : v1::LANE_MIXED;
}

const char* LaneWord(v1::Lane lane) {
  return lane == v1::LANE_PREFILL ? "prefill" : lane == v1::LANE_DECODE ? "decode" : "mixed";
}

v1::RouterDirective SetLaneDirective(v1::Lane lane) {
  v1::RouterDirective d;
  d.mutable_set_lane()->set_lane(lane);
  return d;
}

}  // namespace

NodeTable::NodeTable(std::unique_ptr<core::RoutingPolicy> policy,
                     std::unique_ptr<core::Admission> admission, SplitOptions split,
                     std::unique_ptr<core::LaneController> lanes)
    : policy_(std::move(policy)),
      admission_(std::move(admission)),
      split_(split),
      lanes_(std::move(lanes)) {}

void NodeTable::Send(Directives& directives) {
  for (auto& [sink, directive] : directives) {
    if (sink) sink->Send(std::move(directive));
  }
  directives.clear();
}

std::vector<core::NodeState> NodeTable::States(const std::set<std::uint64_t>& exclude,
                                               bool slot_gate, std::vector<Node*>* order) {
  std::vector<core::NodeState> states;
  for (auto& [name, n] : nodes_) {
    core::NodeState st;
    st.id = static_cast<std::uint32_t>(n.connection);
    st.name = name;
    st.profile = &n.profile;
    st.lane = n.lane == v1::LANE_PREFILL  ? core::Lane::kPrefill
              : n.lane == v1::LANE_DECODE ? core::Lane::kDecode
                                          : core::Lane::kMixed;
    st.accepting = n.state == v1::NODE_STATE_READY && !n.silent && !n.next_lane &&
                   !exclude.contains(n.connection) &&
                   (!slot_gate || n.active < n.profile.max_batch);
    const auto& sat = n.telemetry.saturation();
    st.saturation[core::Dim::kPrefillBacklog] = sat.prefill_backlog();
    st.saturation[core::Dim::kBatch] = sat.batch_occupancy();
    st.saturation[core::Dim::kKv] = sat.kv_blocks();
    st.saturation[core::Dim::kCompute] = sat.compute();
    st.saturation[core::Dim::kDecodeLatency] = sat.decode_latency();
    st.saturation[core::Dim::kErrors] = sat.error_rate();
    st.saturation[core::Dim::kKvTransfer] = sat.kv_transfer_backlog();
    st.running = n.telemetry.active_requests();
    st.outstanding = n.active;
    st.reported_at_s = n.reported_at_s;
    st.outstanding_prefill_tokens = n.outstanding_prefill_tokens;
    states.push_back(st);
    if (order) order->push_back(&n);
  }
  return states;
}

NodeTable::Wakeups NodeTable::PollAdmission() {
  Wakeups wakeups;
  if (!admission_) return wakeups;
  const auto states = States({}, false, nullptr);
  std::vector<core::Released> out;
  admission_->Poll(SecondsNow(),
                   core::ClusterView{states, SecondsNow(), {}, unplaced_prompt_tokens_}, out);
  for (auto& r : out) {
    const auto it = admission_waiters_.find(r.request.id);
    if (it == admission_waiters_.end()) continue;  // withdrawn meanwhile
    counters_.set_degraded(counters_.degraded() + (r.degraded ? 1 : 0));
    wakeups.emplace_back(
        std::move(it->second.callbacks),
        AdmitResult{.admitted = true, .degraded = r.degraded, .max_tokens = r.request.max_tokens});
    admission_waiters_.erase(it);
  }
  return wakeups;
}

void NodeTable::Deliver(Wakeups& wakeups) {
  for (auto& [callbacks, result] : wakeups) {
    if (result.admitted && callbacks.on_wait) callbacks.on_wait({0, 0});
    callbacks.on_done(std::move(result));
  }
}

void NodeTable::AdmitAsync(const core::Request& request, AdmissionCallbacks callbacks) {
  std::unique_lock lock(mu_);
  // Demand is what arrives, not what the nodes manage to take: a surge shows at once.
  if (lanes_) {
    lanes_->ObserveDemand(request.prompt_tokens, request.expected_output_tokens, SecondsNow());
  }
  if (!admission_ || shutting_down_) {
    const bool down = shutting_down_;
    lock.unlock();
    if (down) {
      callbacks.on_done({.error = v1::ERROR_CODE_INTERNAL, .message = "router is shutting down"});
      return;
    }
    callbacks.on_wait({0, 0});
    callbacks.on_done({.admitted = true});
    return;
  }
  const auto states = States({}, false, nullptr);
  const auto offer = admission_->Offer(
      request, SecondsNow(), core::ClusterView{states, SecondsNow(), {}, unplaced_prompt_tokens_});
  if (offer.kind == core::OfferResult::Kind::kRejected) {
    counters_.set_rejected(counters_.rejected() + 1);
    lock.unlock();
    AdmitResult r;
    r.error = v1::ERROR_CODE_OVERLOADED;
    r.retry_after_ms = static_cast<std::uint32_t>(offer.retry_after_s * 1000);
    r.message = "the router is at capacity: the expected wait is " +
                std::to_string(static_cast<int>(offer.eta_s)) + " s; retry later";
    callbacks.on_done(std::move(r));
    return;
  }
  if (offer.kind == core::OfferResult::Kind::kNow) {
    lock.unlock();
    callbacks.on_wait({0, 0});
    callbacks.on_done({.admitted = true});
    return;
  }
  const WaitUpdate first{offer.position, static_cast<std::uint32_t>(offer.eta_s * 1000)};
  auto on_wait = callbacks.on_wait;
  admission_waiters_[request.id] = Queued{std::move(callbacks), offer.position};
  lock.unlock();
  // Told after registering: a release racing with this message still finds the record.
  on_wait(first);
}

void NodeTable::Withdraw(std::uint64_t request_id) {
  AdmissionCallbacks callbacks;
  {
    std::lock_guard lock(mu_);
    const auto it = admission_waiters_.find(request_id);
    if (it == admission_waiters_.end()) return;
    callbacks = std::move(it->second.callbacks);
    admission_waiters_.erase(it);
    if (admission_) admission_->Withdraw(request_id);
  }
  callbacks.on_done({.error = v1::ERROR_CODE_UNSPECIFIED, .message = "cancelled while waiting"});
}

void NodeTable::TellPositions() {
  std::vector<std::pair<std::function<void(WaitUpdate)>, WaitUpdate>> updates;
  Wakeups wakeups;
  {
    std::lock_guard lock(mu_);
    wakeups = PollAdmission();
    for (auto& [id, q] : admission_waiters_) {
      // A new place is worth a message when it moved by a twentieth (or within the front
      // five): ten thousand waiters re-told every second would cost more than the answers.
      const std::uint32_t position = admission_->PositionOf(id);
      const bool moved =
          position != 0 && position != q.told &&
          (position <= 5 || q.told - std::min(q.told, position) >= std::max(1u, q.told / 20));
      if (!moved) continue;
      q.told = position;
      updates.emplace_back(q.callbacks.on_wait, WaitUpdate{position, EtaMs(position)});
    }
  }
  Deliver(wakeups);
  for (auto& [tell, update] : updates) tell(update);
}

void NodeTable::Leave(double service_s) {
  if (!admission_) return;
  Wakeups wakeups;
  {
    std::lock_guard lock(mu_);
    admission_->OnFinished(SecondsNow(), service_s);
    wakeups = PollAdmission();
  }
  Deliver(wakeups);
}

std::uint64_t NodeTable::Add(const v1::Register& registration,
                             std::shared_ptr<v1::WorkerService::StubInterface> stub,
                             std::shared_ptr<DirectiveSink> directives) {
  Wakeups wakeups;
  std::uint64_t connection = 0;
  {
    std::lock_guard lock(mu_);
    Node& n = nodes_[registration.name()];
    n = Node{};
    n.registration = registration;
    n.connection = connection = next_connection_++;
    n.stub = std::move(stub);
    n.reported_at_s = SecondsNow();
    n.lane = registration.lane() == v1::LANE_UNSPECIFIED ? v1::LANE_MIXED : registration.lane();
    n.directives = std::move(directives);
    n.tidal = n.lane == v1::LANE_MIXED && registration.kv_handoff();
    // The worker's own figures; what it does not report comes from its tier's profile.
    const auto tier = registration.tier() == v1::TIER_HIGH  ? "high"
                      : registration.tier() == v1::TIER_LOW ? "low"
                                                            : "mid";
    n.profile = *core::FindProfile(tier);
    n.profile.max_batch = std::max(1u, registration.max_batch());
    n.profile.kv_blocks = std::max(n.profile.kv_blocks, 1u);
    if (registration.prefill_tokens_per_s() > 0)
      n.profile.prefill_tokens_per_s = registration.prefill_tokens_per_s();
    if (registration.decode_ms_per_token() > 0)
      n.profile.decode_ms_per_token = registration.decode_ms_per_token();
    wakeups = PollAdmission();  // more capacity: queued requests may go
  }
  cv_.notify_all();
  Deliver(wakeups);
  return connection;
}

void NodeTable::Remove(const std::string& name, std::uint64_t connection) {
  std::lock_guard lock(mu_);
  const auto it = nodes_.find(name);
  if (it != nodes_.end() && it->second.connection == connection) nodes_.erase(it);
}

void NodeTable::UpdateTelemetry(const std::string& name, std::uint64_t connection,
                                const v1::Telemetry& t) {
  std::lock_guard lock(mu_);
  const auto it = nodes_.find(name);
  if (it != nodes_.end() && it->second.connection == connection) {
    it->second.telemetry = t;
    it->second.reported_at_s = SecondsNow();
    if (std::exchange(it->second.silent, false)) cv_.notify_all();  // back: its slots count
  }
}

std::uint32_t NodeTable::PositionOf(std::uint64_t ticket) const {
  const auto it = std::find(queue_.begin(), queue_.end(), ticket);
  return static_cast<std::uint32_t>(it - queue_.begin());
}

std::uint32_t NodeTable::EtaMs(std::uint32_t position) const {
  // Little's law: with C slots each freeing every mean_service_ms, the k-th in line waits
  // about (k + 1) * mean_service_ms / C once the slots are full.
  std::uint32_t capacity = 0;
  std::uint32_t active = 0;
  for (const auto& [_, n] : nodes_) {
    if (n.state != v1::NODE_STATE_READY || n.silent) continue;
    capacity += n.registration.max_batch();
    active += n.active;
  }
  if (capacity == 0) return static_cast<std::uint32_t>(mean_service_ms_ * (position + 1));
  if (active + position < capacity) return 0;
  return static_cast<std::uint32_t>(mean_service_ms_ * (position + 1) / capacity);
}

void NodeTable::RemoveTicket(std::uint64_t ticket) {
  const auto it = std::find(queue_.begin(), queue_.end(), ticket);
  if (it != queue_.end()) queue_.erase(it);
}

std::optional<AcquireResult> NodeTable::TryAcquire(const core::Request& request,
                                                   const std::set<std::uint64_t>& exclude) {
  std::lock_guard lock(mu_);
  // Requests already waiting for a slot were admitted first: a new one does not pass them.
  if (shutting_down_ || !queue_.empty()) return std::nullopt;
  auto result = PlaceLocked(request, exclude);
  if (result) cv_.notify_all();
  return result;
}

std::vector<std::uint64_t> NodeTable::Silent(std::chrono::milliseconds bound) {
  const double now = SecondsNow();
  std::vector<std::uint64_t> silent;
  std::lock_guard lock(mu_);
  for (auto& [_, n] : nodes_) {
    n.silent = now - n.reported_at_s > std::chrono::duration<double>(bound).count();
    if (n.silent) silent.push_back(n.connection);
  }
  return silent;
}

std::size_t NodeTable::WaitingToBeAdmitted() const {
  std::lock_guard lock(mu_);
  return admission_waiters_.size();
}

std::optional<AcquireResult> NodeTable::PlaceLocked(const core::Request& request,
                                                    const std::set<std::uint64_t>& exclude) {
  std::vector<Node*> order;
  auto states = States(exclude, true, &order);
  // Lanes are the operator's preference, not a reason to stall: when no node that is up
  // can prefill (or none can decode), say the only prefill node died, every node takes
  // whole requests until one is back.
  const auto can = [&](core::Lane not_this) {
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (order[i]->state == v1::NODE_STATE_READY && !exclude.contains(order[i]->connection) &&
          states[i].lane != not_this) {
        return true;
      }
    }
    return false;
  };
  if (!can(core::Lane::kDecode) || !can(core::Lane::kPrefill)) {
    for (auto& st : states) st.lane = core::Lane::kMixed;
  }
  const core::ClusterView view{states, SecondsNow(), {}};
  const auto placement = policy_->Route(request, view);
  if (!placement) return std::nullopt;
  policy_->OnPlaced(request, *placement, view);
  Node& n = *order[placement->prefill];
  // A split the two workers cannot do runs whole on the prefill node.
  Node* d = placement->Split() ? order[placement->decode] : nullptr;
  if (d && !CanSplit(n, *d, request)) d = nullptr;
  const auto now = std::chrono::steady_clock::now();
  ++n.active;
  n.outstanding_prefill_tokens += request.prompt_tokens;
  counters_.set_in_flight(counters_.in_flight() + 1);
  AddFlow(request.id, n.registration.name(), d ? v1::STAGE_PREFILL : v1::STAGE_WHOLE);
  AcquireResult result;
  result.lease =
      Lease{n.registration.name(), n.connection, n.lane, n.stub, now, request.prompt_tokens};
  if (d) {
    // Both slots are held from the start, so the cache always has somewhere to go.
    ++d->active;
    result.lease->stage = v1::STAGE_PREFILL;
    result.decode = Lease{d->registration.name(), d->connection, d->lane, d->stub, now, 0, true,
                          v1::STAGE_DECODE};
  }
  return result;
}

AcquireResult NodeTable::Acquire(const core::Request& request,
                                 const std::set<std::uint64_t>& exclude,
                                 const std::function<bool()>& cancelled,
                                 const std::function<void(WaitUpdate)>& on_wait,
                                 std::chrono::milliseconds no_node_timeout) {
  std::unique_lock lock(mu_);
  const std::uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
  // Its prompt is on its way to a node: the front door counts it (ClusterView), until it is
  // placed or gives up (the guard runs on every return, with the lock still held).
  unplaced_prompt_tokens_ += request.prompt_tokens;
  struct Unqueue {
    std::uint64_t& total;
    std::uint64_t tokens;
    ~Unqueue() { total -= std::min(total, tokens); }
  } unqueue{unplaced_prompt_tokens_, request.prompt_tokens};
  cv_.notify_all();
  std::optional<WaitUpdate> told;
  auto no_node_since = std::chrono::steady_clock::now();

  for (;;) {
    if (shutting_down_) {
      RemoveTicket(ticket);
      cv_.notify_all();
      return {std::nullopt, v1::ERROR_CODE_INTERNAL, "router is shutting down"};
    }
    const std::uint32_t position = PositionOf(ticket);
    // Every request hears its place in line at once, and again whenever it moves.
    if (!told || told->position != position) {
      told = WaitUpdate{position, EtaMs(position)};
      lock.unlock();
      on_wait(*told);
      lock.lock();
      continue;  // the world may have changed while unlocked
    }
    // Requests reach here already admitted (and ordered) by the front door; any of them may
    // take a free slot, so one waiter never holds up the others behind it.
    if (auto result = PlaceLocked(request, exclude)) {
      RemoveTicket(ticket);
      cv_.notify_all();
      return std::move(*result);
    }
    const bool any_node = std::any_of(nodes_.begin(), nodes_.end(), [&](const auto& kv) {
      return !exclude.contains(kv.second.connection);
    });
    if (any_node) no_node_since = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - no_node_since > no_node_timeout) {
      RemoveTicket(ticket);
      cv_.notify_all();
      return {std::nullopt, v1::ERROR_CODE_NO_WORKER, "no worker is connected to this router"};
    }
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (cancelled()) {
      RemoveTicket(ticket);
      cv_.notify_all();
      return {std::nullopt, v1::ERROR_CODE_UNSPECIFIED, "cancelled by the client"};
    }
  }
}

bool NodeTable::CanSplit(const Node& p, const Node& d, const core::Request& request) const {
  return p.registration.kv_handoff() && d.registration.kv_handoff() &&
         p.registration.engine() == d.registration.engine() &&
         p.registration.model() == d.registration.model() &&
         request.prompt_tokens >= split_.min_prompt_tokens;
}

void NodeTable::AddFlow(std::uint64_t request_id, const std::string& to, v1::Stage stage,
                        const std::string& from, std::uint64_t kv_bytes) {
  v1::Flow flow;
  flow.set_request_id(std::to_string(request_id));
  flow.set_to_node(to);
  flow.set_stage(stage);
  flow.set_from_node(from);
  flow.set_kv_bytes(kv_bytes);
  flows_.emplace_back(next_event_++, std::move(flow));
  if (flows_.size() > kEventLog) flows_.pop_front();
}

void NodeTable::RecordHandoff(std::uint64_t request_id, const Lease& from, const Lease& to,
                              std::uint64_t kv_bytes) {
  std::lock_guard lock(mu_);
  counters_.set_kv_handoffs(counters_.kv_handoffs() + 1);
  counters_.set_kv_bytes(counters_.kv_bytes() + kv_bytes);
  AddFlow(request_id, to.node, v1::STAGE_KV_TRANSFER, from.node, kv_bytes);
  AddFlow(request_id, to.node, v1::STAGE_DECODE);
}

void NodeTable::Release(const Lease& lease, bool served) {
  Directives directives;
  {
    std::lock_guard lock(mu_);
    // The request is counted in flight once, on its WHOLE or DECODE lease.
    const bool prefill_half = lease.stage == v1::STAGE_PREFILL;
    if (!prefill_half) counters_.set_in_flight(counters_.in_flight() - 1);
    const auto it = nodes_.find(lease.node);
    if (it != nodes_.end() && it->second.connection == lease.connection) {
      --it->second.active;
      if (!lease.prefilled) {
        it->second.outstanding_prefill_tokens -=
            std::min<std::uint64_t>(lease.prompt_tokens, it->second.outstanding_prefill_tokens);
      }
      if (served) ++it->second.served;
      // Only this node can have just become idle: a lane change it drained for happens now.
      FinishLaneMoveLocked(it->first, it->second, directives);
    }
    if (served && !prefill_half) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - lease.since)
              .count();
      mean_service_ms_ = 0.8 * mean_service_ms_ + 0.2 * ms;
    }
  }
  cv_.notify_all();
  Send(directives);
}

void NodeTable::FinishLaneMoveLocked(const std::string& name, Node& n, Directives& out) {
  if (!n.next_lane || n.active > 0) return;
  spdlog::info("tide: {} moves from the {} lane to the {} lane", name, LaneWord(n.lane),
               LaneWord(*n.next_lane));
  n.lane = *std::exchange(n.next_lane, std::nullopt);
  counters_.set_lane_moves(counters_.lane_moves() + 1);
  out.emplace_back(n.directives, SetLaneDirective(n.lane));
}

void NodeTable::MoveLanes() {
  Directives directives;
  {
    std::lock_guard lock(mu_);
    // No tide, no pending move (turning it off cancels them). The pipeline calls this on every
    // change it wakes for; the controller plans once a second.
    const double now = SecondsNow();
    if (lanes_ && now - last_lane_plan_s_ >= 1.0) {
      last_lane_plan_s_ = now;
      std::vector<Node*> order;
      auto states = States({}, false, &order);
      // Low-tier nodes stay out of the live tide. The controller would put them in the decode
      // lane from the start (the simulator's rule: too slow to prefill beside anyone's decode),
      // where they only take decodes handed to them, which the policy sends there only when a
      // split pays; in a surge of short prompts it did not, they sat idle, and the 10,000-user
      // surge's time to first token rose 7% (docs/benchmarks/serving.md).
      std::vector<core::NodeState> tidal;
      for (std::size_t i = 0; i < states.size(); ++i) {
        const Node& n = *order[i];
        if (n.tidal && n.registration.tier() != v1::TIER_LOW && n.state == v1::NODE_STATE_READY &&
            !n.silent) {
          tidal.push_back(states[i]);
        }
      }
      for (const auto& move : lanes_->Plan(core::ClusterView{tidal, now, {}}, now)) {
        for (auto& [name, n] : nodes_) {
          if (static_cast<std::uint32_t>(n.connection) != move.node_id) continue;
          const v1::Lane to = ToProto(move.to);
          if (n.lane != to && !n.next_lane) n.next_lane = to;  // drain first
        }
      }
      // The idle ones move at once.
      for (auto& [name, n] : nodes_) FinishLaneMoveLocked(name, n, directives);
    }
  }
  cv_.notify_all();
  Send(directives);
}

void Histogram::Observe(double v) {
  const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
  ++counts[static_cast<std::size_t>(bucket)];
  sum += v;
  ++count;
}

void NodeTable::RecordLatency(double ttft_s, double tpot_s) {
  std::lock_guard lock(mu_);
  latencies_.ttft_s.Observe(ttft_s);
  recent_ttft_.emplace_back(SecondsNow(), ttft_s * 1000.0);
  if (recent_ttft_.size() > kTtftKept) recent_ttft_.pop_front();
  if (tpot_s > 0) latencies_.tpot_s.Observe(tpot_s);
}

LatencyHistograms NodeTable::Latencies() const {
  std::lock_guard lock(mu_);
  return latencies_;
}

void NodeTable::RecordRedirect(const v1::RedirectRecord& record) {
  std::lock_guard lock(mu_);
  counters_.set_redirects(counters_.redirects() + 1);
  redirects_.emplace_back(next_event_++, record);
  if (redirects_.size() > kEventLog) redirects_.pop_front();
}

void NodeTable::Count(Outcome outcome) {
  std::lock_guard lock(mu_);
  switch (outcome) {
    case Outcome::kAccepted:
      counters_.set_accepted(counters_.accepted() + 1);
      break;
    case Outcome::kServed:
      counters_.set_served(counters_.served() + 1);
      break;
    case Outcome::kFailed:
      counters_.set_failed(counters_.failed() + 1);
      break;
    case Outcome::kRejected:
      counters_.set_rejected(counters_.rejected() + 1);
      break;
  }
}

void NodeTable::MarkPrefilled(Lease& lease) {
  if (std::exchange(lease.prefilled, true)) return;
  Wakeups wakeups;
  {
    std::lock_guard lock(mu_);
    const auto it = nodes_.find(lease.node);
    if (it == nodes_.end() || it->second.connection != lease.connection) return;
    it->second.outstanding_prefill_tokens -=
        std::min<std::uint64_t>(lease.prompt_tokens, it->second.outstanding_prefill_tokens);
    // A long prompt waiting at the door for prefill capacity may go now, not when this
    // request ends (its whole decode later) or at the next housekeeping tick.
    if (!admission_waiters_.empty()) wakeups = PollAdmission();
  }
  Deliver(wakeups);
}

void NodeTable::AllowTide(bool allowed) {
  Directives directives;
  {
    std::lock_guard lock(mu_);
    tide_allowed_ = allowed;
    if (!allowed) StopTideLocked(directives);
  }
  cv_.notify_all();
  Send(directives);
}

void NodeTable::StopTideLocked(Directives& out) {
  if (!lanes_) return;
  lanes_.reset();
  // Without the tide every node serves in the lane it registered with.
  for (auto& [name, n] : nodes_) {
    const v1::Lane registered =
        n.registration.lane() == v1::LANE_UNSPECIFIED ? v1::LANE_MIXED : n.registration.lane();
    n.next_lane.reset();
    if (n.lane != registered) {
      n.lane = registered;
      out.emplace_back(n.directives, SetLaneDirective(n.lane));
    }
  }
}

bool NodeTable::SetPolicy(const std::string& name) {
  auto policy = core::MakePolicy(name, 0);
  auto setup = core::MakeRouter(name, 0);
  if (!policy) return false;
  Directives directives;
  {
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
    const bool tide = tide_allowed_ && setup && setup->lanes;
    if (tide && !lanes_) lanes_ = std::move(setup->lanes);
    if (!tide) StopTideLocked(directives);
  }
  cv_.notify_all();
  Send(directives);
  return true;
}

std::string NodeTable::PolicyName() const {
  std::lock_guard lock(mu_);
  return std::string(policy_->Name());
}

bool NodeTable::SetNodeState(const std::string& node, v1::NodeState state) {
  Directives directives;
  {
    std::lock_guard lock(mu_);
    const auto it = nodes_.find(node);
    if (it == nodes_.end()) return false;
    const v1::NodeState was = std::exchange(it->second.state, state);
    // The worker hears of the operator's drain or cordon and of its lifting, so that its log
    // says why its traffic stopped (the router itself places nothing new on it meanwhile).
    const auto held = [](v1::NodeState s) {
      return s == v1::NODE_STATE_DRAINING || s == v1::NODE_STATE_CORDONED;
    };
    v1::RouterDirective d;
    if (held(state) && state != was) {
      d.mutable_drain()->set_cordon_only(state == v1::NODE_STATE_CORDONED);
      directives.emplace_back(it->second.directives, std::move(d));
    } else if (state == v1::NODE_STATE_READY && held(was)) {
      d.mutable_undrain();
      directives.emplace_back(it->second.directives, std::move(d));
    }
  }
  cv_.notify_all();
  Send(directives);
  return true;
}

v1::ClusterSnapshot NodeTable::Snapshot(std::uint64_t* cursor) {
  v1::ClusterSnapshot s;
  s.set_timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  std::lock_guard lock(mu_);
  s.set_policy(std::string(policy_->Name()));
  for (const auto& [name, n] : nodes_) {
    auto* st = s.add_nodes();
    st->set_name(name);
    st->set_tier(n.registration.tier());
    st->set_lane(n.lane);
    st->set_state(n.silent ? v1::NODE_STATE_DOWN : n.state);
    *st->mutable_saturation() = n.telemetry.saturation();
    st->set_active_requests(n.active);
    st->set_max_batch(n.registration.max_batch());
    st->set_served_total(n.served);
    st->set_tokens_per_s(n.telemetry.tokens_per_s());
    st->set_model(n.registration.model());
    *st->mutable_hardware() = n.telemetry.hardware();
  }
  for (const auto& [seq, f] : flows_) {
    if (seq > *cursor) *s.add_flows() = f;
  }
  for (const auto& [seq, r] : redirects_) {
    if (seq > *cursor) *s.add_redirects() = r;
  }
  *cursor = next_event_ - 1;
  *s.mutable_counters() = counters_;
  // Waiting at the front door (admission) plus admitted but still waiting for a slot.
  s.mutable_counters()->set_queued(
      static_cast<std::uint32_t>(admission_waiters_.size() + queue_.size()));
  const double now = SecondsNow();
  while (!recent_ttft_.empty() && recent_ttft_.front().first < now - kTtftWindowS) {
    recent_ttft_.pop_front();
  }
  if (!recent_ttft_.empty()) {
    std::vector<double> ttft;
    ttft.reserve(recent_ttft_.size());
    for (const auto& [at, ms] : recent_ttft_) ttft.push_back(ms);
    const auto at = [&](double q) {
      const auto k = static_cast<std::size_t>(q * static_cast<double>(ttft.size() - 1));
      std::nth_element(ttft.begin(), ttft.begin() + static_cast<std::ptrdiff_t>(k), ttft.end());
      return ttft[k];
    };
    s.mutable_counters()->set_ttft_p50_ms(at(0.5));
    s.mutable_counters()->set_ttft_p99_ms(at(0.99));
  }
  return s;
}

void NodeTable::Shutdown() {
  Wakeups wakeups;
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    for (auto& [id, q] : admission_waiters_) {
      wakeups.emplace_back(
          std::move(q.callbacks),
          AdmitResult{.error = v1::ERROR_CODE_INTERNAL, .message = "router is shutting down"});
    }
    admission_waiters_.clear();
  }
  cv_.notify_all();
  Deliver(wakeups);
}

}  // namespace tidelane::server
