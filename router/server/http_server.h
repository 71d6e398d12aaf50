// HttpServer: the router's plain-HTTP endpoints, on Boost.Beast.
//   GET /healthz  -> 200 "ok" (no token: load balancers and the supervisor probe it)
//   GET /metrics  -> Prometheus text format; needs "Authorization: Bearer <token>"
// The OpenAI-compatible /v1 API joins these with the serving issue.
//
// Threading: one I/O thread of its own; handlers read the NodeTable, which is thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "router/server/node_table.h"

namespace tidelane::server {

class HttpServer {
 public:
  HttpServer(NodeTable& nodes, std::string token);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on HOST:PORT (port 0 picks a free one) and serves on a background thread.
  // Returns the bound HOST:PORT, or nothing (see LastError) when it cannot listen.
  std::optional<std::string> Start(const std::string& address);
  void Stop();
  std::string LastError() const { return error_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

// The Prometheus exposition of a snapshot; exposed for tests.
std::string RenderMetrics(const v1::ClusterSnapshot& snapshot);

}  // namespace tidelane::server
