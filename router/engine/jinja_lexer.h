// Tokenizer for the Jinja subset, following jinja2 3.1's lexer rule for rule with the settings
// Hugging Face renders chat templates with (trim_blocks, lstrip_blocks, no
// keep_trailing_newline): newlines normalised to "\n" and one trailing newline dropped,
// whitespace control with `-` and `+`, `{% raw %}`, comments, and the balanced-bracket rule that
// lets `}}` appear inside a dict literal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "router/engine/jinja_error.h"

namespace tidelane::engine::jinja {

enum class TokenType : std::uint8_t {
  kText,           // template data between tags (text holds it)
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,           // identifier (text)
  kString,         // string literal, unescaped (text)
  kInteger,        // int_value
  kFloat,          // float_value
  kOperator,       // text: "+", "//", "==", "(", ...
  kEnd,            // end of the template
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string text;
  std::int64_t int_value = 0;
  double float_value = 0;
  Pos pos;
};

// Throws TemplateError (with the position) on an unterminated tag, comment, raw block or
// string, an unknown character, unbalanced brackets, or a bad escape or number.
std::vector<Token> Tokenize(std::string_view source);

}  // namespace tidelane::engine::jinja
