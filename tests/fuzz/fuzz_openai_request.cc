// Fuzz target: the OpenAI-compatible request parser must turn any body into either a
// ChatRequest within the limits or an ApiError with a message, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "router/server/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace openai = tidelane::server::openai;
  const openai::Limits limits{1 << 16, 4096};
  const auto result =
      openai::ParseChatRequest(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (const auto* ok = std::get_if<openai::ParsedRequest>(&result)) {
    if (ok->request.messages().empty() || ok->model.empty()) __builtin_trap();
    if (ok->request.sampling().max_tokens() > limits.max_tokens) __builtin_trap();
  } else if (std::get<openai::ApiError>(result).message.empty()) {
    __builtin_trap();
  }
  return 0;
}
