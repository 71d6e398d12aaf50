#include "router/worker/worker_service.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "router/proto/auth.h"

namespace tidelane::worker {

WorkerServiceImpl::WorkerServiceImpl(Engine& engine, std::string token)
    : engine_(engine), token_(std::move(token)) {}

grpc::Status WorkerServiceImpl::Generate(grpc::ServerContext* context,
                                         const v1::GenerateRequest* request,
                                         grpc::ServerWriter<v1::GenerateEvent>* writer) {
  if (auto s = auth::CheckBearer(*context, token_); !s.ok()) return s;
  if (request->request_id().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "request_id is required"};
  }

  GenerationInput input;
  input.request_id = request->request_id();
  for (const auto& m : request->messages()) input.messages.push_back({m.role(), m.content()});
  input.max_tokens = request->sampling().max_tokens();
  input.temperature = request->sampling().temperature();
  input.seed = request->sampling().seed();
  input.generated.assign(request->generated().begin(), request->generated().end());

  auto flag = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lock(mu_);
    if (!cancelled_.emplace(input.request_id, flag).second) {
      return {grpc::StatusCode::ALREADY_EXISTS,
              "request " + input.request_id + " is already running here"};
    }
  }
  struct Unregister {
    WorkerServiceImpl* self;
    const std::string& id;
    ~Unregister() {
      std::lock_guard lock(self->mu_);
      self->cancelled_.erase(id);
    }
  } unregister{this, input.request_id};

  const auto sink = [&](std::uint32_t index, std::string_view text) {
    if (flag->load() || context->IsCancelled()) return false;
    v1::GenerateEvent event;
    event.mutable_token()->set_index(index);
    event.mutable_token()->set_text(std::string(text));
    if (!writer->Write(event)) return false;
    tokens_.fetch_add(1);
    return true;
  };

  GenerationResult result;
  try {
    result = engine_.Run(input, sink);
  } catch (const std::invalid_argument& e) {
    return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
  } catch (const std::exception& e) {
    spdlog::error("request {} failed in the engine: {}", input.request_id, e.what());
    return {grpc::StatusCode::INTERNAL, std::string("engine failure: ") + e.what()};
  }
  if (result.finish_reason == "cancelled") {
    return {grpc::StatusCode::CANCELLED, "request cancelled"};
  }

  v1::GenerateEvent done;
  done.mutable_done()->mutable_usage()->set_prompt_tokens(result.prompt_tokens);
  done.mutable_done()->mutable_usage()->set_completion_tokens(result.completion_tokens);
  done.mutable_done()->set_finish_reason(result.finish_reason);
  done.mutable_done()->set_prefill_ms(result.prefill_ms);
  writer->Write(done);
  served_.fetch_add(1);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Cancel(grpc::ServerContext* context,
                                       const v1::CancelRequest* request, v1::CancelResult* result) {
  if (auto s = auth::CheckBearer(*context, token_); !s.ok()) return s;
  std::lock_guard lock(mu_);
  const auto it = cancelled_.find(request->request_id());
  result->set_found(it != cancelled_.end());
  if (it != cancelled_.end()) it->second->store(true);
  return grpc::Status::OK;
}

}  // namespace tidelane::worker
