#include "router/worker/worker_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "router/proto/auth.h"

namespace tidelane::worker {

namespace {

std::int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

WorkerServiceImpl::WorkerServiceImpl(Engine& engine, std::string token,
                                     std::optional<ReceiptSigner> signer)
    : engine_(engine), token_(std::move(token)), signer_(std::move(signer)) {}

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

  const std::int64_t started_at_ms = UnixMs();
  std::vector<std::string> produced;  // what this worker computed, for its statement
  const auto sink = [&](std::uint32_t index, std::string_view text) {
    if (flag->load() || context->IsCancelled()) return false;
    v1::GenerateEvent event;
    event.mutable_token()->set_index(index);
    event.mutable_token()->set_text(std::string(text));
    if (!writer->Write(event)) return false;
    if (signer_) produced.emplace_back(text);
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
  if (signer_) {
    receipt::WorkerStatement st;
    st.request_id = input.request_id;
    st.worker_name = signer_->worker_name;
    st.model_kind = signer_->model_kind;
    st.model_id = signer_->model_id;
    st.model_sha256 = signer_->model_sha256;
    if (!result.prompt_sha256.empty()) {
      st.prompt_encoding = result.prompt_encoding;
      st.prompt_sha256 = result.prompt_sha256;
    } else {
      // No tokenizer (synthetic): the conversation itself is what was computed on, hashed
      // exactly as the router hashes the request, so the two can be compared.
      std::vector<std::string> parts;
      for (const auto& m : input.messages) {
        parts.push_back(m.role);
        parts.push_back(m.content);
      }
      st.prompt_encoding = "messages";
      st.prompt_sha256 = receipt::Sha256Strings(parts);
    }
    st.prompt_tokens = result.prompt_tokens;
    st.resumed_from_index = input.generated.size();
    st.resumed_prefix_sha256 = receipt::Sha256Strings(input.generated);
    st.output_to_index = input.generated.size() + produced.size();
    st.output_sha256 = receipt::Sha256Strings(produced);
    st.finish_reason = result.finish_reason;
    st.started_at_ms = started_at_ms;
    st.finished_at_ms = UnixMs();
    const auto signed_statement = receipt::SignWorkerStatement(std::move(st), signer_->identity);
    done.mutable_done()->set_statement(signed_statement.statement);
    done.mutable_done()->set_statement_signature(signed_statement.signature);
    done.mutable_done()->set_worker_public_key(signed_statement.public_key);
  }
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
