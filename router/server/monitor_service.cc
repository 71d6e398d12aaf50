#include <grpcpp/alarm.h>

#include "router/core/policy.h"
#include "router/proto/auth.h"
#include "router/server/services.h"

namespace tidelane::server {

// One Watch stream: a snapshot now, then one every interval after the previous was written (a
// slow reader gets fewer snapshots, never a backlog). Between writes it waits on a gRPC alarm,
// holding no thread. It ends when the client cancels, a write fails or the service stops; the
// reactor deletes itself when gRPC is done with it, so Finish is always its last act, called
// with no lock of its own held.
class MonitorServiceImpl::Watcher final : public grpc::ServerWriteReactor<v1::ClusterSnapshot> {
 public:
  Watcher(MonitorServiceImpl& service, std::chrono::milliseconds interval)
      : service_(service), interval_(interval) {}

  // Called once the service has this watcher in its set (so Stop can reach it).
  void Begin() { WriteNext(); }

  // Ends the stream at the next opportunity: now if it is waiting, after the write in flight.
  void Stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    // The alarm's callback runs on another of gRPC's threads, never inside Cancel.
    if (alarm_) alarm_->Cancel();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      if (ok && !stopping_) {
        // A fresh alarm each time: the last one's callback may still be returning (its state
        // is reference-counted inside gRPC, so dropping it here is safe; re-arming it is not).
        alarm_ = std::make_unique<grpc::Alarm>();
        alarm_->Set(std::chrono::system_clock::now() + interval_,
                    [this](bool fired) { Woken(fired); });
        return;
      }
    }
    Finish(grpc::Status::OK);
  }

  void OnCancel() override { Stop(); }

  void OnDone() override {
    service_.Forget(this);
    delete this;
  }

 private:
  void Woken(bool fired) {
    bool write = false;
    {
      std::lock_guard lock(mu_);
      write = fired && !stopping_;
    }
    if (write) {
      WriteNext();
    } else {
      Finish(grpc::Status::OK);
    }
  }
  // One write at a time (Begin, then each alarm after the last write), so `snapshot_` is never
  // rewritten while gRPC is sending it.
  void WriteNext() {
    snapshot_ = service_.nodes_.Snapshot(&cursor_);
    StartWrite(&snapshot_);
  }

  MonitorServiceImpl& service_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;  // stopping_ and alarm_: Stop and OnCancel come from other threads
  std::unique_ptr<grpc::Alarm> alarm_;
  bool stopping_ = false;
  v1::ClusterSnapshot snapshot_;
  std::uint64_t cursor_ = 0;  // flows and redirects already sent
};

MonitorServiceImpl::MonitorServiceImpl(const RouterConfig& config, NodeTable& nodes)
    : config_(config), nodes_(nodes) {}

MonitorServiceImpl::~MonitorServiceImpl() = default;

grpc::ServerWriteReactor<v1::ClusterSnapshot>* MonitorServiceImpl::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  const auto interval = std::chrono::milliseconds(
      request->interval_ms() == 0 ? 500 : std::max(20u, request->interval_ms()));
  auto* watcher = new Watcher(*this, interval);
  if (auto s = auth::CheckBearerAny(*context, config_.client_tokens, nullptr); !s.ok()) {
    watcher->Finish(s);
    return watcher;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      watcher->Finish({grpc::StatusCode::UNAVAILABLE, "the router is shutting down"});
      return watcher;
    }
    watchers_.insert(watcher);
  }
  watcher->Begin();
  return watcher;
}

void MonitorServiceImpl::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  for (auto* w : watchers_) w->Stop();
}

void MonitorServiceImpl::Forget(Watcher* watcher) {
  std::lock_guard lock(mu_);
  watchers_.erase(watcher);
}

grpc::ServerUnaryReactor* MonitorServiceImpl::SetPolicy(grpc::CallbackServerContext* context,
                                                        const v1::SetPolicyRequest* request,
                                                        v1::SetPolicyResponse* response) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish([&]() -> grpc::Status {
    if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) return s;
    for (const auto name : core::PolicyNames()) response->add_available(std::string(name));
    if (request->policy().empty()) {  // a question, not a change
      response->set_policy(nodes_.PolicyName());
      return grpc::Status::OK;
    }
    if (!nodes_.SetPolicy(request->policy())) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "no routing policy called '" + request->policy() + "'"};
    }
    response->set_policy(request->policy());
    return grpc::Status::OK;
  }());
  return reactor;
}

grpc::ServerUnaryReactor* MonitorServiceImpl::SetNodeState(grpc::CallbackServerContext* context,
                                                           const v1::SetNodeStateRequest* request,
                                                           v1::SetNodeStateResponse*) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish([&]() -> grpc::Status {
    if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) return s;
    const auto st = request->state();
    if (st != v1::NODE_STATE_READY && st != v1::NODE_STATE_DRAINING &&
        st != v1::NODE_STATE_CORDONED) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "state must be READY, DRAINING or CORDONED"};
    }
    if (!nodes_.SetNodeState(request->node(), st)) {
      return {grpc::StatusCode::NOT_FOUND, "no node called '" + request->node() + "'"};
    }
    return grpc::Status::OK;
  }());
  return reactor;
}

}  // namespace tidelane::server
