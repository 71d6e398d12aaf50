// HttpServer: the router's HTTP face, on Boost.Beast with asynchronous I/O: a few threads
// serve every connection (http_connection.h), and a chat request runs on the pipeline, which
// answers through the connection, so a client waiting in line holds a socket, not a thread.
//   POST /v1/chat/completions  OpenAI-compatible, streaming (server-sent events ending in
//                              "data: [DONE]") or not; Tidelane's own events (place in line,
//                              routing, redirects) travel as SSE comments clients ignore
//   GET  /v1/models            the models the workers serve
//   GET  /metrics              Prometheus text format
//   GET  /healthz              "ok", without a token (for probes)
// Everything but /healthz needs "Authorization: Bearer <token>" (401 otherwise). Errors are
// OpenAI error objects; bad input gets a 4xx to that client only.
//
// Threading: Start runs the I/O on `threads` threads of its own, joined by Stop. Call Stop (or
// destroy the server) after NodeTable::Shutdown and ChatPipeline::Shutdown: it waits for the
// pipeline to let go of every connection's request.
#pragma once

#include <memory>
#include <optional>
#include <string>

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

  // Listens on HOST:PORT (port 0 picks a free one) and serves with `threads` I/O threads.
  // Returns the bound HOST:PORT, or nothing (see LastError) when it cannot listen.
  std::optional<std::string> Start(const std::string& address, int threads = 2);
  // Stops accepting, closes every connection (ending their streams) and joins the threads.
  void Stop();
  std::string LastError() const { return error_; }

  // Past this many open connections a new one gets a 503 and is closed. Each costs a socket
  // and its buffers; the router raises its descriptor limit to fit (main.cc).
  static constexpr std::size_t kMaxConnections = 30000;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

// The Prometheus exposition of a snapshot and, when there is one, the ledger's counters;
// exposed for tests.
std::string RenderMetrics(const v1::ClusterSnapshot& snapshot, const LatencyHistograms& latencies,
                          const Ledger* ledger = nullptr);

}  // namespace tidelane::server
