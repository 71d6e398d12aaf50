// jinja2's builtin filters and tests, the str/dict methods templates call, and the values'
// operators, each with Python's semantics. They throw TemplateError (without a position; the
// renderer adds the one of the expression it was evaluating).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "router/engine/jinja_ast.h"
#include "router/engine/jinja_value.h"

namespace tidelane::engine::jinja {

// Largest string or list any operation may build; a template that wants more fails instead.
inline constexpr std::size_t kMaxStringBytes = 16u << 20;
inline constexpr std::size_t kMaxListItems = 1u << 20;
// Deepest list/dict nesting a value may have (printing and freeing recurse that deep).
inline constexpr int kMaxValueDepth = 128;

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

bool IsFilter(std::string_view name);
bool IsTest(std::string_view name);
Value ApplyFilter(std::string_view name, const Value& value, const Args& args);
bool ApplyTest(std::string_view name, const Value& value, const Args& args);

// `value.name` where value's Python type has a method of that name (str and dict methods).
bool HasMethod(const Value& value, std::string_view name);
Value CallMethod(const Value& self, std::string_view name, const Args& args);

// Operators with Python's semantics: op is one of + - * / // % ** ~.
Value BinaryOp(std::string_view op, const Value& a, const Value& b);
// Python's <, <=, >, >=; throws TypeError-like errors for unorderable types.
bool Less(const Value& a, const Value& b);
bool Contains(const Value& container, const Value& item);  // `item in container`

// Attribute and subscript lookups as jinja2's environment does them: a missing key, index or
// attribute gives undefined; only reading from undefined itself is an error.
Value GetAttr(const Value& obj, std::string_view name);
Value GetItem(const Value& obj, const Value& key);
Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Iterating: lists and tuples give their items, dicts their keys, strings their characters,
// undefined nothing; anything else is an error.
std::vector<Value> Iterate(const Value& v);

// json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=...) — the
// tojson Hugging Face installs. indent: none, an int or a string.
std::string ToJson(const Value& v, const Value& indent, const Value& separators, bool sort_keys);

// Throws if the string would exceed kMaxStringBytes.
void CheckSize(std::size_t bytes);
// Throws if a value nests deeper than kMaxValueDepth.
void CheckDepth(const Value& v);

}  // namespace tidelane::engine::jinja
