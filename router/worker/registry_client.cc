#include "router/worker/registry_client.h"

#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "router/proto/auth.h"

namespace tidelane::worker {

namespace {

// What a directive means for this worker, in words for its log. The router enforces each one
// itself (it places nothing new on a draining node, and work by lane), so the worker's part is
// to say so: an operator reading this node's log sees why its traffic changed.
std::string Describe(const v1::RouterDirective& d) {
  switch (d.directive_case()) {
    case v1::RouterDirective::kSetLane:
      return "this worker now serves the " +
             std::string(d.set_lane().lane() == v1::LANE_PREFILL  ? "prefill"
                         : d.set_lane().lane() == v1::LANE_DECODE ? "decode"
                                                                  : "mixed") +
             " lane (the tide moved it)";
    case v1::RouterDirective::kDrain:
      return d.drain().cordon_only()
                 ? "drained by the operator: no new requests until the drain is lifted; "
                   "running ones finish"
                 : "drained by the operator: running requests finish, nothing new comes";
    case v1::RouterDirective::kUndrain:
      return "the operator lifted the drain: taking new requests again";
    default:
      return "directive " + d.ShortDebugString();
  }
}

}  // namespace

RegistryClient::RegistryClient(std::string router_address, std::string token,
                               v1::Register registration, TelemetryFn telemetry,
                               WelcomeFn on_welcome,
                               std::shared_ptr<grpc::ChannelCredentials> credentials)
    : router_address_(std::move(router_address)),
      token_(std::move(token)),
      credentials_(credentials ? std::move(credentials) : grpc::InsecureChannelCredentials()),
      registration_(std::move(registration)),
      telemetry_(std::move(telemetry)),
      on_welcome_(std::move(on_welcome)) {}

RegistryClient::~RegistryClient() {
  Stop();
}

void RegistryClient::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void RegistryClient::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (live_context_) live_context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RegistryClient::Loop() {
  auto channel = grpc::CreateChannel(router_address_, credentials_);
  auto stub = v1::RegistryService::NewStub(channel);
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const auto started = std::chrono::steady_clock::now();
    RunConnection(*stub);
    // A connection that lived a while was healthy: start the backoff afresh.
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(5)) {
      backoff = std::chrono::milliseconds(100);
    }
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, backoff, [this] { return stopping_; })) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

void RegistryClient::RunConnection(v1::RegistryService::Stub& stub) {
  grpc::ClientContext context;
  auth::AttachBearer(context, token_);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    live_context_ = &context;
  }
  auto stream = stub.Connect(&context);

  v1::WorkerMessage hello;
  *hello.mutable_register_() = registration_;
  bool ok = stream->Write(hello);

  std::chrono::milliseconds interval(500);
  bool broken = !ok;
  bool refused = false;       // the router closed the stream before welcoming this worker
  bool router_ended = false;  // the router closed it (guarded by mu_): Finish has its reason
  std::thread reader;
  if (ok) {
    v1::RouterDirective first;
    if (stream->Read(&first) && first.has_welcome()) {
      interval = std::chrono::milliseconds(std::max(50u, first.welcome().telemetry_interval_ms()));
      spdlog::info("joined router {} as {}", router_address_, first.welcome().node());
      if (on_welcome_) on_welcome_(first.welcome());
      reader = std::thread([&] {
        v1::RouterDirective d;
        while (stream->Read(&d)) spdlog::info("router: {}", Describe(d));
        {
          std::lock_guard lock(mu_);
          broken = true;
          // The router ended the stream (or the connection went): Finish has the reason, such
          // as "the router is shutting down", which a cancel would replace.
          if (!stopping_) router_ended = true;
        }
        cv_.notify_all();
      });
    } else {
      broken = true;
      refused = true;
    }
  }

  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, interval, [&] { return stopping_ || broken; })) break;
    }
    v1::WorkerMessage m;
    *m.mutable_telemetry() = telemetry_();
    if (!stream->Write(m)) break;
  }
  // Cancelling a stream the router already ended would hide its reason (a refusal, or "the
  // router is shutting down").
  bool cancel = !refused;
  {
    std::lock_guard lock(mu_);
    cancel = cancel && !router_ended;
  }
  if (cancel) context.TryCancel();
  if (reader.joinable()) reader.join();
  const auto status = stream->Finish();
  {
    std::lock_guard lock(mu_);
    live_context_ = nullptr;
    if (!stopping_ && refused && !status.ok()) {
      spdlog::error("router {} refused this worker: {} — retrying", router_address_,
                    status.error_message());
    } else if (!stopping_) {
      spdlog::warn("lost router {}: {} — reconnecting", router_address_,
                   status.ok() ? std::string("stream closed") : status.error_message());
    }
  }
}

}  // namespace tidelane::worker
