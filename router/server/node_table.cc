#include "router/server/node_table.h"

#include <algorithm>

namespace tidelane::server {

NodeTable::NodeTable(std::unique_ptr<core::RoutingPolicy> policy) : policy_(std::move(policy)) {}

std::uint64_t NodeTable::Add(const v1::Register& registration,
                             std::shared_ptr<v1::WorkerService::StubInterface> stub) {
  std::uint64_t connection = 0;
  {
    std::lock_guard lock(mu_);
    Node& n = nodes_[registration.name()];
    n = Node{};
    n.registration = registration;
    n.connection = connection = next_connection_++;
    n.stub = std::move(stub);
  }
  cv_.notify_all();
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
  if (it != nodes_.end() && it->second.connection == connection) it->second.telemetry = t;
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
    if (n.state != v1::NODE_STATE_READY) continue;
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

AcquireResult NodeTable::Acquire(const core::RequestView& request,
                                 const std::set<std::uint64_t>& exclude,
                                 const std::function<bool()>& cancelled,
                                 const std::function<void(WaitUpdate)>& on_wait,
                                 std::chrono::milliseconds no_node_timeout) {
  std::unique_lock lock(mu_);
  const std::uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
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
    if (position == 0) {
      std::vector<core::NodeView> views;
      std::vector<Node*> order;
      for (auto& [name, n] : nodes_) {
        const bool ok = n.state == v1::NODE_STATE_READY && !exclude.contains(n.connection);
        views.push_back({name, n.active, std::max(1u, n.registration.max_batch()), ok});
        order.push_back(&n);
      }
      if (const auto pick = policy_->Pick(request, views)) {
        Node& n = *order[*pick];
        ++n.active;
        counters_.set_in_flight(counters_.in_flight() + 1);
        RemoveTicket(ticket);
        v1::Flow flow;
        flow.set_request_id(std::string(request.request_id));
        flow.set_to_node(n.registration.name());
        flow.set_stage(v1::STAGE_WHOLE);
        flows_.emplace_back(next_event_++, std::move(flow));
        if (flows_.size() > kEventLog) flows_.pop_front();
        cv_.notify_all();
        return {Lease{n.registration.name(), n.connection, n.lane, n.stub,
                      std::chrono::steady_clock::now()},
                v1::ERROR_CODE_UNSPECIFIED,
                {}};
      }
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

void NodeTable::Release(const Lease& lease, bool served) {
  {
    std::lock_guard lock(mu_);
    counters_.set_in_flight(counters_.in_flight() - 1);
    const auto it = nodes_.find(lease.node);
    if (it != nodes_.end() && it->second.connection == lease.connection) {
      --it->second.active;
      if (served) ++it->second.served;
    }
    if (served) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - lease.since)
              .count();
      mean_service_ms_ = 0.8 * mean_service_ms_ + 0.2 * ms;
    }
  }
  cv_.notify_all();
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

bool NodeTable::SetPolicy(const std::string& name) {
  auto policy = core::MakePolicy(name, 0);
  if (!policy) return false;
  std::lock_guard lock(mu_);
  policy_ = std::move(policy);
  return true;
}

bool NodeTable::SetNodeState(const std::string& node, v1::NodeState state) {
  {
    std::lock_guard lock(mu_);
    const auto it = nodes_.find(node);
    if (it == nodes_.end()) return false;
    it->second.state = state;
  }
  cv_.notify_all();
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
    st->set_state(n.state);
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
  s.mutable_counters()->set_queued(static_cast<std::uint32_t>(queue_.size()));
  return s;
}

void NodeTable::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  cv_.notify_all();
}

}  // namespace tidelane::server
