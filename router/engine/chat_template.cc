#include "router/engine/chat_template.h"

#include <new>
#include <utility>

#include "router/engine/jinja_ast.h"
#include "router/engine/jinja_error.h"
#include "router/engine/jinja_parser.h"

namespace tidelane::engine {
namespace {

Error ToError(const jinja::TemplateError& e) {
  if (e.pos().line == 0) return Error{e.message()};
  return Error{std::to_string(e.pos().line) + ":" + std::to_string(e.pos().column) + ": " +
               e.message()};
}

}  // namespace

Result<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  try {
    return ChatTemplate(jinja::ParseTemplate(source));
  } catch (const jinja::TemplateError& e) {
    return ToError(e);
  } catch (const std::bad_alloc&) {
    return Error{"out of memory parsing the chat template"};
  }
}

Result<std::string> ChatTemplate::Render(const jinja::Value& context,
                                         const jinja::RenderOptions& options) const {
  try {
    return jinja::Render(*tpl_, context, options);
  } catch (const jinja::TemplateError& e) {
    return ToError(e);
  } catch (const std::bad_alloc&) {
    return Error{"out of memory rendering the chat template"};
  }
}

Result<std::string> ChatTemplate::Render(const ChatTemplateInput& input) const {
  jinja::RenderOptions options;
  options.now_unix_seconds = input.now_unix_seconds;
  return Render(BuildChatContext(input), options);
}

jinja::Value BuildChatContext(const ChatTemplateInput& input) {
  using jinja::Value;
  std::vector<Value> messages;
  messages.reserve(input.messages.size());
  for (const ChatMessage& m : input.messages) {
    jinja::Dict d;
    d.Set("role", Value::String(m.role));
    d.Set("content", m.content ? Value::String(*m.content) : Value::None());
    if (m.fields.is_dict()) {
      for (const auto& [k, v] : m.fields.as_dict().items()) d.Set(k, v);
    }
    messages.push_back(Value::MakeDict(std::move(d)));
  }
  jinja::Dict ctx;
  ctx.Set("messages", Value::List(std::move(messages)));
  ctx.Set("tools", input.tools.is_undefined() ? Value::None() : input.tools);
  ctx.Set("documents", Value::None());
  ctx.Set("add_generation_prompt", Value::Bool(input.add_generation_prompt));
  ctx.Set("bos_token", Value::String(input.bos_token));
  ctx.Set("eos_token", Value::String(input.eos_token));
  if (input.extra_context.is_dict()) {
    for (const auto& [k, v] : input.extra_context.as_dict().items()) ctx.Set(k, v);
  }
  return Value::MakeDict(std::move(ctx));
}

}  // namespace tidelane::engine
