#include "router/worker/worker_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
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

namespace {

GenerationInput InputOf(const v1::GenerateRequest& request) {
  GenerationInput input;
  input.request_id = request.request_id();
  for (const auto& m : request.messages()) input.messages.push_back({m.role(), m.content()});
  input.max_tokens = request.sampling().max_tokens();
  input.temperature = request.sampling().temperature();
  input.seed = request.sampling().seed();
  input.generated.assign(request.generated().begin(), request.generated().end());
  return input;
}

// What an engine's exception means to the caller.
grpc::Status StatusOf(const std::string& request_id, const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const KvHandoffError& e) {
    spdlog::warn("request {}: {}", request_id, e.what());
    switch (e.kind()) {
      case KvHandoffError::Kind::kCorrupt:
        return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
      case KvHandoffError::Kind::kForeign:
        return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
      case KvHandoffError::Kind::kNoRoom:
        return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()};
    }
    return {grpc::StatusCode::INTERNAL, e.what()};
  } catch (const std::invalid_argument& e) {
    return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
  } catch (const std::logic_error& e) {
    return {grpc::StatusCode::UNIMPLEMENTED, e.what()};
  } catch (const std::exception& e) {
    spdlog::error("request {} failed in the engine: {}", request_id, e.what());
    return {grpc::StatusCode::INTERNAL, std::string("engine failure: ") + e.what()};
  }
}

}  // namespace

// While a request runs here, Cancel can reach it by id; one request id runs once at a time.
class WorkerServiceImpl::Running {
 public:
  Running(WorkerServiceImpl& service, std::string id, const grpc::ServerContext& context)
      : service_(service), id_(std::move(id)), context_(context) {
    std::lock_guard lock(service_.mu_);
    registered_ = service_.cancelled_.emplace(id_, flag_).second;
  }
  ~Running() {
    if (!registered_) return;
    std::lock_guard lock(service_.mu_);
    service_.cancelled_.erase(id_);
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;
  bool registered() const { return registered_; }
  bool cancelled() const { return flag_->load(); }
  // Whether to stop: Cancel reached the request, or its caller went away.
  bool stopped() const { return cancelled() || context_.IsCancelled(); }
  // stopped() for GenerationInput::cancelled (this Running outlives the engine call).
  std::function<bool()> StopCheck() const {
    return [this] { return stopped(); };
  }
  grpc::Status AlreadyRunning() const {
    return {grpc::StatusCode::ALREADY_EXISTS, "request " + id_ + " is already running here"};
  }

 private:
  WorkerServiceImpl& service_;
  std::string id_;
  const grpc::ServerContext& context_;
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
  bool registered_ = false;
};

v1::GenerateDone WorkerServiceImpl::DoneOf(const GenerationInput& input,
                                           const GenerationResult& result,
                                           const std::vector<std::string>& produced,
                                           std::int64_t started_at_ms) const {
  v1::GenerateDone done;
  done.mutable_usage()->set_prompt_tokens(result.prompt_tokens);
  done.mutable_usage()->set_completion_tokens(result.completion_tokens);
  done.set_finish_reason(result.finish_reason);
  done.set_prefill_ms(result.prefill_ms);
  if (!signer_) return done;
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
  done.set_statement(signed_statement.statement);
  done.set_statement_signature(signed_statement.signature);
  done.set_worker_public_key(signed_statement.public_key);
  return done;
}

grpc::Status WorkerServiceImpl::Generate(grpc::ServerContext* context,
                                         const v1::GenerateRequest* request,
                                         grpc::ServerWriter<v1::GenerateEvent>* writer) {
  if (auto s = auth::CheckBearer(*context, token_); !s.ok()) return s;
  if (request->request_id().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "request_id is required"};
  }
  GenerationInput input = InputOf(*request);
  Running running(*this, input.request_id, *context);
  input.cancelled = running.StopCheck();
  if (!running.registered()) return running.AlreadyRunning();

  const std::int64_t started_at_ms = UnixMs();
  std::vector<std::string> produced;  // what this worker computed, for its statement
  const auto sink = [&](std::uint32_t index, std::string_view text) {
    if (running.stopped()) return false;
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
  } catch (...) {
    return StatusOf(input.request_id, std::current_exception());
  }
  if (result.finish_reason == "cancelled") {
    return {grpc::StatusCode::CANCELLED, "request cancelled"};
  }
  v1::GenerateEvent done;
  *done.mutable_done() = DoneOf(input, result, produced, started_at_ms);
  writer->Write(done);
  served_.fetch_add(1);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::PrefillKv(grpc::ServerContext* context,
                                          const v1::GenerateRequest* request,
                                          grpc::ServerWriter<v1::PrefillEvent>* writer) {
  if (auto s = auth::CheckBearer(*context, token_); !s.ok()) return s;
  if (request->request_id().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "request_id is required"};
  }
  if (!engine_.SupportsHandoff()) {
    return {grpc::StatusCode::UNIMPLEMENTED,
            std::string(engine_.Kind()) + " engines cannot split prefill from decode"};
  }
  GenerationInput input = InputOf(*request);
  Running running(*this, input.request_id, *context);
  input.cancelled = running.StopCheck();
  if (!running.registered()) return running.AlreadyRunning();

  const std::int64_t started_at_ms = UnixMs();
  std::vector<std::string> produced;
  // The first token goes out the moment it is sampled, before the cache is packed.
  const auto sink = [&](std::uint32_t index, std::string_view text) {
    if (running.stopped()) return false;
    v1::PrefillEvent event;
    event.mutable_token()->set_index(index);
    event.mutable_token()->set_text(std::string(text));
    if (!writer->Write(event)) return false;
    produced.emplace_back(text);
    tokens_.fetch_add(1);
    return true;
  };
  PrefillOutput out;
  try {
    out = engine_.Prefill(input, sink);
  } catch (...) {
    return StatusOf(input.request_id, std::current_exception());
  }
  if (out.result.finish_reason == "cancelled" || running.cancelled()) {
    return {grpc::StatusCode::CANCELLED, "request cancelled"};
  }
  if (out.handoff.empty()) {
    // The answer ended here (end of text, max_tokens): this worker finished it and signs.
    v1::PrefillEvent done;
    *done.mutable_done() = DoneOf(input, out.result, produced, started_at_ms);
    writer->Write(done);
    served_.fetch_add(1);
    return grpc::Status::OK;
  }
  v1::PrefillEvent head;
  head.mutable_head()->set_kv_bytes(out.handoff.size());
  head.mutable_head()->set_prompt_tokens(out.result.prompt_tokens);
  head.mutable_head()->set_prefill_ms(out.result.prefill_ms);
  head.mutable_head()->set_format(std::string(engine_.Kind()));
  if (!writer->Write(head)) return {grpc::StatusCode::CANCELLED, "the router went away"};
  const std::string_view blob = out.handoff;
  for (std::size_t at = 0; at < blob.size(); at += kKvChunkBytes) {
    if (running.stopped()) {
      return {grpc::StatusCode::CANCELLED, "request cancelled"};
    }
    v1::PrefillEvent chunk;
    chunk.mutable_kv()->set_offset(at);
    chunk.mutable_kv()->set_data(std::string(blob.substr(at, kKvChunkBytes)));
    if (!writer->Write(chunk)) return {grpc::StatusCode::CANCELLED, "the router went away"};
  }
  served_.fetch_add(1);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::DecodeKv(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::GenerateEvent, v1::DecodeInput>* stream) {
  if (auto s = auth::CheckBearer(*context, token_); !s.ok()) return s;
  if (!engine_.SupportsHandoff()) {
    return {grpc::StatusCode::UNIMPLEMENTED,
            std::string(engine_.Kind()) + " engines cannot split prefill from decode"};
  }
  v1::DecodeInput first;
  if (!stream->Read(&first)) return {grpc::StatusCode::CANCELLED, "no input"};
  if (!first.has_start() || first.start().request().request_id().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "the first message must be DecodeStart with a request_id"};
  }
  const v1::DecodeStart& start = first.start();
  const std::uint64_t expected = start.head().kv_bytes();
  if (expected == 0 || expected > kMaxKvBytes) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "a KV handoff of " + std::to_string(expected) +
                                                    " bytes is not accepted (at most " +
                                                    std::to_string(kMaxKvBytes) + ")"};
  }
  if (start.head().format() != engine_.Kind()) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "the KV handoff is from a " + start.head().format() + " engine; this worker runs " +
                std::string(engine_.Kind())};
  }
  GenerationInput input = InputOf(start.request());
  Running running(*this, input.request_id, *context);
  input.cancelled = running.StopCheck();
  if (!running.registered()) return running.AlreadyRunning();

  // The whole cache arrives before it is imported; chunks must come in order, no gaps.
  std::string blob;
  blob.reserve(expected);
  v1::DecodeInput in;
  while (blob.size() < expected && stream->Read(&in)) {
    if (!in.has_kv() || in.kv().offset() != blob.size() ||
        in.kv().data().size() > expected - blob.size()) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "KV chunk out of order or past the announced size at byte " +
                  std::to_string(blob.size())};
    }
    blob += in.kv().data();
  }
  if (blob.size() < expected) {
    if (context->IsCancelled()) return {grpc::StatusCode::CANCELLED, "request cancelled"};
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "the KV upload from " + start.prefill_node() + " ended at byte " +
                std::to_string(blob.size()) + " of " + std::to_string(expected)};
  }

  const std::int64_t started_at_ms = UnixMs();
  std::vector<std::string> produced;
  const auto sink = [&](std::uint32_t index, std::string_view text) {
    if (running.stopped()) return false;
    v1::GenerateEvent event;
    event.mutable_token()->set_index(index);
    event.mutable_token()->set_text(std::string(text));
    if (!stream->Write(event)) return false;
    if (signer_) produced.emplace_back(text);
    tokens_.fetch_add(1);
    return true;
  };
  GenerationResult result;
  try {
    result = engine_.Decode(input, blob, sink);
  } catch (...) {
    return StatusOf(input.request_id, std::current_exception());
  }
  if (result.finish_reason == "cancelled") {
    return {grpc::StatusCode::CANCELLED, "request cancelled"};
  }
  v1::GenerateEvent done;
  *done.mutable_done() = DoneOf(input, result, produced, started_at_ms);
  stream->Write(done);
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
