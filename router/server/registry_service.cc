#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <optional>

#include "router/proto/auth.h"
#include "router/proto/tls.h"
#include "router/server/services.h"

namespace tidelane::server {
namespace {

class WorkerLink;

// The NodeTable's way to a WorkerLink, which deletes itself when its stream is over: Detach
// (from OnDone, before the delete) makes later sends no-ops.
class LinkSink final : public DirectiveSink {
 public:
  explicit LinkSink(WorkerLink* link) : link_(link) {}
  void Send(v1::RouterDirective directive) override;
  // Ends the stream with `status` (at shutdown), unless it is ending already.
  void End(const grpc::Status& status);
  void Detach() {
    std::lock_guard lock(mu_);
    link_ = nullptr;
  }

 private:
  std::mutex mu_;
  WorkerLink* link_;
};

// One worker's registry stream: Register first, then telemetry until the worker leaves; the
// router's directives go the other way, the Welcome first. A reactor on gRPC's callback
// threads, so a connected worker holds no thread of the router's and the server needs no
// synchronous request threads (which take turns polling the same connections as the chat
// streams' threads, one more wake-up to hand each event over).
// Reads and writes run concurrently, one write at a time from an outbox; the stream finishes
// once no write is in flight, and the reactor deletes itself when gRPC is done with it.
class WorkerLink final : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::RouterDirective> {
 public:
  WorkerLink(const RouterConfig& config, NodeTable& nodes,
             std::shared_ptr<grpc::ChannelCredentials> worker_credentials,
             RegistryServiceImpl::Links& links, grpc::CallbackServerContext* context)
      : config_(config),
        nodes_(nodes),
        worker_credentials_(std::move(worker_credentials)),
        links_(links),
        sink_(std::make_shared<LinkSink>(this)) {
    {
      std::lock_guard lock(links_.mu);
      if (links_.stopping) {
        EndWith({grpc::StatusCode::UNAVAILABLE, "the router is shutting down"});
        return;
      }
      links_.live.insert(sink_);
    }
    if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) {
      EndWith(s);
      return;
    }
    // With a CA configured, a worker must also prove itself with a certificate from it: a
    // leaked token alone does not let a rogue process receive prompts.
    if (config_.tls.verifies_peers() && !tls::PeerCertificateVerified(*context)) {
      EndWith({grpc::StatusCode::UNAUTHENTICATED,
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
    } else if (message_.has_telemetry()) {
      nodes_.UpdateTelemetry(name_, connection_, message_.telemetry());
      if (message_.telemetry().draining()) nodes_.SetNodeState(name_, v1::NODE_STATE_DRAINING);
    }
    StartRead(&message_);
  }

  // From LinkSink, any thread. True when the caller is to start the write (WriteNext) once it
  // has let go of its own lock: writing_ is set, so the stream cannot finish, nor the reactor be
  // deleted, before that write is done.
  bool Enqueue(v1::RouterDirective directive) {
    std::lock_guard lock(mu_);
    if (ending_) return false;
    outbox_.push_back(std::move(directive));
    return !std::exchange(writing_, true);
  }
  // Starts the write of the outbox's first directive; called with writing_ set.
  void WriteNext() {
    {
      std::lock_guard lock(mu_);
      out_ = std::move(outbox_.front());
      outbox_.pop_front();
    }
    StartWrite(&out_);
  }

  void OnWriteDone(bool ok) override {
    // A failed write means the worker is gone: the pending read fails too and ends the stream.
    std::optional<grpc::Status> finish;
    bool more = false;
    {
      std::lock_guard lock(mu_);
      if (!ok || ending_) outbox_.clear();  // the worker is gone, or the stream is ending
      if (!outbox_.empty()) {
        out_ = std::move(outbox_.front());
        outbox_.pop_front();
        more = true;
      } else {
        writing_ = false;
        finish.swap(finish_);
      }
    }
    if (more) {
      StartWrite(&out_);
    } else if (finish) {
      Finish(*finish);
    }
  }

  void OnDone() override {
    {
      std::lock_guard lock(links_.mu);
      links_.live.erase(sink_);
    }
    sink_->Detach();
    delete this;
  }

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
    registered_ = true;
    // The Welcome is queued before the node joins the table, so that it is the first thing
    // the worker reads whatever the table sends it at once (a lane change, say).
    v1::RouterDirective welcome;
    welcome.mutable_welcome()->set_node(reg.name());
    welcome.mutable_welcome()->set_telemetry_interval_ms(config_.telemetry_interval_ms);
    const bool start = Enqueue(std::move(welcome));
    connection_ = nodes_.Add(reg, v1::WorkerService::NewStub(channel), sink_);
    spdlog::info("worker {} joined from {} (engine {}, model {}, context {} tokens, max batch {})",
                 reg.name(), reg.address(), reg.engine(), reg.model(), reg.context_length(),
                 reg.max_batch());
    if (start) WriteNext();
    return grpc::Status::OK;
  }

  // Finishes now, or once the write in flight is done (gRPC wants no write in flight). Called
  // with no lock held: the reactor may be deleted before Finish returns.
  void EndWith(const grpc::Status& status) {
    if (BeginEnd(status)) Finish(status);
  }

 public:
  // The first end wins: true when the caller is to Finish now (no write in flight); with a
  // write in flight, OnWriteDone finishes with `status`. A later end (the worker leaving while
  // the router shuts down, say) is a no-op, so Finish is called exactly once.
  bool BeginEnd(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    if (std::exchange(ending_, true)) return false;  // nothing more is queued after this
    if (writing_) {
      finish_ = status;
      return false;
    }
    return true;
  }

 private:
  const RouterConfig& config_;
  NodeTable& nodes_;
  const std::shared_ptr<grpc::ChannelCredentials> worker_credentials_;
  RegistryServiceImpl::Links& links_;
  const std::shared_ptr<LinkSink> sink_;
  // Reads complete one after another, so what they touch needs no lock; writes complete
  // beside them, and mu_ orders the outbox and the end of the two.
  v1::WorkerMessage message_;
  bool registered_ = false;
  std::string name_;
  std::uint64_t connection_ = 0;  // NodeTable's id for this registration
  std::mutex mu_;
  std::deque<v1::RouterDirective> outbox_;
  v1::RouterDirective out_;  // the directive being written
  bool writing_ = false;
  bool ending_ = false;
  std::optional<grpc::Status> finish_;  // to send once the write is done
};

void LinkSink::End(const grpc::Status& status) {
  WorkerLink* finish = nullptr;
  {
    std::lock_guard lock(mu_);
    if (link_ != nullptr && link_->BeginEnd(status)) finish = link_;
  }
  // Outside mu_, as in Send: OnDone (and Detach) may run inline. The link cannot be deleted
  // before this Finish: only Finish leads to OnDone, and BeginEnd made this the only one.
  if (finish != nullptr) finish->Finish(status);
}

void LinkSink::Send(v1::RouterDirective directive) {
  WorkerLink* start = nullptr;
  {
    std::lock_guard lock(mu_);
    if (link_ != nullptr && link_->Enqueue(std::move(directive))) start = link_;
  }
  // Outside mu_: gRPC may run the write's completion, and with it OnDone and Detach, inline.
  if (start != nullptr) start->WriteNext();
}

}  // namespace

RegistryServiceImpl::RegistryServiceImpl(const RouterConfig& config, NodeTable& nodes)
    : config_(config), nodes_(nodes), worker_credentials_(tls::ChannelCredentials(config.tls)) {}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::RouterDirective>* RegistryServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  return new WorkerLink(config_, nodes_, worker_credentials_, links_, context);
}

void RegistryServiceImpl::Stop() {
  std::vector<std::shared_ptr<DirectiveSink>> live;
  {
    std::lock_guard lock(links_.mu);
    links_.stopping = true;
    live.assign(links_.live.begin(), links_.live.end());
  }
  for (auto& sink : live) {
    static_cast<LinkSink&>(*sink).End(
        {grpc::StatusCode::UNAVAILABLE, "the router is shutting down"});
  }
}

}  // namespace tidelane::server
