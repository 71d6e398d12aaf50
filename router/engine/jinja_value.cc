#include "router/engine/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "router/engine/jinja_text.h"

namespace tidelane::engine::jinja {

const Value* Dict::Find(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::Set(std::string key, Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(value));
}

Value Value::List(std::vector<Value> items, bool tuple) {
  auto data = std::make_shared<detail::ListData>();
  for (const Value& v : items) data->depth = std::max(data->depth, v.depth() + 1);
  data->items = std::move(items);
  data->tuple = tuple;
  return Value(Storage(std::in_place_index<6>, std::move(data)));
}

Value Value::MakeDict(Dict dict) {
  auto data = std::make_shared<detail::DictData>();
  for (const auto& item : dict.items())
    data->depth = std::max(data->depth, item.second.depth() + 1);
  data->dict = std::move(dict);
  return Value(Storage(std::in_place_index<7>, std::move(data)));
}

double Value::as_float() const {
  if (is_float()) return std::get<4>(v_);
  return static_cast<double>(as_int());
}

int Value::depth() const {
  if (is_list()) return std::get<6>(v_)->depth;
  if (is_dict()) return std::get<7>(v_)->depth;
  return 0;
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_float() != 0.0;
    case Value::Kind::kString:
      return !v.as_string().empty();
    case Value::Kind::kList:
      return !v.as_list().empty();
    case Value::Kind::kDict:
      return v.as_dict().size() != 0;
    case Value::Kind::kObject:
      return true;
  }
  return false;
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view s(buf, static_cast<std::size_t>(res.ptr - buf));
  std::string out;
  if (s.front() == '-') {
    out += '-';
    s.remove_prefix(1);
  }
  const std::size_t e = s.find('e');
  std::string digits;
  for (char c : s.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::from_chars(s.data() + e + 1 + (s[e + 1] == '+' ? 1 : 0), s.data() + s.size(), exp);
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += '.' + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += ebuf;
  } else if (exp >= 0) {
    const auto int_digits = static_cast<std::size_t>(exp) + 1;
    if (digits.size() <= int_digits) {
      out += digits + std::string(int_digits - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, int_digits) + '.' + digits.substr(int_digits);
    }
  } else {
    out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
  }
  return out;
}

namespace {

constexpr int kMaxReprDepth = 200;  // namespaces can contain themselves; print "..." instead

void ReprString(std::string& out, std::string_view s) {
  const bool single = s.find('\'') != std::string_view::npos;
  const bool dbl = s.find('"') != std::string_view::npos;
  const char quote = single && !dbl ? '"' : '\'';
  out += quote;
  char esc[16];
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (cp == static_cast<unsigned char>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (len == 1 && cp >= 0x80) {
      out += s[i];  // not UTF-8: Python strings cannot hold this; pass the byte through
    } else if (IsPrintable(cp)) {
      out.append(s.substr(i, len));
    } else {
      if (cp <= 0xFF) {
        std::snprintf(esc, sizeof(esc), "\\x%02x", static_cast<unsigned>(cp));
      } else if (cp <= 0xFFFF) {
        std::snprintf(esc, sizeof(esc), "\\u%04x", static_cast<unsigned>(cp));
      } else {
        std::snprintf(esc, sizeof(esc), "\\U%08x", static_cast<unsigned>(cp));
      }
      out += esc;
    }
    i += len;
  }
  out += quote;
}

void ReprTo(std::string& out, const Value& v, int depth) {
  if (depth > kMaxReprDepth) {
    out += "...";
    return;
  }
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      out += "Undefined";
      return;
    case Value::Kind::kString:
      ReprString(out, v.as_string());
      return;
    case Value::Kind::kList: {
      const auto& items = v.as_list();
      out += v.is_tuple() ? '(' : '[';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        ReprTo(out, items[i], depth + 1);
      }
      if (v.is_tuple() && items.size() == 1) out += ',';
      out += v.is_tuple() ? ')' : ']';
      return;
    }
    case Value::Kind::kDict: {
      out += '{';
      bool first = true;
      for (const auto& [k, val] : v.as_dict().items()) {
        if (!first) out += ", ";
        first = false;
        ReprString(out, k);
        out += ": ";
        ReprTo(out, val, depth + 1);
      }
      out += '}';
      return;
    }
    case Value::Kind::kObject: {
      const Object& o = *v.as_object();
      if (o.kind == Object::Kind::kNamespace) {
        out += "<Namespace ";
        ReprTo(out, Value::MakeDict(o.attributes), depth + 1);
        out += '>';
      } else {
        out += "<function " + o.name + '>';
      }
      return;
    }
    default:
      out += ToPython(v);
      return;
  }
}

}  // namespace

std::string ToPython(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return FloatRepr(v.as_float());
    case Value::Kind::kString:
      return v.as_string();
    default:
      return Repr(v);
  }
}

std::string Repr(const Value& v) {
  std::string out;
  ReprTo(out, v, 0);
  return out;
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!Equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* other = y.Find(k);
        if (other == nullptr || !Equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject:
      return a.as_object() == b.as_object();
    default:
      return false;
  }
}

std::string_view TypeName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kObject:
      return v.as_object()->kind == Object::Kind::kNamespace ? "Namespace" : "function";
  }
  return "object";
}

}  // namespace tidelane::engine::jinja
