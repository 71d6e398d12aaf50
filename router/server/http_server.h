// HttpServer: the router's HTTP face, on Boost.Beast, one thread per connection (streams are
// long-lived and block on the pipeline, like the gRPC handlers).
//   POST /v1/chat/completions  OpenAI-compatible, streaming (server-sent events ending in
//                              "data: [DONE]") or not; Tidelane's own events (place in line,
//                              routing, redirects) travel as SSE comments clients ignore
//   GET  /v1/models            the models the workers serve
//   GET  /metrics              Prometheus text format
//   GET  /healthz              "ok", without a token (for probes)
// Everything but /healthz needs "Authorization: Bearer <token>" (401 otherwise). Errors are
// OpenAI error objects; bad input gets a 4xx to that client only.
//
// Threading: Start spawns an accept thread; each connection gets a thread, joined by Stop.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "router/server/chat_pipeline.h"
#include "router/server/node_table.h"

namespace tidelane::server {

class HttpServer {
 public:
  // All three must outlive the server.
  HttpServer(const RouterConfig& config, NodeTable& nodes, ChatPipeline& pipeline);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on HOST:PORT (port 0 picks a free one). Returns the bound HOST:PORT, or nothing
  // (see LastError) when it cannot listen.
  std::optional<std::string> Start(const std::string& address);
  // Stops accepting, closes every connection (ending their streams) and joins the threads.
  void Stop();
  std::string LastError() const { return error_; }

  static constexpr std::size_t kMaxConnections = 4096;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

// The Prometheus exposition of a snapshot; exposed for tests.
std::string RenderMetrics(const v1::ClusterSnapshot& snapshot, const LatencyHistograms& latencies);

}  // namespace tidelane::server
