#include "router/engine/jinja_render.h"

#include <algorithm>
#include <ctime>
#include <memory>
#include <utility>
#include <vector>

#include "router/engine/jinja_builtins.h"
#include "router/engine/jinja_error.h"

namespace tidelane::engine::jinja {
namespace {

// Evaluation recursion bound (expressions, statements and calls together) and macro/caller
// call depth; the parser already bounds a template's own nesting, so these bound recursion
// through macros.
constexpr int kMaxDepth = 1000;
constexpr int kMaxCallDepth = 100;
constexpr std::int64_t kMaxRange = 100000;  // jinja2's sandbox refuses longer ranges too

struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* Find(std::string_view name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      for (const auto& [k, v] : s->vars) {
        if (k == name) return &v;
      }
    }
    return nullptr;
  }
  void Set(std::string_view name, Value value) {
    for (auto& [k, v] : vars) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(std::string(name), std::move(value));
  }
};

// The callables a render creates; all live in the renderer's arena until the render ends.
struct Callable : Object {
  enum class Which { kRange, kNamespace, kDict, kRaise, kStrftime, kMacro, kCaller, kCycle };
  Callable(Which w, std::string n) : Object(Kind::kCallable, std::move(n)), which(w) {}
  Which which;
  const Stmt* stmt = nullptr;  // macro or call block
  Scope* scope = nullptr;      // a caller's defining scope; null once its call block ended
  std::int64_t index = 0;      // a loop's current index0, for loop.cycle
};

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const Template& tpl, const RenderOptions& options) : tpl_(tpl), options_(options) {}

  std::string Run(const Value& context) {
    try {
      if (!context.is_dict()) throw TemplateError("the render context must be a mapping");
      if (context.depth() > kMaxValueDepth + 1) {
        throw TemplateError("the render context is nested too deeply");
      }
      Scope globals;
      for (auto [which, name] : {std::pair{Callable::Which::kRange, "range"},
                                 {Callable::Which::kNamespace, "namespace"},
                                 {Callable::Which::kDict, "dict"},
                                 {Callable::Which::kRaise, "raise_exception"},
                                 {Callable::Which::kStrftime, "strftime_now"}}) {
        globals.Set(name, Value::MakeObject(New(which, name)));
      }
      Scope root;
      root.parent = &globals;
      for (const auto& [k, v] : context.as_dict().items()) root.Set(k, v);
      // root_ points at this frame's scope only while it renders.
      struct Unset {
        Scope*& p;
        ~Unset() { p = nullptr; }
      } unset{root_};
      root_ = &root;
      std::string out;
      RenderBody(tpl_.body, root, out);
      return out;
    } catch (const TemplateError& e) {
      if (e.pos().line != 0) throw;
      throw TemplateError(e.message(), pos_);
    } catch (const std::bad_alloc&) {
      throw TemplateError("out of memory", pos_);
    }
  }

 private:
  class DepthGuard {
   public:
    explicit DepthGuard(Renderer* r) : r_(r) {
      if (++r_->depth_ > kMaxDepth) throw TemplateError("template recursion too deep", r_->pos_);
    }
    ~DepthGuard() { --r_->depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Renderer* r_;
  };

  [[noreturn]] void Fail(const std::string& message, Pos pos) { throw TemplateError(message, pos); }

  Callable* New(Callable::Which which, std::string name) {
    arena_.push_back(std::make_unique<Callable>(which, std::move(name)));
    return arena_.back().get();
  }

  void Charge(const Value& v) {
    std::int64_t cost = 1;
    if (v.is_string()) cost += static_cast<std::int64_t>(v.as_string().size());
    if (v.is_list()) cost += static_cast<std::int64_t>(v.as_list().size()) * 16;
    if (v.is_dict()) cost += static_cast<std::int64_t>(v.as_dict().size()) * 32;
    work_ += cost;
    if (work_ > options_.max_work_bytes) Fail("template does too much work", pos_);
  }

  void Append(std::string& out, std::string_view s) {
    if (out.size() + s.size() > options_.max_output_bytes) {
      Fail("output too large (over " + std::to_string(options_.max_output_bytes) + " bytes)", pos_);
    }
    out += s;
  }

  // --- statements ---------------------------------------------------------------------------

  Flow RenderBody(const Body& body, Scope& scope, std::string& out) {
    for (const auto& stmt : body) {
      const Flow flow = RenderStmt(*stmt, scope, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow RenderStmt(const Stmt& s, Scope& scope, std::string& out) {
    DepthGuard guard(this);
    switch (s.kind) {
      case Stmt::Kind::kText:
        Append(out, s.text);
        return Flow::kNormal;
      case Stmt::Kind::kOutput: {
        const Value v = Eval(*s.expr, scope);
        pos_ = s.pos;
        if (v.is_object() && v.as_object()->kind == Object::Kind::kCallable) {
          Append(out, "<function " + v.as_object()->name + ">");
        } else {
          Append(out, ToPython(v));
        }
        return Flow::kNormal;
      }
      case Stmt::Kind::kIf:
        for (std::size_t i = 0; i < s.conditions.size(); ++i) {
          if (Truthy(Eval(*s.conditions[i], scope))) return RenderBody(s.bodies[i], scope, out);
        }
        return RenderBody(s.else_body, scope, out);
      case Stmt::Kind::kFor:
        RenderFor(s, scope, out);
        return Flow::kNormal;
      case Stmt::Kind::kSet:
        Assign(s.target, Eval(*s.expr, scope), scope, s.pos);
        return Flow::kNormal;
      case Stmt::Kind::kSetBlock: {
        std::string text;
        RenderBody(s.body, scope, text);
        Value v = Value::String(std::move(text));
        for (const auto& f : s.filters) v = ApplyFilterExpr(*f, v, scope);
        Assign(s.target, std::move(v), scope, s.pos);
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro: {
        Callable* m = New(Callable::Which::kMacro, s.target.names[0]);
        m->stmt = &s;
        scope.Set(s.target.names[0], Value::MakeObject(m));
        return Flow::kNormal;
      }
      case Stmt::Kind::kCallBlock: {
        Callable* caller = New(Callable::Which::kCaller, "caller");
        caller->stmt = &s;
        caller->scope = &scope;
        const Expr& call = *s.expr;
        const Value callee = Eval(*call.target, scope);
        Args args = EvalArgs(call, scope);
        args.keywords.emplace_back("caller", Value::MakeObject(caller));
        pos_ = call.pos;
        const Value result = CallValue(callee, args, call);
        caller->scope = nullptr;  // the scope dies with this statement
        Append(out, ToPython(result));
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock: {
        std::string text;
        RenderBody(s.body, scope, text);
        Value v = Value::String(std::move(text));
        for (const auto& f : s.filters) v = ApplyFilterExpr(*f, v, scope);
        Append(out, ToPython(v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kWith: {
        Scope inner;
        inner.parent = &scope;
        for (std::size_t i = 0; i < s.names.size(); ++i) {
          inner.Set(s.names[i], Eval(*s.conditions[i], scope));
        }
        return RenderBody(s.body, inner, out);
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void Assign(const Target& target, Value value, Scope& scope, Pos pos) {
    pos_ = pos;
    if (!target.attribute.empty()) {
      const Value* ns = scope.Find(target.names[0]);
      if (ns == nullptr || !ns->is_object() || ns->as_object()->kind != Object::Kind::kNamespace) {
        Fail("cannot assign attribute on non-namespace object", pos);
      }
      CheckDepth(value);
      ns->as_object()->attributes.Set(target.attribute, std::move(value));
      return;
    }
    if (!target.unpack) {
      scope.Set(target.names[0], std::move(value));
      return;
    }
    const std::vector<Value> items = Iterate(value);
    if (items.size() != target.names.size()) {
      Fail(items.size() > target.names.size()
               ? "too many values to unpack (expected " + std::to_string(target.names.size()) + ")"
               : "not enough values to unpack (expected " + std::to_string(target.names.size()) +
                     ", got " + std::to_string(items.size()) + ")",
           pos);
    }
    for (std::size_t i = 0; i < items.size(); ++i) scope.Set(target.names[i], items[i]);
  }

  void RenderFor(const Stmt& s, Scope& scope, std::string& out) {
    const Value iterable = Eval(*s.expr, scope);
    pos_ = s.expr->pos;
    std::vector<Value> items = Iterate(iterable);
    if (s.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        CountIteration(s.pos);
        Scope probe;
        probe.parent = &scope;
        Assign(s.target, item, probe, s.pos);
        if (Truthy(Eval(*s.filter, probe))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Scope inner;
      inner.parent = &scope;
      RenderBody(s.else_body, inner, out);
      return;
    }
    Callable* cycle = New(Callable::Which::kCycle, "loop.cycle");
    const auto n = static_cast<std::int64_t>(items.size());
    for (std::int64_t i = 0; i < n; ++i) {
      CountIteration(s.pos);
      const auto k = static_cast<std::size_t>(i);
      Scope inner;
      inner.parent = &scope;
      Assign(s.target, items[k], inner, s.pos);
      cycle->index = i;
      Dict loop;
      loop.Set("index", Value::Int(i + 1));
      loop.Set("index0", Value::Int(i));
      loop.Set("revindex", Value::Int(n - i));
      loop.Set("revindex0", Value::Int(n - i - 1));
      loop.Set("first", Value::Bool(i == 0));
      loop.Set("last", Value::Bool(i == n - 1));
      loop.Set("length", Value::Int(n));
      loop.Set("depth", Value::Int(1));
      loop.Set("depth0", Value::Int(0));
      if (i > 0) loop.Set("previtem", items[k - 1]);
      if (i + 1 < n) loop.Set("nextitem", items[k + 1]);
      loop.Set("cycle", Value::MakeObject(cycle));
      inner.Set("loop", Value::MakeDict(std::move(loop)));
      if (RenderBody(s.body, inner, out) == Flow::kBreak) break;
    }
  }

  void CountIteration(Pos pos) {
    if (++iterations_ > options_.max_loop_iterations) {
      Fail("too many loop iterations (over " + std::to_string(options_.max_loop_iterations) + ")",
           pos);
    }
  }

  // --- expressions --------------------------------------------------------------------------

  Value Eval(const Expr& e, Scope& scope) {
    DepthGuard guard(this);
    Value v = EvalNode(e, scope);
    Charge(v);
    return v;
  }

  Args EvalArgs(const Expr& e, Scope& scope) {
    Args args;
    for (const auto& a : e.args) args.positional.push_back(Eval(*a, scope));
    for (const auto& k : e.kwargs) args.keywords.emplace_back(k.name, Eval(*k.value, scope));
    return args;
  }

  Value ApplyFilterExpr(const Expr& f, const Value& input, Scope& scope) {
    const Args args = EvalArgs(f, scope);
    pos_ = f.pos;
    Value v = ApplyFilter(f.name, input, args);
    if (v.is_string()) CheckSize(v.as_string().size());
    return v;
  }

  Value EvalNode(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName: {
        const Value* v = scope.Find(e.name);
        return v != nullptr ? *v : Value();
      }
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        std::vector<Value> items;
        for (const auto& a : e.args) items.push_back(Eval(*a, scope));
        pos_ = e.pos;
        Value v = Value::List(std::move(items), e.kind == Expr::Kind::kTuple);
        CheckDepth(v);
        return v;
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value key = Eval(*e.args[i], scope);
          if (!key.is_string()) Fail("dict keys must be strings here", e.args[i]->pos);
          d.Set(key.as_string(), Eval(*e.args[i + 1], scope));
        }
        pos_ = e.pos;
        Value v = Value::MakeDict(std::move(d));
        CheckDepth(v);
        return v;
      }
      case Expr::Kind::kAttr: {
        const Value obj = Eval(*e.target, scope);
        pos_ = e.pos;
        if (obj.is_undefined()) UndefinedUse(*e.target, "has no attribute '" + e.name + "'");
        return GetAttr(obj, e.name);
      }
      case Expr::Kind::kItem: {
        const Value obj = Eval(*e.target, scope);
        const Value key = Eval(*e.args[0], scope);
        pos_ = e.pos;
        if (obj.is_undefined()) UndefinedUse(*e.target, "cannot be indexed");
        return GetItem(obj, key);
      }
      case Expr::Kind::kSlice: {
        const Value obj = Eval(*e.target, scope);
        Value bounds[3];
        for (int i = 0; i < 3; ++i) {
          if (e.args[static_cast<std::size_t>(i)]) {
            bounds[i] = Eval(*e.args[static_cast<std::size_t>(i)], scope);
          }
        }
        pos_ = e.pos;
        if (obj.is_undefined()) UndefinedUse(*e.target, "cannot be sliced");
        return Slice(obj, bounds[0], bounds[1], bounds[2]);
      }
      case Expr::Kind::kCall:
        return EvalCall(e, scope);
      case Expr::Kind::kFilter: {
        const Value input = Eval(*e.target, scope);
        return ApplyFilterExpr(e, input, scope);
      }
      case Expr::Kind::kTest: {
        const Value input = Eval(*e.target, scope);
        const Args args = EvalArgs(e, scope);
        pos_ = e.pos;
        return Value::Bool(ApplyTest(e.name, input, args));
      }
      case Expr::Kind::kUnary: {
        const Value v = Eval(*e.target, scope);
        pos_ = e.pos;
        if (e.name == "not") return Value::Bool(!Truthy(v));
        if (!v.is_number()) {
          if (v.is_undefined()) UndefinedUse(*e.target, "used with unary '" + e.name + "'");
          Fail("bad operand type for unary " + e.name + ": '" + std::string(TypeName(v)) + "'",
               e.pos);
        }
        if (e.name == "+") return v.is_bool() ? Value::Int(v.as_int()) : v;
        if (v.is_float()) return Value::Float(-v.as_float());
        return BinaryOp("-", Value::Int(0), v);
      }
      case Expr::Kind::kBinary: {
        Value lhs = Eval(*e.target, scope);
        if (e.name == "and") return Truthy(lhs) ? Eval(*e.args[0], scope) : lhs;
        if (e.name == "or") return Truthy(lhs) ? lhs : Eval(*e.args[0], scope);
        const Value rhs = Eval(*e.args[0], scope);
        pos_ = e.pos;
        if (e.name != "~") {
          if (lhs.is_undefined()) UndefinedUse(*e.target, "used with '" + e.name + "'");
          if (rhs.is_undefined()) UndefinedUse(*e.args[0], "used with '" + e.name + "'");
        }
        return BinaryOp(e.name, lhs, rhs);
      }
      case Expr::Kind::kCompare: {
        Value lhs = Eval(*e.target, scope);
        for (std::size_t i = 0; i < e.ops.size(); ++i) {
          Value rhs = Eval(*e.args[i], scope);
          pos_ = e.pos;
          const std::string& op = e.ops[i];
          bool ok = false;
          if (op == "==") {
            ok = Equals(lhs, rhs);
          } else if (op == "!=") {
            ok = !Equals(lhs, rhs);
          } else if (op == "<") {
            ok = Less(lhs, rhs);
          } else if (op == "<=") {
            ok = Less(lhs, rhs) || Equals(lhs, rhs);
          } else if (op == ">") {
            ok = Less(rhs, lhs);
          } else if (op == ">=") {
            ok = Less(rhs, lhs) || Equals(lhs, rhs);
          } else if (op == "in") {
            ok = Contains(rhs, lhs);
          } else {
            ok = !Contains(rhs, lhs);
          }
          if (!ok) return Value::Bool(false);
          lhs = std::move(rhs);
        }
        return Value::Bool(true);
      }
      case Expr::Kind::kCond:
        if (Truthy(Eval(*e.args[1], scope))) return Eval(*e.args[0], scope);
        return e.args[2] ? Eval(*e.args[2], scope) : Value();
    }
    return Value();
  }

  // Using an undefined value where jinja2's Undefined raises: name it as jinja2 does.
  [[noreturn]] void UndefinedUse(const Expr& what, const std::string& problem) {
    if (what.kind == Expr::Kind::kName) Fail("'" + what.name + "' is undefined", what.pos);
    if (what.kind == Expr::Kind::kAttr) {
      Fail("undefined value (attribute '" + what.name + "') " + problem, what.pos);
    }
    Fail("undefined value " + problem, what.pos);
  }

  Value EvalCall(const Expr& e, Scope& scope) {
    // `obj.method(...)` on a str, dict or list calls the Python method of that name.
    if (e.target->kind == Expr::Kind::kAttr) {
      const Value obj = Eval(*e.target->target, scope);
      if (HasMethod(obj, e.target->name)) {
        const Args args = EvalArgs(e, scope);
        pos_ = e.pos;
        return CallMethod(obj, e.target->name, args);
      }
      pos_ = e.target->pos;
      if (obj.is_undefined())
        UndefinedUse(*e.target->target, "has no attribute '" + e.target->name + "'");
      const Value callee = GetAttr(obj, e.target->name);
      const Args args = EvalArgs(e, scope);
      pos_ = e.pos;
      return CallValue(callee, args, e);
    }
    const Value callee = Eval(*e.target, scope);
    const Args args = EvalArgs(e, scope);
    pos_ = e.pos;
    return CallValue(callee, args, e);
  }

  Value CallValue(const Value& callee, const Args& args, const Expr& call) {
    if (!callee.is_object() || callee.as_object()->kind != Object::Kind::kCallable) {
      if (callee.is_undefined()) UndefinedUse(*call.target, "is not callable");
      std::string message(1, '\'');
      message.append(TypeName(callee)).append("' object is not callable");
      Fail(message, call.pos);
    }
    auto& fn = static_cast<Callable&>(*callee.as_object());
    switch (fn.which) {
      case Callable::Which::kRange:
        return Range(args, call.pos);
      case Callable::Which::kNamespace:
      case Callable::Which::kDict: {
        Dict attrs;
        if (args.positional.size() > 1)
          Fail(fn.name + "() takes at most one positional argument", call.pos);
        if (!args.positional.empty()) {
          if (!args.positional[0].is_dict())
            Fail(fn.name + "() argument must be a mapping", call.pos);
          attrs = args.positional[0].as_dict();
        }
        for (const auto& [k, v] : args.keywords) attrs.Set(k, v);
        if (fn.which == Callable::Which::kDict) return Value::MakeDict(std::move(attrs));
        Callable* ns = New(Callable::Which::kNamespace, "namespace");
        ns->kind = Object::Kind::kNamespace;
        ns->attributes = std::move(attrs);
        return Value::MakeObject(ns);
      }
      case Callable::Which::kRaise:
        if (args.positional.size() != 1 || !args.keywords.empty()) {
          Fail("raise_exception() takes exactly one argument", call.pos);
        }
        Fail(ToPython(args.positional[0]), call.pos);
      case Callable::Which::kStrftime:
        return Strftime(args, call.pos);
      case Callable::Which::kCycle: {
        if (args.positional.empty()) Fail("no items for cycling given", call.pos);
        const auto n = static_cast<std::int64_t>(args.positional.size());
        return args.positional[static_cast<std::size_t>(fn.index % n)];
      }
      case Callable::Which::kMacro:
      case Callable::Which::kCaller:
        return CallMacro(fn, args, call.pos);
    }
    return Value();
  }

  Value Range(const Args& args, Pos pos) {
    if (!args.keywords.empty() || args.positional.empty() || args.positional.size() > 3) {
      Fail("range() takes 1 to 3 integer arguments", pos);
    }
    std::int64_t v[3] = {0, 0, 1};
    for (std::size_t i = 0; i < args.positional.size(); ++i) {
      const Value& a = args.positional[i];
      if (!a.is_int() && !a.is_bool()) Fail("range() arguments must be integers", pos);
      v[i] = a.as_int();
    }
    if (args.positional.size() == 1) std::swap(v[0], v[1]);
    const std::int64_t start = v[0], stop = v[1], step = v[2];
    if (step == 0) Fail("range() arg 3 must not be zero", pos);
    // Length in unsigned arithmetic, which cannot overflow for any int64 bounds.
    const bool up = step > 0;
    std::uint64_t len = 0;
    if (up ? stop > start : start > stop) {
      const std::uint64_t span =
          up ? static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start)
             : static_cast<std::uint64_t>(start) - static_cast<std::uint64_t>(stop);
      const std::uint64_t abs_step =
          up ? static_cast<std::uint64_t>(step) : 0 - static_cast<std::uint64_t>(step);
      len = span / abs_step + (span % abs_step != 0 ? 1 : 0);
    }
    if (len > static_cast<std::uint64_t>(kMaxRange)) {
      Fail("range too big (over " + std::to_string(kMaxRange) + " items)", pos);
    }
    std::vector<Value> items;
    for (std::uint64_t i = 0; i < len; ++i) {  // unsigned: no overflow past the last item
      items.push_back(Value::Int(static_cast<std::int64_t>(static_cast<std::uint64_t>(start) +
                                                           i * static_cast<std::uint64_t>(step))));
    }
    return Value::List(std::move(items));
  }

  Value Strftime(const Args& args, Pos pos) {
    if (args.positional.size() != 1 || !args.positional[0].is_string() || !args.keywords.empty()) {
      Fail("strftime_now() takes one format string", pos);
    }
    const std::string& fmt = args.positional[0].as_string();
    if (fmt.size() > 256) Fail("strftime_now() format too long", pos);
    const std::time_t now = options_.now_unix_seconds
                                ? static_cast<std::time_t>(*options_.now_unix_seconds)
                                : std::time(nullptr);
    std::tm tm{};
    if (localtime_r(&now, &tm) == nullptr) Fail("strftime_now(): time out of range", pos);
    char buf[4096];
    const std::size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
    return Value::String(std::string(buf, n));
  }

  Value CallMacro(Callable& fn, const Args& args, Pos pos) {
    if (call_depth_ >= kMaxCallDepth) Fail("macro recursion too deep", pos);
    const Stmt& m = *fn.stmt;
    Scope scope;
    if (fn.which == Callable::Which::kCaller) {
      if (fn.scope == nullptr) Fail("caller() used after its call block ended", pos);
      scope.parent = fn.scope;
    } else {
      scope.parent = root_;
    }
    std::vector<bool> given(m.params.size(), false);
    std::vector<Value> extra_positional;
    for (std::size_t i = 0; i < args.positional.size(); ++i) {
      if (i < m.params.size()) {
        scope.Set(m.params[i].name, args.positional[i]);
        given[i] = true;
      } else {
        extra_positional.push_back(args.positional[i]);
      }
    }
    Dict extra_keywords;
    for (const auto& [k, v] : args.keywords) {
      const std::string& key = k;  // clang before 16 cannot capture a structured binding
      const auto it = std::find_if(m.params.begin(), m.params.end(),
                                   [&](const Param& p) { return p.name == key; });
      if (it != m.params.end()) {
        const auto i = static_cast<std::size_t>(it - m.params.begin());
        if (given[i])
          Fail("macro '" + fn.name + "' got multiple values for argument '" + k + "'", pos);
        scope.Set(k, v);
        given[i] = true;
      } else if (k == "caller" && m.uses_caller) {
        scope.Set("caller", v);
      } else if (m.uses_kwargs) {
        extra_keywords.Set(k, v);
      } else {
        Fail("macro '" + fn.name + "' takes no keyword argument '" + k + "'", pos);
      }
    }
    if (!extra_positional.empty() && !m.uses_varargs) {
      Fail("macro '" + fn.name + "' takes not more than " + std::to_string(m.params.size()) +
               " argument(s)",
           pos);
    }
    for (std::size_t i = 0; i < m.params.size(); ++i) {
      if (given[i]) continue;
      scope.Set(m.params[i].name,
                m.params[i].default_value ? Eval(*m.params[i].default_value, scope) : Value());
    }
    if (m.uses_varargs) scope.Set("varargs", Value::List(std::move(extra_positional), true));
    if (m.uses_kwargs) scope.Set("kwargs", Value::MakeDict(std::move(extra_keywords)));
    ++call_depth_;
    std::string out;
    RenderBody(m.body, scope, out);
    --call_depth_;
    return Value::String(std::move(out));
  }

  const Template& tpl_;
  const RenderOptions& options_;
  std::vector<std::unique_ptr<Callable>> arena_;
  Scope* root_ = nullptr;
  Pos pos_;
  int depth_ = 0;
  int call_depth_ = 0;
  std::int64_t iterations_ = 0;
  std::int64_t work_ = 0;
};

}  // namespace

std::string Render(const Template& tpl, const Value& context, const RenderOptions& options) {
  return Renderer(tpl, options).Run(context);
}

}  // namespace tidelane::engine::jinja
