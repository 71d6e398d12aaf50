// The router's gRPC services. Each checks the bearer token first and works through the
// shared NodeTable; none owns state of its own beyond configuration.
//
// Threading: ChatService uses gRPC's callback API — a chat stream is a reactor whose writes
// are queued and completed by gRPC's own threads, so a queued user holds no thread. The
// registry and monitor streams (a few, long-lived) use the synchronous API, a thread each.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "router/server/chat_pipeline.h"
#include "router/server/node_table.h"
#include "tidelane/v1/chat.grpc.pb.h"
#include "tidelane/v1/monitor.grpc.pb.h"
#include "tidelane/v1/registry.grpc.pb.h"

namespace tidelane::server {

class ChatServiceImpl final : public v1::ChatService::CallbackService {
 public:
  // All three must outlive the service; the pipeline is shared with the HTTP API.
  ChatServiceImpl(const RouterConfig& config, NodeTable& nodes, ChatPipeline& pipeline);

  grpc::ServerWriteReactor<v1::ChatEvent>* Chat(grpc::CallbackServerContext* context,
                                                const v1::ChatRequest* request) override;
  grpc::ServerWriteReactor<v1::ChatEvent>* Resume(grpc::CallbackServerContext* context,
                                                  const v1::ResumeRequest* request) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  const RouterConfig& config_;
  NodeTable& nodes_;
  ChatPipeline& pipeline_;
};

class RegistryServiceImpl final : public v1::RegistryService::Service {
 public:
  // Reads the TLS files in `config` once, for calling workers back; throws naming a file that
  // cannot be read (main has validated them, so only a race with their removal gets here).
  RegistryServiceImpl(const RouterConfig& config, NodeTable& nodes);

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::RouterDirective, v1::WorkerMessage>* stream) override;

 private:
  const RouterConfig& config_;
  NodeTable& nodes_;
  // How the router calls workers: with its own certificate when TLS is configured.
  const std::shared_ptr<grpc::ChannelCredentials> worker_credentials_;
};

class MonitorServiceImpl final : public v1::MonitorService::Service {
 public:
  MonitorServiceImpl(const RouterConfig& config, NodeTable& nodes);

  grpc::Status Watch(grpc::ServerContext* context, const v1::WatchRequest* request,
                     grpc::ServerWriter<v1::ClusterSnapshot>* writer) override;
  grpc::Status SetPolicy(grpc::ServerContext* context, const v1::SetPolicyRequest* request,
                         v1::SetPolicyResponse* response) override;
  grpc::Status SetNodeState(grpc::ServerContext* context, const v1::SetNodeStateRequest* request,
                            v1::SetNodeStateResponse* response) override;

  // Ends every Watch stream; called before the server shuts down.
  void Stop() { stopping_ = true; }

 private:
  const RouterConfig& config_;
  NodeTable& nodes_;
  std::atomic<bool> stopping_{false};
};

}  // namespace tidelane::server
