// Fuzz target: any template text must parse and render (with a small fixed conversation) to
// either output or an error with a message — never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "router/engine/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace engine = tidelane::engine;
  const auto tpl =
      engine::ChatTemplate::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!tpl.ok()) {
    if (tpl.error().empty()) __builtin_trap();
    return 0;
  }
  engine::ChatTemplateInput input;
  input.messages = {{"system", "Be brief.", {}},
                    {"user", " Hi \u00e9\u4f60 ", {}},
                    {"assistant", std::nullopt, {}},
                    {"tool", "{\"t\": 1}", {}}};
  input.bos_token = "<s>";
  input.eos_token = "</s>";
  input.now_unix_seconds = 0;
  engine::jinja::RenderOptions options;
  options.now_unix_seconds = 0;
  options.max_loop_iterations = 100000;  // keep each input fast; the limits are the same code
  options.max_work_bytes = 64 << 20;
  const auto out = tpl->Render(engine::BuildChatContext(input), options);
  if (out.ok() ? out->size() > options.max_output_bytes : out.error().empty()) __builtin_trap();
  return 0;
}
