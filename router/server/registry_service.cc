#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include "router/proto/auth.h"
#include "router/proto/tls.h"
#include "router/server/services.h"

namespace tidelane::server {

RegistryServiceImpl::RegistryServiceImpl(const RouterConfig& config, NodeTable& nodes)
    : config_(config), nodes_(nodes), worker_credentials_(tls::ChannelCredentials(config.tls)) {}

grpc::Status RegistryServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::RouterDirective, v1::WorkerMessage>* stream) {
  if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) return s;
  // With a CA configured, a worker must also prove itself with a certificate from it: a
  // leaked token alone does not let a rogue process receive prompts.
  if (config_.tls.verifies_peers() && !tls::PeerCertificateVerified(*context)) {
    return {grpc::StatusCode::UNAUTHENTICATED,
            "workers must present a client certificate signed by the router's CA (mutual TLS)"};
  }

  v1::WorkerMessage first;
  if (!stream->Read(&first)) return {grpc::StatusCode::CANCELLED, "worker left before registering"};
  if (!first.has_register_()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Register"};
  }
  const v1::Register& reg = first.register_();
  if (reg.name().empty() || reg.address().empty() || reg.max_batch() == 0) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "Register needs a name, an address and max_batch > 0"};
  }

  // The router calls the worker back with its own certificate, verified by the worker. Without
  // gRPC's transparent retries: the pipeline redirects a failed call itself, at the next token
  // index, and the retry layer would only add its per-call state and message copies (a KV
  // handoff's chunks included) to every call.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto channel = grpc::CreateCustomChannel(reg.address(), worker_credentials_, args);
  const auto connection = nodes_.Add(reg, v1::WorkerService::NewStub(channel));
  spdlog::info("worker {} joined from {} (engine {}, model {}, context {} tokens, max batch {})",
               reg.name(), reg.address(), reg.engine(), reg.model(), reg.context_length(),
               reg.max_batch());

  v1::RouterDirective welcome;
  welcome.mutable_welcome()->set_node(reg.name());
  welcome.mutable_welcome()->set_telemetry_interval_ms(config_.telemetry_interval_ms);
  if (stream->Write(welcome)) {
    v1::WorkerMessage m;
    while (stream->Read(&m)) {
      if (!m.has_telemetry()) continue;
      nodes_.UpdateTelemetry(reg.name(), connection, m.telemetry());
      if (m.telemetry().draining()) nodes_.SetNodeState(reg.name(), v1::NODE_STATE_DRAINING);
    }
  }
  nodes_.Remove(reg.name(), connection);
  spdlog::warn("worker {} left", reg.name());
  return grpc::Status::OK;
}

}  // namespace tidelane::server
