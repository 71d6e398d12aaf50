// KV handoff blobs: what the engine of a prefill worker hands to the engine of a decode worker
// (through the router, which streams it in chunks without looking inside). The blob binds the
// KV cache to the request it belongs to, so a decode worker refuses a cache from another
// engine, model, request or prompt instead of continuing someone else's conversation, and
// carries the engine state that must travel with the cache for the answer to continue exactly
// as it would have on one node (the sampled token not yet in the cache, the sampler's draws).
//
// Layout (little-endian): "TLHO", u32 version, then engine, model, request id and prompt hash
// as u32 length + bytes, u32 prompt_prefix, u32 resume_index, i32 next_token, u64
// sampler_draws, u64 length + the KV bytes, and last the SHA-256 (hex) of everything before
// it, so any corruption in transit is caught before a byte is imported.
//
// Errors: UnpackHandoff and CheckHandoff throw KvHandoffError (engine.h) saying what is wrong.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "router/worker/engine.h"

namespace tidelane::worker {

struct HandoffHeader {
  std::string engine;  // Engine::Kind() of the prefill engine
  std::string model;   // Engine::Model()
  std::string request_id;
  std::string prompt_sha256;  // what the cache holds (token ids, or the messages: synthetic)
  // How many of GenerationInput::generated the prefill engine took into its prompt (a request
  // resumed after a failure re-prefills what was said before).
  std::uint32_t prompt_prefix = 0;
  std::uint32_t resume_index = 0;   // generated.size() after prefill: where decoding continues
  std::int32_t next_token = -1;     // sampled by the prefill engine, not yet in the cache
  std::uint64_t sampler_draws = 0;  // random draws its sampler made, so decode continues them
};

std::string PackHandoff(const HandoffHeader& header, std::span<const std::uint8_t> kv);

struct UnpackedHandoff {
  HandoffHeader header;
  std::span<const std::uint8_t> kv;  // points into the blob given to UnpackHandoff
};
// Parses and checks the format and checksum (KvHandoffError::kCorrupt).
UnpackedHandoff UnpackHandoff(std::string_view blob);

// Checks that `header` is for this engine and model and for `input` (same request, decoding
// continuing where the prefill stopped): kForeign or kCorrupt otherwise.
void CheckHandoff(const HandoffHeader& header, std::string_view engine, std::string_view model,
                  const GenerationInput& input);

}  // namespace tidelane::worker
