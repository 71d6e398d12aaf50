// WorkerServiceImpl: the gRPC face of an Engine. Every call must carry the bearer token.
//
// Threading: gRPC calls handlers from its own thread pool; the engine is thread-safe and
// the cancel table is guarded by a mutex.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "router/receipt/receipt.h"
#include "router/worker/engine.h"
#include "tidelane/v1/worker.grpc.pb.h"

namespace tidelane::worker {

// Who signs this worker's statements, and the model they are about (fixed at load).
struct ReceiptSigner {
  receipt::Identity identity;
  std::string worker_name;  // the node name the router knows this worker by
  std::string model_kind;   // "gguf" or "synthetic" (see router/receipt/README.md)
  std::string model_id;
  std::string model_sha256;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // `engine` must outlive the service. With a `signer`, every GenerateDone carries a signed
  // statement of what this worker computed; without one, none (the router then gives no
  // receipt).
  WorkerServiceImpl(Engine& engine, std::string token,
                    std::optional<ReceiptSigner> signer = std::nullopt);

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateEvent>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::CancelRequest* request,
                      v1::CancelResult* result) override;
  // The split (worker.proto): PrefillKv streams the first token, then the engine's handoff in
  // chunks of kKvChunkBytes; DecodeKv takes one whole (at most kMaxKvBytes) and continues.
  grpc::Status PrefillKv(grpc::ServerContext* context, const v1::GenerateRequest* request,
                         grpc::ServerWriter<v1::PrefillEvent>* writer) override;
  grpc::Status DecodeKv(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::GenerateEvent, v1::DecodeInput>* stream) override;

  static constexpr std::size_t kKvChunkBytes = 1 << 20;
  // A bound on what one DecodeKv call may make this worker hold in memory.
  static constexpr std::uint64_t kMaxKvBytes = 8ull << 30;

  // Requests served to completion since start.
  std::uint64_t ServedTotal() const { return served_.load(); }
  // Output tokens streamed since start.
  std::uint64_t TokensTotal() const { return tokens_.load(); }

 private:
  class Running;
  // GenerateDone for a request this worker finished, with its signed statement when it has
  // an identity: it produced `produced` after input.generated.
  v1::GenerateDone DoneOf(const GenerationInput& input, const GenerationResult& result,
                          const std::vector<std::string>& produced,
                          std::int64_t started_at_ms) const;

  Engine& engine_;
  const std::string token_;
  const std::optional<ReceiptSigner> signer_;
  std::atomic<std::uint64_t> served_{0};
  std::atomic<std::uint64_t> tokens_{0};
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<std::atomic<bool>>> cancelled_;
};

}  // namespace tidelane::worker
