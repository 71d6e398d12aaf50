#include <deque>
#include <map>

#include "router/proto/auth.h"
#include "router/server/services.h"

namespace tidelane::server {
namespace {

// A chat stream to one gRPC client. The pipeline sends events from its threads; they queue
// here and gRPC writes them one at a time (the callback API allows one write in flight).
// A terminal event (Done, Error) waits for Close, which always follows it, and goes out with
// the status in one operation: a separate write would cost a write-done round trip through
// another gRPC thread before the status could follow, on every request's critical path.
// The reactor deletes itself when gRPC is done with it; the pipeline may still hold the
// stream, whose later sends then report the client gone.
class ChatStream final : public StreamSink, public std::enable_shared_from_this<ChatStream> {
 public:
  // A client that reads nothing for this many events has stopped reading.
  static constexpr std::size_t kMaxQueued = 8192;

  class Reactor final : public grpc::ServerWriteReactor<v1::ChatEvent> {
   public:
    explicit Reactor(std::shared_ptr<ChatStream> stream) : stream_(std::move(stream)) {}
    void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
    void OnCancel() override { stream_->cancelled_ = true; }
    void OnDone() override {
      stream_->Detach();
      delete this;
    }

   private:
    std::shared_ptr<ChatStream> stream_;
  };

  static std::pair<std::shared_ptr<ChatStream>, Reactor*> Open() {
    auto stream = std::make_shared<ChatStream>();
    auto* reactor = new Reactor(stream);
    stream->reactor_ = reactor;
    return {stream, reactor};
  }

  bool Send(const v1::ChatEvent& event) override {
    std::lock_guard lock(mu_);
    if (reactor_ == nullptr || finished_ || cancelled_) return false;
    if (queue_.size() >= kMaxQueued) {
      cancelled_ = true;
      FinishLocked({grpc::StatusCode::RESOURCE_EXHAUSTED, "the client stopped reading"});
      return false;
    }
    queue_.push_back(event);
    if (!writing_ && !OnlyTerminalLeftLocked()) WriteFrontLocked();
    return true;
  }

  bool Cancelled() const override { return cancelled_; }

  void Close(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    if (writing_) {
      closing_ = status;  // finished once the queue drains
    } else if (!queue_.empty()) {
      WriteLastAndFinishLocked(status);  // the terminal event was waiting for this
    } else {
      FinishLocked(status);
    }
  }

 private:
  void WriteDone(bool ok) {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {  // the client went away mid-stream
      cancelled_ = true;
      queue_.clear();
      FinishLocked({grpc::StatusCode::CANCELLED, "client went away"});
      return;
    }
    if (OnlyTerminalLeftLocked()) {
      if (closing_) WriteLastAndFinishLocked(*closing_);  // else Close sends it
    } else if (!queue_.empty()) {
      WriteFrontLocked();
    } else if (closing_) {
      FinishLocked(*closing_);
    }
  }
  bool OnlyTerminalLeftLocked() const {
    return queue_.size() == 1 && (queue_.front().has_done() || queue_.front().has_error());
  }
  // The last queued event and the status together. gRPC drops the message of a write-and-
  // finish whose status is not OK, so that event is written first and the status follows.
  void WriteLastAndFinishLocked(const grpc::Status& status) {
    if (finished_ || reactor_ == nullptr) return;
    if (!status.ok()) {
      closing_ = status;
      WriteFrontLocked();
      return;
    }
    finished_ = true;
    writing_ = true;
    reactor_->StartWriteAndFinish(&queue_.front(), grpc::WriteOptions(), status);
  }
  // Writes the oldest queued event. When more are already waiting, gRPC may hold this one
  // back to send them together (fewer frames and wake-ups per token under load); a held
  // terminal event counts, since the Close that sends it comes straight after it.
  void WriteFrontLocked() {
    writing_ = true;
    grpc::WriteOptions options;
    if (queue_.size() > 1) options.set_buffer_hint();
    reactor_->StartWrite(&queue_.front(), options);
  }
  void FinishLocked(const grpc::Status& status) {
    if (finished_ || reactor_ == nullptr) return;
    finished_ = true;
    reactor_->Finish(status);
  }
  void Detach() {
    std::lock_guard lock(mu_);
    reactor_ = nullptr;
    cancelled_ = true;
  }

  std::mutex mu_;
  Reactor* reactor_ = nullptr;
  std::deque<v1::ChatEvent> queue_;  // front() is being written; deque keeps it in place
  bool writing_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> closing_;
  std::atomic<bool> cancelled_{false};
};

// A stream that ends before it starts (bad token, bad request).
grpc::ServerWriteReactor<v1::ChatEvent>* Refuse(const grpc::Status& status) {
  auto [stream, reactor] = ChatStream::Open();
  stream->Close(status);
  return reactor;
}

}  // namespace

ChatServiceImpl::ChatServiceImpl(const RouterConfig& config, NodeTable& nodes,
                                 ChatPipeline& pipeline)
    : config_(config), nodes_(nodes), pipeline_(pipeline) {}

grpc::ServerWriteReactor<v1::ChatEvent>* ChatServiceImpl::Chat(grpc::CallbackServerContext* context,
                                                               const v1::ChatRequest* request) {
  std::size_t client = 0;
  if (auto s = auth::CheckBearerAny(*context, config_.client_tokens, &client); !s.ok()) {
    return Refuse(s);
  }
  if (const auto rate = pipeline_.ChargeRate(config_.client_tokens[client]); !rate.allowed) {
    const auto ms = std::to_string(rate.retry_after.count());
    context->AddTrailingMetadata("retry-after-ms", ms);
    return Refuse({grpc::StatusCode::RESOURCE_EXHAUSTED,
                   "rate limit for this token reached; retry after " + ms + " ms"});
  }
  auto [stream, reactor] = ChatStream::Open();
  // The request belongs to the credential that sent it (Resume checks it).
  pipeline_.Start(*request, stream, Caller::ForClient(config_, client));
  return reactor;
}

grpc::ServerWriteReactor<v1::ChatEvent>* ChatServiceImpl::Resume(
    grpc::CallbackServerContext* context, const v1::ResumeRequest* request) {
  std::size_t client = 0;
  if (auto s = auth::CheckBearerAny(*context, config_.client_tokens, &client); !s.ok()) {
    return Refuse(s);
  }
  if (request->request_id().empty()) {
    return Refuse({grpc::StatusCode::INVALID_ARGUMENT, "request_id is required"});
  }
  auto [stream, reactor] = ChatStream::Open();
  // Only the request's own credential, or the router's token, gets anything but NOT_FOUND.
  pipeline_.StartResume(request->request_id(), request->from_index(), stream,
                        Caller::ForClient(config_, client));
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                      const v1::ListModelsRequest*,
                                                      v1::ListModelsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (auto s = auth::CheckBearerAny(*context, config_.client_tokens, nullptr); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  std::uint64_t cursor = ~0ull;  // no flows or redirects wanted
  std::map<std::string, std::uint32_t> models;
  const auto snapshot = nodes_.Snapshot(&cursor);
  for (const auto& n : snapshot.nodes()) ++models[n.model()];
  for (const auto& [id, count] : models) {
    auto* m = response->add_models();
    m->set_id(id);
    m->set_nodes(count);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tidelane::server
