#include "router/server/chat_pipeline.h"

#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include <map>
#include <random>

#include "router/proto/auth.h"

namespace tidelane::server {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string NewRequestId() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> d;
  char buf[40];
  std::snprintf(buf, sizeof buf, "req-%016llx", static_cast<unsigned long long>(d(rd)));
  return buf;
}

// Returns an empty string when the request is acceptable, else what is wrong with it.
std::string Validate(const v1::ChatRequest& r, const RouterConfig& config) {
  if (r.messages().empty()) return "messages must not be empty";
  std::size_t bytes = 0;
  bool has_user = false;
  for (const auto& m : r.messages()) {
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      return "message role must be system, user or assistant, not '" + m.role().substr(0, 32) + "'";
    }
    has_user = has_user || m.role() == "user";
    bytes += m.content().size();
  }
  if (!has_user) return "the conversation has no user message";
  if (bytes > config.max_prompt_bytes) {
    return "prompt is " + std::to_string(bytes) + " bytes; the limit is " +
           std::to_string(config.max_prompt_bytes);
  }
  if (r.sampling().max_tokens() > config.max_tokens_limit) {
    return "max_tokens may be at most " + std::to_string(config.max_tokens_limit);
  }
  return {};
}

}  // namespace

ChatPipeline::ChatPipeline(const RouterConfig& config, NodeTable& nodes)
    : config_(config), nodes_(nodes) {}

std::string ChatPipeline::Problem(const v1::ChatRequest& request) const {
  return Validate(request, config_);
}

grpc::Status ChatPipeline::Run(const v1::ChatRequest& req, EventSink& sink) {
  const v1::ChatRequest* request = &req;
  if (const auto problem = Validate(*request, config_); !problem.empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, problem};
  }
  const std::string id = request->request_id().empty() ? NewRequestId() : request->request_id();
  const auto accepted_at = Clock::now();
  nodes_.Count(NodeTable::Outcome::kAccepted);

  const auto send = [&](v1::ChatEvent& e) {
    e.set_request_id(id);
    return sink.Send(e);
  };
  const auto send_error = [&](v1::ErrorCode code, const std::string& message) {
    v1::ChatEvent e;
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_message(message);
    if (code == v1::ERROR_CODE_NO_WORKER) e.mutable_error()->set_retry_after_ms(5000);
    send(e);
    nodes_.Count(NodeTable::Outcome::kFailed);
    return grpc::Status::OK;
  };

  std::uint32_t prompt_bytes = 0;
  for (const auto& m : request->messages()) prompt_bytes += m.content().size();
  core::Request view;
  view.id = std::hash<std::string>{}(id);
  view.user = static_cast<std::uint32_t>(std::hash<std::string>{}(request->user()));
  view.priority = request->priority() == v1::PRIORITY_BATCH ? core::Priority::kBatch
                                                            : core::Priority::kInteractive;
  view.prompt_tokens = prompt_bytes / 4 + 1;  // ~4 bytes per token until the engine tokenizes
  view.max_tokens = request->sampling().max_tokens();
  view.expected_output_tokens = view.max_tokens ? view.max_tokens : 256;
  view.session = std::hash<std::string>{}(request->conversation_id());
  const auto cancelled = [&] { return sink.Cancelled(); };
  const auto on_wait = [&](WaitUpdate u) {
    v1::ChatEvent e;
    e.mutable_accepted()->set_queue_position(u.position);
    e.mutable_accepted()->set_eta_ms(u.eta_ms);
    send(e);
  };

  std::vector<std::string> generated;
  std::set<std::uint64_t> failed_connections;
  std::optional<Lease> previous;
  std::string last_failure;
  double queue_ms = -1;
  double ttft_ms = -1;

  for (int attempt = 0; attempt <= config_.max_redirects; ++attempt) {
    auto acquired =
        nodes_.Acquire(view, failed_connections, cancelled, on_wait, config_.no_worker_timeout);
    if (!acquired.lease) {
      if (sink.Cancelled()) return {grpc::StatusCode::CANCELLED, "client cancelled"};
      return send_error(acquired.error, acquired.message);
    }
    Lease lease = *acquired.lease;
    if (queue_ms < 0) queue_ms = MsSince(accepted_at);

    v1::ChatEvent routed_or_redirected;
    if (previous) {
      auto* r = routed_or_redirected.mutable_redirected();
      r->set_from_node(previous->node);
      r->set_to_node(lease.node);
      r->set_reason(last_failure);
      r->set_resume_index(static_cast<std::uint32_t>(generated.size()));
      v1::RedirectRecord record;
      record.set_request_id(id);
      record.set_from_node(previous->node);
      record.set_to_node(lease.node);
      record.set_reason(last_failure);
      nodes_.RecordRedirect(record);
    } else {
      auto* r = routed_or_redirected.mutable_routed();
      r->set_node(lease.node);
      r->set_lane(lease.lane);
      r->set_stage(v1::STAGE_WHOLE);
    }
    if (!send(routed_or_redirected)) {
      nodes_.Release(lease, false);
      return {grpc::StatusCode::CANCELLED, "client went away"};
    }

    v1::GenerateRequest work;
    work.set_request_id(id);
    work.set_model(request->model());
    *work.mutable_messages() = request->messages();
    *work.mutable_sampling() = request->sampling();
    for (const auto& t : generated) work.add_generated(t);

    grpc::ClientContext upstream;
    auth::AttachBearer(upstream, config_.token);
    auto stream = lease.stub->Generate(&upstream, work);
    v1::GenerateEvent event;
    bool client_gone = false;
    std::optional<v1::GenerateDone> done;
    while (stream->Read(&event)) {
      if (event.has_token()) {
        // Tokens carry their index, so a resumed stream can never repeat or skip one.
        if (event.token().index() != generated.size()) continue;
        if (ttft_ms < 0) ttft_ms = MsSince(accepted_at);
        nodes_.MarkPrefilled(lease);
        generated.push_back(event.token().text());
        v1::ChatEvent e;
        *e.mutable_token() = event.token();
        if (!send(e)) {
          client_gone = true;
          upstream.TryCancel();
          break;
        }
      } else if (event.has_done()) {
        done = event.done();
      }
    }
    const grpc::Status status = stream->Finish();
    if (client_gone || sink.Cancelled()) {
      nodes_.Release(lease, false);
      return {grpc::StatusCode::CANCELLED, "client went away"};
    }
    if (status.ok() && done) {
      nodes_.Release(lease, true);
      nodes_.Count(NodeTable::Outcome::kServed);
      v1::ChatEvent e;
      auto* d = e.mutable_done();
      *d->mutable_usage() = done->usage();
      d->set_finish_reason(done->finish_reason());
      const double total = MsSince(accepted_at);
      d->mutable_timings()->set_queue_ms(queue_ms);
      d->mutable_timings()->set_ttft_ms(ttft_ms < 0 ? total : ttft_ms);
      d->mutable_timings()->set_total_ms(total);
      if (generated.size() > 1 && total > ttft_ms) {
        d->mutable_timings()->set_decode_tok_s((generated.size() - 1) * 1000.0 / (total - ttft_ms));
      }
      send(e);
      return grpc::Status::OK;
    }
    nodes_.Release(lease, false);
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return send_error(v1::ERROR_CODE_INVALID_REQUEST, status.error_message());
    }
    last_failure = status.ok() ? "worker ended the stream without finishing"
                               : "worker failed: " + status.error_message();
    spdlog::warn("request {} on {}: {}; redirecting at token {}", id, lease.node, last_failure,
                 generated.size());
    failed_connections.insert(lease.connection);
    previous = lease;
  }
  return send_error(v1::ERROR_CODE_WORKER_FAILED, "gave up after " +
                                                      std::to_string(config_.max_redirects) +
                                                      " redirects; last: " + last_failure);
}

}  // namespace tidelane::server
