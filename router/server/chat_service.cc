#include <map>

#include "router/proto/auth.h"
#include "router/server/services.h"

namespace tidelane::server {
namespace {

// Streams pipeline events to a gRPC client.
class GrpcSink final : public EventSink {
 public:
  GrpcSink(grpc::ServerContext& context, grpc::ServerWriter<v1::ChatEvent>& writer)
      : context_(context), writer_(writer) {}
  bool Send(const v1::ChatEvent& event) override { return writer_.Write(event); }
  bool Cancelled() const override { return context_.IsCancelled(); }

 private:
  grpc::ServerContext& context_;
  grpc::ServerWriter<v1::ChatEvent>& writer_;
};

}  // namespace

ChatServiceImpl::ChatServiceImpl(const RouterConfig& config, NodeTable& nodes,
                                 ChatPipeline& pipeline)
    : config_(config), nodes_(nodes), pipeline_(pipeline) {}

grpc::Status ChatServiceImpl::Chat(grpc::ServerContext* context, const v1::ChatRequest* request,
                                   grpc::ServerWriter<v1::ChatEvent>* writer) {
  if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) return s;
  GrpcSink sink(*context, *writer);
  return pipeline_.Run(*request, sink);
}

grpc::Status ChatServiceImpl::Resume(grpc::ServerContext* context, const v1::ResumeRequest* request,
                                     grpc::ServerWriter<v1::ChatEvent>* writer) {
  if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) return s;
  if (request->request_id().empty())
    return {grpc::StatusCode::INVALID_ARGUMENT, "request_id is required"};
  GrpcSink sink(*context, *writer);
  return pipeline_.Resume(request->request_id(), request->from_index(), sink);
}

grpc::Status ChatServiceImpl::ListModels(grpc::ServerContext* context, const v1::ListModelsRequest*,
                                         v1::ListModelsResponse* response) {
  if (auto s = auth::CheckBearer(*context, config_.token); !s.ok()) return s;
  std::uint64_t cursor = ~0ull;  // no flows or redirects wanted
  std::map<std::string, std::uint32_t> models;
  const auto snapshot = nodes_.Snapshot(&cursor);
  for (const auto& n : snapshot.nodes()) ++models[n.model()];
  for (const auto& [id, count] : models) {
    auto* m = response->add_models();
    m->set_id(id);
    m->set_nodes(count);
  }
  return grpc::Status::OK;
}

}  // namespace tidelane::server
