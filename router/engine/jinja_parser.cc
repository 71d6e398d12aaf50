#include "router/engine/jinja_parser.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "router/engine/jinja_builtins.h"
#include "router/engine/jinja_lexer.h"

namespace tidelane::engine::jinja {
namespace {

// Recursion bounds: how deeply brackets, unary operators and conditionals may nest in one
// expression, how tall an expression tree may grow (`a+b+c+...` grows it without recursing
// while parsing), and how deeply blocks may nest.
constexpr int kMaxNesting = 64;
constexpr int kMaxExprHeight = 256;
constexpr int kMaxBlockNesting = 64;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::unique_ptr<Template> Run() {
    auto tpl = std::make_unique<Template>();
    tpl->body = ParseBody({});
    return tpl;
  }

 private:
  // RAII nesting counter.
  class Nest {
   public:
    Nest(Parser* p, int* counter, int limit, const char* what) : counter_(counter) {
      if (++*counter_ > limit) p->Fail(std::string(what) + " nested too deeply");
    }
    ~Nest() { --*counter_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    int* counter_;
  };

  const Token& Cur() const { return t_[i_]; }
  const Token& Look() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  void Next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool IsOp(std::string_view op) const {
    return Cur().type == TokenType::kOperator && Cur().text == op;
  }
  bool IsName(std::string_view name) const {
    return Cur().type == TokenType::kName && Cur().text == name;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }

  static std::string Describe(const Token& t) {
    switch (t.type) {
      case TokenType::kText:
        return "template data";
      case TokenType::kVariableBegin:
        return "'{{'";
      case TokenType::kVariableEnd:
        return "end of print statement";
      case TokenType::kBlockBegin:
        return "'{%'";
      case TokenType::kBlockEnd:
        return "end of statement block";
      case TokenType::kName:
      case TokenType::kOperator:
        return "'" + t.text + "'";
      case TokenType::kString:
        return "string";
      case TokenType::kInteger:
        return "integer";
      case TokenType::kFloat:
        return "float";
      case TokenType::kEnd:
        return "end of template";
    }
    return "token";
  }
  [[noreturn]] void Fail(const std::string& message) const {
    throw TemplateError(message, Cur().pos);
  }
  [[noreturn]] void FailExpected(const std::string& what) const {
    Fail("expected " + what + ", got " + Describe(Cur()));
  }
  void ExpectOp(std::string_view op) {
    if (!SkipOp(op)) FailExpected("'" + std::string(op) + "'");
  }
  std::string ExpectName() {
    if (Cur().type != TokenType::kName) FailExpected("a name");
    std::string name = Cur().text;
    Next();
    return name;
  }
  void Expect(TokenType type, const char* what) {
    if (Cur().type != type) FailExpected(what);
    Next();
  }
  void ExpectBlockEnd() { Expect(TokenType::kBlockEnd, "end of statement block"); }

  ExprPtr Make(Expr::Kind kind, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  // Records the node's height (its children are finished already) and bounds it.
  static ExprPtr Finish(ExprPtr e) {
    int h = e->target ? e->target->height : 0;
    for (const auto& a : e->args) h = std::max(h, a ? a->height : 0);
    for (const auto& k : e->kwargs) h = std::max(h, k.value->height);
    e->height = h + 1;
    if (e->height > kMaxExprHeight) throw TemplateError("expression too complex", e->pos);
    return e;
  }

  // --- statements ---------------------------------------------------------------------------

  // Parses until `{% <one of end_tags>` (left as the current token) or the end of the template.
  Body ParseBody(std::initializer_list<std::string_view> end_tags) {
    Nest nest(this, &block_nesting_, kMaxBlockNesting, "blocks");
    Body body;
    while (true) {
      const Token& tok = Cur();
      if (tok.type == TokenType::kEnd) {
        if (end_tags.size() != 0) {
          std::string names;
          for (std::string_view t : end_tags)
            names += (names.empty() ? "'" : " or '") + std::string(t) + "'";
          Fail("unexpected end of template, expected " + names);
        }
        return body;
      }
      if (tok.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->pos = tok.pos;
        s->text = tok.text;
        body.push_back(std::move(s));
        Next();
      } else if (tok.type == TokenType::kVariableBegin) {
        Next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->pos = Cur().pos;
        s->expr = ParseTuple(true, false, {});
        Expect(TokenType::kVariableEnd, "end of print statement");
        body.push_back(std::move(s));
      } else if (tok.type == TokenType::kBlockBegin) {
        Next();
        if (Cur().type == TokenType::kName &&
            std::find(end_tags.begin(), end_tags.end(), Cur().text) != end_tags.end()) {
          return body;
        }
        ParseStatement(body);
        ExpectBlockEnd();
      } else {
        FailExpected("template data or a tag");
      }
    }
  }

  // After a statement's head: `%}` then the body up to one of end_tags; with drop, the end
  // tag's name is consumed (its `%}` is left for the caller, as jinja2 does).
  Body ParseStatements(std::initializer_list<std::string_view> end_tags, bool drop) {
    ExpectBlockEnd();
    Body body = ParseBody(end_tags);
    if (drop) Next();
    return body;
  }

  std::unique_ptr<Stmt> NewStmt(Stmt::Kind kind) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = Cur().pos;
    return s;
  }

  void ParseStatement(Body& out) {
    if (Cur().type != TokenType::kName) FailExpected("a tag name");
    const std::string tag = Cur().text;
    if (tag == "if") return out.push_back(ParseIf());
    if (tag == "for") return out.push_back(ParseFor());
    if (tag == "set") return out.push_back(ParseSet());
    if (tag == "macro") return out.push_back(ParseMacro());
    if (tag == "call") return out.push_back(ParseCallBlock());
    if (tag == "filter") return out.push_back(ParseFilterBlock());
    if (tag == "with") return out.push_back(ParseWith());
    if (tag == "print") {
      auto s = NewStmt(Stmt::Kind::kOutput);
      Next();
      s->expr = ParseTuple(true, false, {});
      return out.push_back(std::move(s));
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) Fail("'" + tag + "' outside loop");
      auto s = NewStmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue);
      Next();
      return out.push_back(std::move(s));
    }
    if (tag == "generation") {  // Hugging Face's AssistantTracker marker: just its body
      Next();
      Body body = ParseStatements({"endgeneration"}, true);
      for (auto& s : body) out.push_back(std::move(s));
      return;
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" ||
        tag == "from" || tag == "autoescape" || tag == "do") {
      Fail("tag '" + tag + "' is not supported in chat templates");
    }
    Fail("unknown tag '" + tag + "'");
  }

  std::unique_ptr<Stmt> ParseIf() {
    auto s = NewStmt(Stmt::Kind::kIf);
    Next();
    while (true) {
      s->conditions.push_back(ParseTuple(false, false, {}));
      s->bodies.push_back(ParseStatements({"elif", "else", "endif"}, false));
      const std::string end = Cur().text;
      Next();
      if (end == "elif") continue;
      if (end == "else") s->else_body = ParseStatements({"endif"}, true);
      return s;
    }
  }

  std::unique_ptr<Stmt> ParseFor() {
    auto s = NewStmt(Stmt::Kind::kFor);
    Next();
    s->target = ParseAssignTarget(false, {"in"});
    if (!SkipName("in")) FailExpected("'in'");
    s->expr = ParseTuple(false, false, {"recursive"});
    if (SkipName("if")) s->filter = ParseExpression(true);
    if (IsName("recursive")) Fail("recursive loops are not supported");
    ++loop_depth_;
    s->body = ParseStatements({"endfor", "else"}, false);
    --loop_depth_;
    const std::string end = Cur().text;
    Next();
    if (end == "else") s->else_body = ParseStatements({"endfor"}, true);
    return s;
  }

  std::unique_ptr<Stmt> ParseSet() {
    auto s = NewStmt(Stmt::Kind::kSet);
    Next();
    s->target = ParseAssignTarget(true, {});
    if (SkipOp("=")) {
      s->expr = ParseTuple(true, false, {});
      return s;
    }
    if (s->target.unpack || !s->target.attribute.empty()) Fail("a block set needs one name");
    s->kind = Stmt::Kind::kSetBlock;
    while (IsOp("|")) {
      Next();
      s->filters.push_back(ParseOneFilter(nullptr));
    }
    s->body = ParseStatements({"endset"}, true);
    return s;
  }

  // Macro and call-block signatures: (name, name=default, ...).
  void ParseSignature(Stmt* s) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      Param p;
      p.name = ExpectName();
      if (SkipOp("=")) {
        p.default_value = ParseExpression(true);
      } else if (!s->params.empty() && s->params.back().default_value) {
        Fail("non-default argument follows default argument");
      }
      s->params.push_back(std::move(p));
    }
    ExpectOp(")");
  }

  // A macro (or call block) body: its own scope for loop controls and for the names
  // varargs/kwargs/caller, whose use decides what the macro accepts.
  Body ParseMacroBody(Stmt* s, std::string_view end) {
    const int saved_loops = std::exchange(loop_depth_, 0);
    macro_stack_.push_back(s);
    Body body = ParseStatements({end}, true);
    macro_stack_.pop_back();
    loop_depth_ = saved_loops;
    return body;
  }

  std::unique_ptr<Stmt> ParseMacro() {
    auto s = NewStmt(Stmt::Kind::kMacro);
    Next();
    s->target.names.push_back(ExpectName());
    ParseSignature(s.get());
    s->body = ParseMacroBody(s.get(), "endmacro");
    return s;
  }

  std::unique_ptr<Stmt> ParseCallBlock() {
    auto s = NewStmt(Stmt::Kind::kCallBlock);
    Next();
    if (IsOp("(")) ParseSignature(s.get());
    s->expr = ParseExpression(true);
    if (s->expr->kind != Expr::Kind::kCall) Fail("expected a call after 'call'");
    s->body = ParseMacroBody(s.get(), "endcall");
    return s;
  }

  std::unique_ptr<Stmt> ParseFilterBlock() {
    auto s = NewStmt(Stmt::Kind::kFilterBlock);
    Next();
    s->filters.push_back(ParseOneFilter(nullptr));
    while (IsOp("|")) {
      Next();
      s->filters.push_back(ParseOneFilter(nullptr));
    }
    s->body = ParseStatements({"endfilter"}, true);
    return s;
  }

  std::unique_ptr<Stmt> ParseWith() {
    auto s = NewStmt(Stmt::Kind::kWith);
    Next();
    while (Cur().type != TokenType::kBlockEnd) {
      if (!s->names.empty()) ExpectOp(",");
      s->names.push_back(ExpectName());
      ExpectOp("=");
      s->conditions.push_back(ParseExpression(true));
    }
    s->body = ParseStatements({"endwith"}, true);
    return s;
  }

  // Names (`a` or `a, b` or `(a, b)`), or with with_namespace `ns.attr`.
  Target ParseAssignTarget(bool with_namespace, std::initializer_list<std::string_view> end) {
    Target target;
    if (with_namespace && Cur().type == TokenType::kName && Look().type == TokenType::kOperator &&
        Look().text == ".") {
      target.names.push_back(ExpectName());
      Next();
      target.attribute = ExpectName();
      return target;
    }
    const bool paren = SkipOp("(");
    while (true) {
      if (Cur().type != TokenType::kName) FailExpected("a name to assign to");
      const std::string& name = Cur().text;
      if (name == "true" || name == "false" || name == "none" || name == "True" ||
          name == "False" || name == "None") {
        Fail("can't assign to '" + name + "'");
      }
      target.names.push_back(name);
      Next();
      if (!IsOp(",")) break;
      Next();
      target.unpack = true;
      if (IsOp(")") || Cur().type == TokenType::kBlockEnd || IsOp("=")) break;
      bool at_end = false;
      for (std::string_view e : end) at_end = at_end || IsName(e);
      if (at_end) break;
    }
    if (paren) ExpectOp(")");
    return target;
  }

  // --- expressions --------------------------------------------------------------------------

  // jinja2's parse_tuple: one expression, or several separated by commas (a tuple).
  ExprPtr ParseTuple(bool with_condexpr, bool explicit_parens,
                     std::initializer_list<std::string_view> extra_end) {
    const Pos pos = Cur().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    const auto at_end = [&] {
      if (Cur().type == TokenType::kVariableEnd || Cur().type == TokenType::kBlockEnd ||
          IsOp(")")) {
        return true;
      }
      for (std::string_view e : extra_end) {
        if (IsName(e)) return true;
      }
      return false;
    };
    while (true) {
      if (!items.empty()) ExpectOp(",");
      if (at_end()) break;
      items.push_back(ParseExpression(with_condexpr));
      if (!IsOp(",")) break;
      is_tuple = true;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) FailExpected("an expression");
    }
    auto e = Make(Expr::Kind::kTuple, pos);
    e->args = std::move(items);
    return Finish(std::move(e));
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    Nest nest(this, &nesting_, kMaxNesting, "expressions");
    return with_condexpr ? ParseCondExpr() : ParseOr();
  }

  ExprPtr ParseCondExpr() {
    ExprPtr expr = ParseOr();
    while (IsName("if")) {
      auto cond = Make(Expr::Kind::kCond, Cur().pos);
      Next();
      ExprPtr test = ParseOr();
      ExprPtr otherwise;
      if (SkipName("else")) {
        Nest nest(this, &nesting_, kMaxNesting, "expressions");
        otherwise = ParseCondExpr();
      }
      cond->args.push_back(std::move(expr));
      cond->args.push_back(std::move(test));
      cond->args.push_back(std::move(otherwise));
      expr = Finish(std::move(cond));
    }
    return expr;
  }

  ExprPtr Binary(std::string op, Pos pos, ExprPtr lhs, ExprPtr rhs) {
    auto e = Make(Expr::Kind::kBinary, pos);
    e->name = std::move(op);
    e->target = std::move(lhs);
    e->args.push_back(std::move(rhs));
    return Finish(std::move(e));
  }

  ExprPtr ParseOr() {
    ExprPtr lhs = ParseAnd();
    while (IsName("or")) {
      const Pos pos = Cur().pos;
      Next();
      lhs = Binary("or", pos, std::move(lhs), ParseAnd());
    }
    return lhs;
  }

  ExprPtr ParseAnd() {
    ExprPtr lhs = ParseNot();
    while (IsName("and")) {
      const Pos pos = Cur().pos;
      Next();
      lhs = Binary("and", pos, std::move(lhs), ParseNot());
    }
    return lhs;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      Nest nest(this, &nesting_, kMaxNesting, "expressions");
      auto e = Make(Expr::Kind::kUnary, Cur().pos);
      Next();
      e->name = "not";
      e->target = ParseNot();
      return Finish(std::move(e));
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    const Pos pos = Cur().pos;
    ExprPtr first = ParseMath1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == TokenType::kOperator &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == "<=" ||
           Cur().text == ">" || Cur().text == ">=")) {
        op = Cur().text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Look().type == TokenType::kName && Look().text == "in") {
        op = "notin";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(Expr::Kind::kCompare, pos);
        cmp->target = std::move(first);
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(ParseMath1());
    }
    return cmp ? Finish(std::move(cmp)) : std::move(first);
  }

  ExprPtr ParseMath1() {
    ExprPtr lhs = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const std::string op = Cur().text;
      const Pos pos = Cur().pos;
      Next();
      lhs = Binary(op, pos, std::move(lhs), ParseConcat());
    }
    return lhs;
  }

  ExprPtr ParseConcat() {
    ExprPtr lhs = ParseMath2();
    while (IsOp("~")) {
      const Pos pos = Cur().pos;
      Next();
      lhs = Binary("~", pos, std::move(lhs), ParseMath2());
    }
    return lhs;
  }

  ExprPtr ParseMath2() {
    ExprPtr lhs = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const std::string op = Cur().text;
      const Pos pos = Cur().pos;
      Next();
      lhs = Binary(op, pos, std::move(lhs), ParsePow());
    }
    return lhs;
  }

  ExprPtr ParsePow() {
    ExprPtr lhs = ParseUnary(true);
    while (IsOp("**")) {
      const Pos pos = Cur().pos;
      Next();
      lhs = Binary("**", pos, std::move(lhs), ParseUnary(true));
    }
    return lhs;
  }

  ExprPtr ParseUnary(bool with_filter) {
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      Nest nest(this, &nesting_, kMaxNesting, "expressions");
      node = Make(Expr::Kind::kUnary, Cur().pos);
      node->name = Cur().text;
      Next();
      node->target = ParseUnary(false);
      node = Finish(std::move(node));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpr(std::move(node));
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& tok = Cur();
    ExprPtr e;
    switch (tok.type) {
      case TokenType::kName:
        e = Make(Expr::Kind::kLiteral, tok.pos);
        if (tok.text == "true" || tok.text == "True") {
          e->value = Value::Bool(true);
        } else if (tok.text == "false" || tok.text == "False") {
          e->value = Value::Bool(false);
        } else if (tok.text == "none" || tok.text == "None") {
          e->value = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = tok.text;
          if (!macro_stack_.empty()) {
            Stmt* m = macro_stack_.back();
            if (tok.text == "varargs") m->uses_varargs = true;
            if (tok.text == "kwargs") m->uses_kwargs = true;
            if (tok.text == "caller") m->uses_caller = true;
          }
        }
        Next();
        return e;
      case TokenType::kString: {
        e = Make(Expr::Kind::kLiteral, tok.pos);
        std::string s;
        while (Cur().type == TokenType::kString) {  // adjacent literals concatenate
          s += Cur().text;
          Next();
        }
        e->value = Value::String(std::move(s));
        return e;
      }
      case TokenType::kInteger:
        e = Make(Expr::Kind::kLiteral, tok.pos);
        e->value = Value::Int(tok.int_value);
        Next();
        return e;
      case TokenType::kFloat:
        e = Make(Expr::Kind::kLiteral, tok.pos);
        e->value = Value::Float(tok.float_value);
        Next();
        return e;
      case TokenType::kOperator:
        if (tok.text == "(") {
          Next();
          e = ParseTuple(true, true, {});
          ExpectOp(")");
          return e;
        }
        if (tok.text == "[") return ParseList();
        if (tok.text == "{") return ParseDict();
        break;
      default:
        break;
    }
    Fail("unexpected " + Describe(tok));
  }

  ExprPtr ParseList() {
    auto e = Make(Expr::Kind::kList, Cur().pos);
    ExpectOp("[");
    while (!IsOp("]")) {
      if (!e->args.empty()) ExpectOp(",");
      if (IsOp("]")) break;
      e->args.push_back(ParseExpression(true));
    }
    ExpectOp("]");
    return Finish(std::move(e));
  }

  ExprPtr ParseDict() {
    auto e = Make(Expr::Kind::kDict, Cur().pos);
    ExpectOp("{");
    while (!IsOp("}")) {
      if (!e->args.empty()) ExpectOp(",");
      if (IsOp("}")) break;
      e->args.push_back(ParseExpression(true));
      ExpectOp(":");
      e->args.push_back(ParseExpression(true));
    }
    ExpectOp("}");
    return Finish(std::move(e));
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".") || IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr node) {
    const Pos pos = Cur().pos;
    if (SkipOp(".")) {
      if (Cur().type == TokenType::kName) {
        auto e = Make(Expr::Kind::kAttr, pos);
        e->name = Cur().text;
        e->target = std::move(node);
        Next();
        return Finish(std::move(e));
      }
      if (Cur().type != TokenType::kInteger) FailExpected("a name or number after '.'");
      auto index = Make(Expr::Kind::kLiteral, Cur().pos);
      index->value = Value::Int(Cur().int_value);
      Next();
      auto e = Make(Expr::Kind::kItem, pos);
      e->target = std::move(node);
      e->args.push_back(std::move(index));
      return Finish(std::move(e));
    }
    ExpectOp("[");
    std::vector<ExprPtr> subs;
    while (!IsOp("]")) {
      if (!subs.empty()) ExpectOp(",");
      subs.push_back(ParseSubscribed());
    }
    ExpectOp("]");
    if (subs.empty()) Fail("expected a subscript");
    ExprPtr e;
    if (subs.size() == 1 && subs[0]->kind == Expr::Kind::kSlice) {
      e = std::move(subs[0]);  // the slice node carries its bounds in args
      e->pos = pos;
    } else {
      e = Make(Expr::Kind::kItem, pos);
      if (subs.size() == 1) {
        e->args.push_back(std::move(subs[0]));
      } else {
        for (const auto& sub : subs) {
          if (sub->kind == Expr::Kind::kSlice) {
            throw TemplateError("slices inside a tuple subscript are not supported", sub->pos);
          }
        }
        auto tuple = Make(Expr::Kind::kTuple, pos);
        tuple->args = std::move(subs);
        e->args.push_back(Finish(std::move(tuple)));
      }
    }
    e->target = std::move(node);
    return Finish(std::move(e));
  }

  // An index or a slice `start:stop:step` (each part optional).
  ExprPtr ParseSubscribed() {
    const Pos pos = Cur().pos;
    std::vector<ExprPtr> parts;
    if (IsOp(":")) {
      Next();
      parts.emplace_back();
    } else {
      ExprPtr node = ParseExpression(true);
      if (!IsOp(":")) return node;
      Next();
      parts.push_back(std::move(node));
    }
    const auto at_part_end = [&] { return IsOp("]") || IsOp(","); };
    if (IsOp(":") || at_part_end()) {
      parts.emplace_back();
    } else {
      parts.push_back(ParseExpression(true));
    }
    if (IsOp(":")) {
      Next();
      parts.push_back(at_part_end() ? nullptr : ParseExpression(true));
    } else {
      parts.emplace_back();
    }
    auto e = Make(Expr::Kind::kSlice, pos);
    e->args = std::move(parts);
    return Finish(std::move(e));
  }

  void ParseCallArgs(Expr* e) {
    ExpectOp("(");
    bool need_comma = false;
    while (!IsOp(")")) {
      if (need_comma) {
        ExpectOp(",");
        if (IsOp(")")) break;
      }
      if (IsOp("*") || IsOp("**")) Fail("*args and **kwargs in calls are not supported");
      if (Cur().type == TokenType::kName && Look().type == TokenType::kOperator &&
          Look().text == "=") {
        Keyword kw;
        kw.name = Cur().text;
        Next();
        Next();
        kw.value = ParseExpression(true);
        e->kwargs.push_back(std::move(kw));
      } else {
        if (!e->kwargs.empty()) Fail("positional argument follows keyword argument");
        e->args.push_back(ParseExpression(true));
      }
      need_comma = true;
    }
    ExpectOp(")");
  }

  ExprPtr ParseCall(ExprPtr node) {
    auto e = Make(Expr::Kind::kCall, Cur().pos);
    e->target = std::move(node);
    ParseCallArgs(e.get());
    return Finish(std::move(e));
  }

  // `| name(args)` after the pipe; target may be null (filter blocks, block sets).
  ExprPtr ParseOneFilter(ExprPtr target) {
    auto e = Make(Expr::Kind::kFilter, Cur().pos);
    e->name = ExpectName();
    while (SkipOp(".")) e->name += "." + ExpectName();
    if (!IsFilter(e->name)) throw TemplateError("no filter named '" + e->name + "'", e->pos);
    e->target = std::move(target);
    if (IsOp("(")) ParseCallArgs(e.get());
    return Finish(std::move(e));
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        Next();
        node = ParseOneFilter(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseTest(ExprPtr node) {
    const Pos pos = Cur().pos;
    Next();  // is
    const bool negated = SkipName("not");
    auto e = Make(Expr::Kind::kTest, Cur().pos);
    e->name = ExpectName();
    while (SkipOp(".")) e->name += "." + ExpectName();
    if (!IsTest(e->name)) throw TemplateError("no test named '" + e->name + "'", e->pos);
    e->target = std::move(node);
    const Token& c = Cur();
    if (IsOp("(")) {
      ParseCallArgs(e.get());
    } else if ((c.type == TokenType::kName || c.type == TokenType::kString ||
                c.type == TokenType::kInteger || c.type == TokenType::kFloat || IsOp("[") ||
                IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) Fail("you cannot chain multiple tests with is");
      e->args.push_back(ParsePostfix(ParsePrimary()));
    }
    ExprPtr result = Finish(std::move(e));
    if (negated) {
      auto n = Make(Expr::Kind::kUnary, pos);
      n->name = "not";
      n->target = std::move(result);
      result = Finish(std::move(n));
    }
    return result;
  }

  std::vector<Token> t_;
  std::size_t i_ = 0;
  int nesting_ = 0;
  int block_nesting_ = 0;
  int loop_depth_ = 0;
  std::vector<Stmt*> macro_stack_;
};

}  // namespace

std::unique_ptr<Template> ParseTemplate(std::string_view source) {
  return Parser(Tokenize(source)).Run();
}

}  // namespace tidelane::engine::jinja
