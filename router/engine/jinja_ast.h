// The syntax tree of a parsed template. Built once by ParseTemplate and then only read, so one
// tree can be rendered by many threads at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "router/engine/jinja_error.h"
#include "router/engine/jinja_value.h"

namespace tidelane::engine::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kList,     // args: the items
    kTuple,    // args: the items
    kDict,     // args: key, value, key, value, ...
    kAttr,     // target.name
    kItem,     // target[args[0]]
    kSlice,    // target[args[0]:args[1]:args[2]] (null where omitted)
    kCall,     // target(args, kwargs)
    kFilter,   // target | name(args, kwargs); target is null in a {% filter %} block
    kTest,     // target is name(args, kwargs)
    kUnary,    // op target: op is "-", "+" or "not"
    kBinary,   // target op args[0]: arithmetic, "~", "and", "or"
    kCompare,  // target ops[0] args[0] ops[1] args[1] ...: ==, !=, <, <=, >, >=, in, notin
    kCond,     // args[0] if args[1] else args[2] (args[2] null: undefined)
  };
  Kind kind = Kind::kLiteral;
  Pos pos;
  int height = 1;  // of this subtree; the parser bounds it, which bounds evaluation's recursion
  Value value;
  std::string name;  // name, attribute, filter or test name, or operator
  ExprPtr target;
  std::vector<ExprPtr> args;
  std::vector<Keyword> kwargs;
  std::vector<std::string> ops;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

// Where `for` and `set` store: names (several for tuple unpacking), or `ns.attr`.
struct Target {
  std::vector<std::string> names;
  bool unpack = false;    // a tuple target: `a, b` (even with one name: `a,`)
  std::string attribute;  // non-empty for `set ns.attr`, names[0] being the namespace
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // conditions[i] -> bodies[i]; else_body
    kFor,          // for target in expr [if filter]: body; else_body
    kSet,          // set target = expr
    kSetBlock,     // set target: body rendered, then filters applied
    kMacro,        // macro name(params): body
    kCallBlock,    // call(params) expr: body is the caller
    kFilterBlock,  // filter filters: body
    kWith,         // with target[i] = values[i]: body
    kBreak,
    kContinue,
  };
  Kind kind = Kind::kText;
  Pos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;  // for's `if`
  Target target;
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<ExprPtr> filters;  // kFilterBlock and kSetBlock: applied in order
  std::vector<Param> params;
  std::vector<std::string> names;  // kWith: assigned names, values in conditions
  bool uses_varargs = false;       // macro body mentions `varargs` / `kwargs` / `caller`
  bool uses_kwargs = false;
  bool uses_caller = false;
};

struct Template {
  Body body;
};

}  // namespace tidelane::engine::jinja
