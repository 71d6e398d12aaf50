// ChatPipeline: one chat request's life in the router, whatever protocol carried it (gRPC
// ChatService, the OpenAI-compatible HTTP API): validate, admit (Accepted with place in line
// at once), route, stream the worker's tokens with their indices, redirect to another worker
// at the next token index if one fails, and finish with Done or Error.
//
// Threading: Run blocks for the request's whole life on the caller's thread; any number of
// Runs may proceed at once (state lives in the thread-safe NodeTable).
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "router/server/node_table.h"
#include "tidelane/v1/chat.pb.h"

namespace tidelane::server {

struct RouterConfig {
  std::string token;
  // How long a request waits for the first worker to join before it gets NO_WORKER.
  std::chrono::milliseconds no_worker_timeout{15000};
  std::uint32_t telemetry_interval_ms = 250;
  std::uint32_t max_prompt_bytes = 1 << 20;
  std::uint32_t max_tokens_limit = 4096;
  int max_redirects = 3;
};

// Where a request's events go.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Delivers one event; false when the client has gone (the pipeline then stops the work).
  virtual bool Send(const v1::ChatEvent& event) = 0;
  // True once the client has gone or given up.
  virtual bool Cancelled() const = 0;
};

class ChatPipeline {
 public:
  // `config` and `nodes` must outlive the pipeline.
  ChatPipeline(const RouterConfig& config, NodeTable& nodes);

  // Runs `request` to its end. OK once a terminal event (Done or Error) was sent;
  // INVALID_ARGUMENT (nothing sent) for a request that cannot be served as asked, with a
  // message saying why; CANCELLED when the client went away.
  grpc::Status Run(const v1::ChatRequest& request, EventSink& sink);

  // What is wrong with `request` (empty when nothing is): the check Run makes first, for
  // protocols that must answer before they start streaming.
  std::string Problem(const v1::ChatRequest& request) const;

 private:
  const RouterConfig& config_;
  NodeTable& nodes_;
};

}  // namespace tidelane::server
