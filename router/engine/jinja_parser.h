// Parser for the Jinja subset: jinja2 3.1's grammar (its operator precedence, filters binding
// tighter than arithmetic, implicit tuples, `a if c else b`, slices, keyword arguments) and the
// statements chat templates use: if/elif/else, for (with `if` filter, tuple targets and else),
// set (plain, tuple, `ns.attr`, block), macro, call, filter, with, break/continue, raw, and
// Hugging Face's `{% generation %}` marker (rendered as its body).
#pragma once

#include <memory>
#include <string_view>

#include "router/engine/jinja_ast.h"

namespace tidelane::engine::jinja {

// Throws TemplateError with the position of the offending token: syntax errors, unknown tags,
// filters and tests (as jinja2 reports them when compiling), `break` outside a loop, and
// nesting deeper than the parser allows (which keeps rendering's recursion bounded).
std::unique_ptr<Template> ParseTemplate(std::string_view source);

}  // namespace tidelane::engine::jinja
