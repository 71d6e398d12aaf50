#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <optional>

#include "router/proto/auth.h"
#include "router/proto/tls.h"
#include "router/server/services.h"

namespace tidelane::server {
namespace {

// One worker's registry stream: Register first, then telemetry until the worker leaves. A
// reactor on gRPC's callback threads, so a connected worker holds no thread of the router's
// and the server needs no synchronous request threads (which take turns polling the same
// connections as the chat streams' threads, one more wake-up to hand each event over).
// Reads and the one write (the welcome) run concurrently; the stream finishes once neither is
// in flight, and the reactor deletes itself when gRPC is done with it.
class WorkerLink final : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::RouterDirective> {
 public:
  WorkerLink(const RouterConfig& config, NodeTable& nodes,
             std::shared_ptr<grpc::ChannelCredentials> worker_credentials,
             grpc::CallbackServerContext* context)
      : config_(config), nodes_(nodes), worker_credentials_(std::move(worker_credentials)) {
    if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) {
      Finish(s);
      return;
    }
    // With a CA configured, a worker must also prove itself with a certificate from it: a
    // leaked token alone does not let a rogue process receive prompts.
    if (config_.tls.verifies_peers() && !tls::PeerCertificateVerified(*context)) {
      Finish({grpc::StatusCode::UNAUTHENTICATED,
              "workers must present a client certificate signed by the router's CA (mutual TLS)"});
      return;
    }
    StartRead(&message_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (!registered_) {
        EndWith({grpc::StatusCode::CANCELLED, "worker left before registering"});
        return;
      }
      nodes_.Remove(name_, connection_);
      spdlog::warn("worker {} left", name_);
      EndWith(grpc::Status::OK);
      return;
    }
    if (!registered_) {
      if (auto s = Register(message_); !s.ok()) {
        EndWith(s);
        return;
      }
      {
        std::lock_guard lock(mu_);
        writing_ = true;
      }
      StartWrite(&welcome_);
    } else if (message_.has_telemetry()) {
      nodes_.UpdateTelemetry(name_, connection_, message_.telemetry());
      if (message_.telemetry().draining()) nodes_.SetNodeState(name_, v1::NODE_STATE_DRAINING);
    }
    StartRead(&message_);
  }

  void OnWriteDone(bool /*ok*/) override {
    // A failed welcome means the worker is gone: the pending read fails too and ends the stream.
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      finish.swap(finish_);
    }
    if (finish) Finish(*finish);
  }

  void OnDone() override { delete this; }

 private:
  grpc::Status Register(const v1::WorkerMessage& first) {
    if (!first.has_register_()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Register"};
    }
    const v1::Register& reg = first.register_();
    if (reg.name().empty() || reg.address().empty() || reg.max_batch() == 0) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "Register needs a name, an address and max_batch > 0"};
    }
    // The router calls the worker back with its own certificate, verified by the worker.
    // Without gRPC's transparent retries: the pipeline redirects a failed call itself, at the
    // next token index, and the retry layer would only add its per-call state and message
    // copies (a KV handoff's chunks included) to every call.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto channel = grpc::CreateCustomChannel(reg.address(), worker_credentials_, args);
    name_ = reg.name();
    connection_ = nodes_.Add(reg, v1::WorkerService::NewStub(channel));
    registered_ = true;
    spdlog::info("worker {} joined from {} (engine {}, model {}, context {} tokens, max batch {})",
                 reg.name(), reg.address(), reg.engine(), reg.model(), reg.context_length(),
                 reg.max_batch());
    welcome_.mutable_welcome()->set_node(reg.name());
    welcome_.mutable_welcome()->set_telemetry_interval_ms(config_.telemetry_interval_ms);
    return grpc::Status::OK;
  }

  // Finishes now, or once the welcome's write is done (gRPC wants no write in flight). Called
  // with no lock held: the reactor may be deleted before Finish returns.
  void EndWith(grpc::Status status) {
    {
      std::lock_guard lock(mu_);
      if (writing_) {
        finish_ = std::move(status);
        return;
      }
    }
    Finish(status);
  }

  const RouterConfig& config_;
  NodeTable& nodes_;
  const std::shared_ptr<grpc::ChannelCredentials> worker_credentials_;
  // Reads complete one after another, so what they touch needs no lock; the welcome's write
  // completes beside them, and mu_ orders the end of the two.
  v1::WorkerMessage message_;
  v1::RouterDirective welcome_;
  bool registered_ = false;
  std::string name_;
  std::uint64_t connection_ = 0;  // NodeTable's id for this registration
  std::mutex mu_;
  bool writing_ = false;
  std::optional<grpc::Status> finish_;  // to send once the write is done
};

}  // namespace

RegistryServiceImpl::RegistryServiceImpl(const RouterConfig& config, NodeTable& nodes)
    : config_(config), nodes_(nodes), worker_credentials_(tls::ChannelCredentials(config.tls)) {}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::RouterDirective>* RegistryServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  return new WorkerLink(config_, nodes_, worker_credentials_, context);
}

}  // namespace tidelane::server
