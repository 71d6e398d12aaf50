// Where a template went wrong. The lexer, parser and renderer throw TemplateError internally
// (their recursive structure makes that the clear way to unwind); ChatTemplate catches it at
// its boundary and returns it as a Result error, so no exception leaves the engine.
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace tidelane::engine::jinja {

// 1-based line and column (in bytes) in the template source; line 0 means "not known".
struct Pos {
  int line = 0;
  int column = 0;
};

class TemplateError : public std::exception {
 public:
  explicit TemplateError(std::string message, Pos pos = {})
      : message_(std::move(message)), pos_(pos) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }
  Pos pos() const { return pos_; }

 private:
  std::string message_;
  Pos pos_;
};

}  // namespace tidelane::engine::jinja
