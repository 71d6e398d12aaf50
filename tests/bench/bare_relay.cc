// The floor under router-added latency: a ChatService that only relays. It takes a Chat call,
// says Accepted, calls one worker's Generate and passes on its tokens and Done, with gRPC's
// callback API on both sides as the router uses it, and nothing else: no ledger, no admission
// or placement, no receipt, no monitor. router_overhead_bench measures it beside the router
// (RELAY_ADDR), so the difference between the two is what the router itself costs, and the
// difference between this and the worker is what one more gRPC hop costs on this machine.
// Usage: bare_relay LISTEN WORKER_ADDR TOKEN_FILE   (prints "bare_relay ready grpc=ADDR").
// A benchmark tool, not a product: any worker error ends the client's call with that status.
#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>

#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "router/proto/auth.h"
#include "tidelane/v1/chat.grpc.pb.h"
#include "tidelane/v1/worker.grpc.pb.h"

using namespace tidelane;

namespace {

// One relayed call. The client-facing half deletes the object in OnDone, which gRPC calls only
// after Finish, and Finish waits for the worker call's OnDone: so neither half outlives it.
class Relay final : public grpc::ServerWriteReactor<v1::ChatEvent> {
 public:
  Relay(v1::WorkerService::Stub& worker, const std::string& token, const v1::ChatRequest& in)
      : upstream_(*this) {
    v1::GenerateRequest& r = upstream_.request;
    r.set_request_id(in.request_id());
    *r.mutable_messages() = in.messages();
    *r.mutable_sampling() = in.sampling();
    auth::AttachBearer(upstream_.context, token);
    worker.async()->Generate(&upstream_.context, &upstream_.request, &upstream_);
    v1::ChatEvent accepted;
    accepted.set_request_id(in.request_id());
    accepted.mutable_accepted();
    Send(std::move(accepted));
    upstream_.StartRead(&upstream_.event);
    upstream_.StartCall();
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    if (!ok) queue_.clear();
    if (!queue_.empty()) return WriteFront();
    FinishIfOver(lock);
  }
  void OnCancel() override { upstream_.context.TryCancel(); }
  void OnDone() override { delete this; }

 private:
  struct Upstream final : grpc::ClientReadReactor<v1::GenerateEvent> {
    explicit Upstream(Relay& relay) : relay(relay) {}
    void OnReadDone(bool ok) override {
      if (!ok) return;
      v1::ChatEvent e;
      e.set_request_id(request.request_id());
      if (event.has_token()) *e.mutable_token() = event.token();
      if (event.has_done()) {
        e.mutable_done()->set_finish_reason(event.done().finish_reason());
        *e.mutable_done()->mutable_usage() = event.done().usage();
      }
      relay.Send(std::move(e));
      StartRead(&event);
    }
    void OnDone(const grpc::Status& s) override { relay.UpstreamDone(s); }
    Relay& relay;
    grpc::ClientContext context;
    v1::GenerateRequest request;
    v1::GenerateEvent event;
  };

  void Send(v1::ChatEvent e) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(e));
    if (!writing_) WriteFront();
  }
  void UpstreamDone(const grpc::Status& s) {
    std::unique_lock lock(mu_);
    upstream_status_ = s;
    upstream_done_ = true;
    FinishIfOver(lock);
  }
  void WriteFront() {  // mu_ held
    writing_ = true;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    StartWrite(&current_);
  }
  // Finish lets gRPC run OnDone, which deletes this, on another thread at once: so it is
  // called after `lock` (on mu_) is released, never with this object's mutex still held.
  void FinishIfOver(std::unique_lock<std::mutex>& lock) {
    if (!upstream_done_ || writing_ || !queue_.empty() || finished_) return;
    finished_ = true;
    const grpc::Status status = upstream_status_;
    lock.unlock();
    Finish(status);
  }

  Upstream upstream_;
  std::mutex mu_;
  std::deque<v1::ChatEvent> queue_;
  v1::ChatEvent current_;
  bool writing_ = false, upstream_done_ = false, finished_ = false;
  grpc::Status upstream_status_;
};

class Service final : public v1::ChatService::CallbackService {
 public:
  Service(std::shared_ptr<grpc::Channel> worker, std::string token)
      : worker_(v1::WorkerService::NewStub(std::move(worker))), token_(std::move(token)) {}
  grpc::ServerWriteReactor<v1::ChatEvent>* Chat(grpc::CallbackServerContext*,
                                                const v1::ChatRequest* request) override {
    return new Relay(*worker_, token_, *request);
  }

 private:
  std::unique_ptr<v1::WorkerService::Stub> worker_;
  std::string token_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s LISTEN WORKER_ADDR TOKEN_FILE\n", argv[0]);
    return 2;
  }
  Service service(grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials()),
                  auth::ReadTokenFile(argv[3]));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "bare_relay: cannot listen on %s\n", argv[1]);
    return 1;
  }
  std::string bound = argv[1];
  if (const auto colon = bound.rfind(':'); port > 0 && bound.rfind("unix:", 0) != 0) {
    bound = bound.substr(0, colon + 1) + std::to_string(port);
  }
  std::printf("bare_relay ready grpc=%s\n", bound.c_str());
  std::fflush(stdout);
  server->Wait();
}
