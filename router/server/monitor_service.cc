#include <thread>

#include "router/core/policy.h"
#include "router/proto/auth.h"
#include "router/server/services.h"

namespace tidelane::server {

MonitorServiceImpl::MonitorServiceImpl(const RouterConfig& config, NodeTable& nodes)
    : config_(config), nodes_(nodes) {}

grpc::Status MonitorServiceImpl::Watch(grpc::ServerContext* context,
                                       const v1::WatchRequest* request,
                                       grpc::ServerWriter<v1::ClusterSnapshot>* writer) {
  if (auto s = auth::CheckBearerAny(*context, config_.client_tokens, nullptr); !s.ok()) return s;
  const auto interval = std::chrono::milliseconds(
      request->interval_ms() == 0 ? 500 : std::max(20u, request->interval_ms()));
  std::uint64_t cursor = 0;
  auto next = std::chrono::steady_clock::now();
  while (!stopping_ && !context->IsCancelled()) {
    if (!writer->Write(nodes_.Snapshot(&cursor))) break;
    next += interval;
    // Sleep in short steps so shutdown and cancellation are noticed promptly.
    while (!stopping_ && !context->IsCancelled() && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(50), next - std::chrono::steady_clock::now()));
    }
  }
  return grpc::Status::OK;
}

grpc::Status MonitorServiceImpl::SetPolicy(grpc::ServerContext* context,
                                           const v1::SetPolicyRequest* request,
                                           v1::SetPolicyResponse* response) {
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
}

grpc::Status MonitorServiceImpl::SetNodeState(grpc::ServerContext* context,
                                              const v1::SetNodeStateRequest* request,
                                              v1::SetNodeStateResponse*) {
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
}

}  // namespace tidelane::server
