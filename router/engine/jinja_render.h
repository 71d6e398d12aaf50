// Renders a parsed template against a context, as jinja2 3.1 does in Hugging Face's sandboxed
// environment: jinja2's scoping (a `set` inside a for loop stays in that iteration; namespaces
// carry values out), its default Undefined, loop variables, macros and call blocks, and the
// globals range, namespace, dict, raise_exception and strftime_now.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "router/engine/jinja_ast.h"
#include "router/engine/jinja_value.h"

namespace tidelane::engine::jinja {

struct RenderOptions {
  // The time strftime_now formats (seconds since the epoch, shown in the local time zone, as
  // Python's datetime.now() is); unset means the current time.
  std::optional<std::int64_t> now_unix_seconds;
  // Bounds that turn a runaway template into an error instead of a hang or an exhausted
  // machine: the output (and any string built on the way), loop iterations over the whole
  // render, and the total bytes of values computed (so quadratic string building stops).
  std::size_t max_output_bytes = 16u << 20;
  std::int64_t max_loop_iterations = 1'000'000;
  std::int64_t max_work_bytes = std::int64_t{1} << 30;
};

// `context` must be a dict; its keys become the template's variables. Throws TemplateError with
// the position of the failing expression. Thread-safe for distinct calls on one Template.
std::string Render(const Template& tpl, const Value& context, const RenderOptions& options);

}  // namespace tidelane::engine::jinja
