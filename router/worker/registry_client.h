// RegistryClient: keeps this worker joined to its router through RegistryService.Connect.
// Sends Register, then telemetry at the interval the router asks for; reconnects with
// capped exponential backoff whenever the stream breaks (router restarted, network).
//
// Threading: one background thread of its own, started by Start and joined by Stop or the
// destructor. The telemetry callback runs on that thread.
#pragma once

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tidelane/v1/registry.grpc.pb.h"

namespace tidelane::worker {

class RegistryClient {
 public:
  using TelemetryFn = std::function<v1::Telemetry()>;
  // Called on the client's thread each time the router welcomes this worker.
  using WelcomeFn = std::function<void(const v1::Welcome&)>;

  // `credentials`: how to reach the router (tls::ChannelCredentials; plaintext when null).
  RegistryClient(std::string router_address, std::string token, v1::Register registration,
                 TelemetryFn telemetry, WelcomeFn on_welcome,
                 std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  void Start();
  void Stop();

 private:
  void Loop();
  // One connection's life; returns when the stream ends or Stop is called.
  void RunConnection(v1::RegistryService::Stub& stub);

  const std::string router_address_;
  const std::string token_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const v1::Register registration_;
  const TelemetryFn telemetry_;
  const WelcomeFn on_welcome_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  grpc::ClientContext* live_context_ = nullptr;  // the connection to cancel on Stop
  std::thread thread_;
};

}  // namespace tidelane::worker
