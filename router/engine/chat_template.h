// ChatTemplate: turns a conversation into the prompt text a model was trained on, by rendering
// the model's chat template (the Jinja source in GGUF metadata `tokenizer.chat_template`, or
// Hugging Face's tokenizer_config.json) exactly as Hugging Face transformers does: jinja2 3.1
// in a sandbox with trim_blocks and lstrip_blocks, the loopcontrols extension, a tojson that
// keeps non-ASCII text (json.dumps with ensure_ascii=False), and the globals raise_exception
// and strftime_now. The output is byte-for-byte what transformers' apply_chat_template prints
// for the same input; tests/python/chat_template_test.py checks that against jinja2 itself.
//
// Supported: the Jinja subset chat templates use (statements in jinja_parser.h; filters, tests
// and methods in jinja_builtins.cc). Not supported: template inheritance and includes,
// `{% do %}`, recursive loops, dicts with non-string keys, and case mapping outside Latin,
// Greek and Cyrillic letters.
//
// Errors: Parse fails on a syntax error, an unknown tag, filter or test, or nesting too deep;
// Render fails when the template raises (raise_exception, e.g. a model that rejects a system
// message), on a type error (adding a number to a string, reading an attribute of an undefined
// value), or when a limit is hit (output, loop iterations, recursion). Every error is a
// Result error "LINE:COLUMN: message" pointing into the template source; nothing throws and
// no input can crash or hang the process.
//
// Ownership and threading: a ChatTemplate owns its parsed form and shares it between copies;
// it is immutable, and Render may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/engine/jinja_render.h"
#include "router/engine/jinja_value.h"
#include "router/engine/result.h"

namespace tidelane::engine {

namespace jinja {
struct Template;
}

struct ChatMessage {
  std::string role;                    // "system", "user", "assistant", "tool", ...
  std::optional<std::string> content;  // nullopt renders as None (an assistant's tool call)
  // Other keys of the message as the template sees them: a dict such as
  // {"tool_calls": [...], "tool_call_id": "...", "name": "..."}; undefined for none.
  jinja::Value fields;
};

struct ChatTemplateInput {
  std::vector<ChatMessage> messages;
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  // Tool schemas (a list of dicts, OpenAI's "tools"); undefined means none, which is passed as
  // None as transformers does (so `tools is defined` holds and `tools is none` too).
  jinja::Value tools;
  // More variables (e.g. date_string, tools_in_user_message): a dict, or undefined.
  jinja::Value extra_context;
  // The time strftime_now formats; unset means now. Tests fix it.
  std::optional<std::int64_t> now_unix_seconds;
};

class ChatTemplate {
 public:
  // Parses `source` (the template text; newlines are normalised as jinja2 does).
  static Result<ChatTemplate> Parse(std::string_view source);

  // Builds the context transformers builds (messages, tools, documents=None,
  // add_generation_prompt, bos_token, eos_token, then extra_context) and renders it.
  Result<std::string> Render(const ChatTemplateInput& input) const;
  // Renders with a context the caller built; it must be a dict.
  Result<std::string> Render(const jinja::Value& context,
                             const jinja::RenderOptions& options = {}) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const jinja::Template> tpl) : tpl_(std::move(tpl)) {}
  std::shared_ptr<const jinja::Template> tpl_;
};

// The context ChatTemplate::Render(input) renders; exposed so that callers and tests can
// inspect or extend it.
jinja::Value BuildChatContext(const ChatTemplateInput& input);

}  // namespace tidelane::engine
