// Fuzz target: the router's protobuf front door. Bytes off the wire are parsed as each message
// a client or a worker sends (ChatRequest, ResumeRequest, WorkerMessage, SetNodeStateRequest),
// and a parsed ChatRequest goes through the same validation every front door applies: any
// input is refused with a reason or accepted within the limits, never a crash.
#include <cstddef>
#include <cstdint>

#include "router/server/chat_pipeline.h"
#include "tidelane/v1/chat.pb.h"
#include "tidelane/v1/monitor.pb.h"
#include "tidelane/v1/registry.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace v1 = tidelane::v1;
  const tidelane::server::RouterConfig config;
  v1::ChatRequest chat;
  if (chat.ParseFromArray(data, static_cast<int>(size))) {
    const auto problem = tidelane::server::ValidateChatRequest(chat, config);
    if (problem.empty()) {
      std::size_t bytes = 0;
      for (const auto& m : chat.messages()) bytes += m.content().size();
      if (chat.messages().empty() || bytes > config.max_prompt_bytes) __builtin_trap();
    }
  }
  v1::ResumeRequest resume;
  (void)resume.ParseFromArray(data, static_cast<int>(size));
  v1::WorkerMessage worker;
  if (worker.ParseFromArray(data, static_cast<int>(size)) && worker.has_register_()) {
    (void)worker.register_().ShortDebugString();
  }
  v1::SetNodeStateRequest state;
  (void)state.ParseFromArray(data, static_cast<int>(size));
  return 0;
}
