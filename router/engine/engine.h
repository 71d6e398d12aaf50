// Engine: runs a Model over many sequences at once. Each Forward call appends tokens to any
// number of sequences — a long prompt to one, a single token to each of many others — in one
// pass whose matrix products cover every token of every sequence (continuous batching), and
// returns their next-token logits. Sequences can be exported with their KV cache and imported
// into another Engine that loads the same model, which continues them exactly (the router's
// prefill/decode split and failover move contexts this way).
//
// Errors: Load fails with a message for a file that is not a usable model. Forward fails,
// changing nothing, for an unknown sequence, a token outside the vocabulary, a sequence that
// would pass the model's context, or a KV pool too full for the whole batch (the caller may
// retry with fewer sequences). Import fails for a blob from another model or a corrupt one.
//
// KV type: the cache holds keys and values as F16 (the default, as llama.cpp's) or F32. F16
// halves the memory a long context takes and the bytes each decode step reads, for logits
// within ~1e-3 (relative) of F32's (tests/python/engine_reference_test.py says how far). An
// export records its type; Import converts a blob of the other type (F16 -> F32 exactly,
// F32 -> F16 rounded to nearest), so contexts still move between engines configured
// differently, but only a same-type import continues token for token as the exporting engine
// would have: the converted cache is not the one this engine would have computed itself.
//
// Threading: an Engine is driven by one thread at a time (the worker's batch loop or a
// command-line tool); it parallelises each pass internally over its own ThreadPool.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "router/engine/backend.h"
#include "router/engine/kv_cache.h"
#include "router/engine/model.h"
#include "router/engine/result.h"
#include "router/engine/thread_pool.h"

namespace tidelane::engine {

struct EngineOptions {
  int threads = 1;
  // KV positions shared by all sequences; 0 = the model's context length, at least 4 096.
  std::size_t kv_positions = 0;
  std::size_t block_tokens = 16;
  std::string backend = "cpu";    // see backend.h
  KvType kv_type = KvType::kF16;  // the cache's element type (see above)
  // Where the model file's bytes live (gguf.h): read into 2 MiB pages, so that decoding, which
  // streams every weight each step, is not slowed by a TLB miss per 4 KiB (a model too large
  // to copy is mapped anyway: PlacementFor); kMapped to share the page cache's copy between
  // processes or start sooner.
  Placement weights = Placement::kHugePages;
  // In that private copy, Q4_K matrices interleaved by 16 rows where the CPU has AVX512-VNNI
  // (Model::Load; the cpu backend only): faster batch-1 products, bitwise the same results.
  bool interleave_q4k = true;
};

using SequenceId = std::uint32_t;

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Load(const std::filesystem::path& model,
                                              const EngineOptions& options);
  Engine(std::unique_ptr<Model> model, const EngineOptions& options);
  ~Engine();

  const Model& model() const { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  int threads() const { return pool_.size(); }
  std::string_view backend() const { return backend_->Name(); }
  // Whether passes run whole on the backend's device (backend.h's DeviceForward: the CUDA
  // backend, unless TIDELANE_CUDA_FORWARD=0), with the KV bytes there too; else the engine runs
  // the pass and the backend only multiplies. A device backend whose whole pass declined this
  // model or cache (a head over 256 dimensions, a KV pool larger than the free device memory)
  // falls back to the latter; device_declined() then says why (Load also prints it on stderr),
  // and is empty otherwise.
  bool forward_on_device() const { return device_ != nullptr; }
  const std::string& device_declined() const { return device_declined_; }
  KvType kv_type() const { return kv_.type(); }

  // Sequences. NewSequence never fails (it takes no KV until tokens arrive).
  SequenceId NewSequence();
  void FreeSequence(SequenceId id);
  bool HasSequence(SequenceId id) const { return seqs_.count(id) != 0; }
  // The tokens a sequence holds (its KV covers exactly these).
  const std::vector<std::int32_t>& Tokens(SequenceId id) const;
  // Forgets positions from `length` on (regenerate, edit), keeping the shared prefix's KV.
  void Truncate(SequenceId id, std::size_t length);
  std::size_t FreeKvPositions() const { return kv_.free_blocks() * kv_.block_tokens(); }

  struct Step {
    SequenceId sequence = 0;
    std::span<const std::int32_t> tokens;
    bool all_logits = false;  // logits for every new position, not only the last
  };
  // Appends every step's tokens in one pass. Returns, per step, the logits of its last token
  // (vocab floats) or of all its tokens (tokens × vocab) when all_logits is set.
  Result<std::vector<std::vector<float>>> Forward(std::span<const Step> steps);

  // A self-describing blob: the model's identity, the KV type, the tokens and their keys and
  // values (in that type).
  Result<std::vector<std::uint8_t>> Export(SequenceId id) const;
  Result<SequenceId> Import(std::span<const std::uint8_t> blob);

 private:
  struct Sequence {
    std::vector<std::int32_t> tokens;
    KvCache::Blocks blocks;
  };
  struct Scratch;

  // cos_sin: the position's rope_dims / 2 cosines then as many sines (RopeAngles).
  void Rope(float* v, std::size_t heads, const float* cos_sin) const;
  void RopeAngles(std::size_t pos, float* cos_sin) const;
  void Attention(std::size_t layer, std::span<const Step> steps,
                 std::span<const std::size_t> row_step, std::span<const std::size_t> row_pos);
  std::uint64_t Fingerprint() const;
  // Moves `logits` (the wanted rows' vocab floats, in step order) into per-step results and
  // appends every step's tokens to its sequence: the end of a successful pass.
  std::vector<std::vector<float>> Commit(std::span<const Step> steps,
                                         const std::vector<float>& logits);

  // The device-resident pass (engine_device.cc). AttachDevice takes the backend's
  // DeviceForward when there is one and TIDELANE_CUDA_FORWARD is not "0"; ForwardOnDevice runs
  // a validated pass whose blocks are reserved; CopyDeviceKv moves a sequence's whole blocks
  // between the device pool and the host cache's storage (Export reads, Import writes there).
  Status AttachDevice();
  Result<std::vector<std::vector<float>>> ForwardOnDevice(std::span<const Step> steps);
  void CopyDeviceKv(const KvCache::Blocks& blocks, bool upload) const;

  std::unique_ptr<Model> model_;
  ThreadPool pool_;
  std::unique_ptr<Backend> backend_;
  DeviceForward* device_ = nullptr;  // backend_'s, when passes run on the device
  std::string device_declined_;      // why backend_'s DeviceForward declined, if it did
  // With device_, only block bookkeeping and Export/Import staging: the KV bytes of record are
  // the device's.
  KvCache kv_;
  std::unordered_map<SequenceId, Sequence> seqs_;
  SequenceId next_id_ = 1;
  std::vector<float> inv_freq_;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace tidelane::engine
