// The router's gRPC services. Each checks the bearer token first and works through the
// shared NodeTable; none owns state of its own beyond configuration.
//
// Threading: every service uses gRPC's callback API — a stream is a reactor whose reads and
// writes are completed by gRPC's own threads, so a queued user, a connected worker or a
// monitor between snapshots holds no thread; the server runs no synchronous request threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
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

class RegistryServiceImpl final : public v1::RegistryService::CallbackService {
 public:
  // Reads the TLS files in `config` once, for calling workers back; throws naming a file that
  // cannot be read (main has validated them, so only a race with their removal gets here).
  RegistryServiceImpl(const RouterConfig& config, NodeTable& nodes);

  // A worker's stream: Register, a Welcome back, then telemetry until it leaves, when its node
  // is removed from `nodes`.
  grpc::ServerBidiReactor<v1::WorkerMessage, v1::RouterDirective>* Connect(
      grpc::CallbackServerContext* context) override;
  // Ends every worker's stream (UNAVAILABLE, "the router is shutting down") and refuses new
  // ones, so that the server's shutdown need not wait out its grace period for streams that
  // never end by themselves; the workers reconnect with backoff. Thread-safe; call once.
  void Stop();

  // The streams still open, for Stop (each a WorkerLink's DirectiveSink).
  struct Links {
    std::mutex mu;
    bool stopping = false;
    std::set<std::shared_ptr<DirectiveSink>> live;
  };

 private:
  const RouterConfig& config_;
  NodeTable& nodes_;
  // How the router calls workers: with its own certificate when TLS is configured.
  const std::shared_ptr<grpc::ChannelCredentials> worker_credentials_;
  Links links_;
};

class MonitorServiceImpl final : public v1::MonitorService::CallbackService {
 public:
  MonitorServiceImpl(const RouterConfig& config, NodeTable& nodes);
  ~MonitorServiceImpl() override;

  grpc::ServerWriteReactor<v1::ClusterSnapshot>* Watch(grpc::CallbackServerContext* context,
                                                       const v1::WatchRequest* request) override;
  grpc::ServerUnaryReactor* SetPolicy(grpc::CallbackServerContext* context,
                                      const v1::SetPolicyRequest* request,
                                      v1::SetPolicyResponse* response) override;
  grpc::ServerUnaryReactor* SetNodeState(grpc::CallbackServerContext* context,
                                         const v1::SetNodeStateRequest* request,
                                         v1::SetNodeStateResponse* response) override;

  // Ends every Watch stream and refuses new ones; called before the server shuts down.
  void Stop();

 private:
  class Watcher;
  void Forget(Watcher* watcher);  // a finished stream leaves the set Stop walks

  const RouterConfig& config_;
  NodeTable& nodes_;
  std::mutex mu_;
  std::set<Watcher*> watchers_;
  bool stopping_ = false;
};

}  // namespace tidelane::server
