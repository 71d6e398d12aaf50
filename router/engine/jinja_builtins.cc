#include "router/engine/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <optional>

#include "router/engine/jinja_error.h"
#include "router/engine/jinja_text.h"

namespace tidelane::engine::jinja {
namespace {

[[noreturn]] void Fail(std::string message) {
  throw TemplateError(std::move(message));
}

std::string Quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// Checks a builtin's arguments against its Python signature (names in positional order) and
// returns the argument for each name (nullptr where not given).
std::vector<const Value*> Bind(std::string_view what, const Args& args,
                               std::initializer_list<std::string_view> names) {
  if (args.positional.size() > names.size()) {
    Fail(std::string(what) + " takes at most " + std::to_string(names.size()) + " arguments (" +
         std::to_string(args.positional.size()) + " given)");
  }
  std::vector<const Value*> bound(names.size(), nullptr);
  for (std::size_t i = 0; i < args.positional.size(); ++i) bound[i] = &args.positional[i];
  for (const auto& [name, value] : args.keywords) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) Fail(std::string(what) + " got an unexpected argument " + Quoted(name));
    const auto i = static_cast<std::size_t>(it - names.begin());
    if (bound[i] != nullptr) Fail(std::string(what) + " got multiple values for " + Quoted(name));
    bound[i] = &value;
  }
  return bound;
}

Value Or(const Value* v, Value fallback) {
  if (v != nullptr) return *v;
  return fallback;
}

std::int64_t ToIndex(const Value* v, std::string_view what, std::int64_t fallback) {
  if (v == nullptr || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) Fail(std::string(what) + " must be an integer");
  return v->as_int();
}

std::string Str(const Value& v) {
  return ToPython(v);
}

const std::string& NeedString(const Value& v, std::string_view what) {
  if (!v.is_string()) {
    Fail(std::string(what) + " expects a string, not " + std::string(TypeName(v)));
  }
  return v.as_string();
}

Value MakeList(std::vector<Value> items, bool tuple = false) {
  if (items.size() > kMaxListItems) Fail("list too long");
  Value v = Value::List(std::move(items), tuple);
  CheckDepth(v);
  return v;
}

std::size_t Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return CharCount(v.as_string());
    case Value::Kind::kList:
      return v.as_list().size();
    case Value::Kind::kDict:
      return v.as_dict().size();
    default:
      Fail("object of type " + Quoted(TypeName(v)) + " has no len()");
  }
}

// jinja2's make_attrgetter: "a.b.0" looks up each part with getitem (digits as indices).
Value GetPath(const Value& item, const Value& attribute) {
  if (attribute.is_int()) return GetItem(item, attribute);
  const std::string& path = NeedString(attribute, "attribute");
  Value v = item;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    if (digits && part.size() < 18) {
      v = GetItem(v, Value::Int(std::stoll(part)));
    } else {
      v = GetItem(v, Value::String(part));
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

Value IgnoreCase(const Value& v) {
  return v.is_string() ? Value::String(Lower(v.as_string())) : v;
}

// --- numbers ------------------------------------------------------------------------------

// Python ints are unbounded; ours are 64-bit and overflow is an error rather than a wrap.
Value CheckedInt(bool overflowed, std::int64_t v) {
  if (overflowed) Fail("integer overflow");
  return Value::Int(v);
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  if (b == -1 && a == std::numeric_limits<std::int64_t>::min()) Fail("integer overflow");
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t FloorMod(std::int64_t a, std::int64_t b) {
  if (b == -1) return 0;
  std::int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

// Python's float(str): surrounding whitespace, sign, inf/nan, underscores between digits.
bool ParseFloat(std::string_view s, double* out) {
  s = StripSpace(s, true, true);
  std::string text;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() &&
        std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      continue;
    }
    text += s[i];
  }
  std::string_view t = text;
  bool neg = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    neg = t[0] == '-';
    t.remove_prefix(1);
  }
  const std::string lower = Lower(t);
  if (lower == "inf" || lower == "infinity") {
    *out = neg ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  if (lower == "nan") {
    *out = std::nan("");
    return true;
  }
  if (t.empty() || t[0] == '+' || t[0] == '-') return false;
  const auto res = std::from_chars(t.data(), t.data() + t.size(), *out);
  if (res.ptr != t.data() + t.size()) return false;
  if (res.ec == std::errc::result_out_of_range) {
    *out = lower.find("e-") != std::string::npos ? 0.0 : HUGE_VAL;
  } else if (res.ec != std::errc()) {
    return false;
  }
  if (neg) *out = -*out;
  return true;
}

// Python's int(str, base): whitespace, sign, optional 0x/0o/0b prefix, single underscores.
bool ParseInt(std::string_view s, int base, std::int64_t* out) {
  s = StripSpace(s, true, true);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    const int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (pb != 0 && (base == 0 || base == pb)) {
      base = pb;
      s.remove_prefix(2);
      if (!s.empty() && s[0] == '_') s.remove_prefix(1);
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36 || s.empty()) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_') continue;
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    if (d < 0 || d >= base) return false;
    if (__builtin_mul_overflow(v, static_cast<std::uint64_t>(base), &v) ||
        __builtin_add_overflow(v, static_cast<std::uint64_t>(d), &v)) {
      Fail("integer too large");
    }
  }
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (neg ? 1 : 0);
  if (v > limit) Fail("integer too large");
  *out = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

Value FloatToInt(double d) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) Fail("cannot convert float to integer");
  return Value::Int(static_cast<std::int64_t>(std::trunc(d)));
}

double RoundHalfEven(double x, std::int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits > 0) {
    if (digits > 300) return x;
    // printf rounds the exact binary value, ties to even: what Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(digits), x);
    double r = 0;
    std::from_chars(buf, buf + std::char_traits<char>::length(buf), r);
    return r;
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

// --- strings ------------------------------------------------------------------------------

std::string Replace(std::string_view s, std::string_view old, std::string_view repl,
                    std::int64_t count) {
  std::string out;
  if (old.empty()) {
    const std::vector<std::size_t> offsets = CharOffsets(s);
    std::int64_t n = 0;
    for (std::size_t i = 0; i + 1 <= offsets.size(); ++i) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
      }
      if (i + 1 < offsets.size()) out += s.substr(offsets[i], offsets[i + 1] - offsets[i]);
      CheckSize(out.size());
    }
    return out;
  }
  std::size_t pos = 0;
  std::int64_t n = 0;
  while (count < 0 || n < count) {
    const std::size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += repl;
    CheckSize(out.size());
    pos = hit + old.size();
    ++n;
  }
  out += s.substr(pos);
  CheckSize(out.size());
  return out;
}

std::vector<Value> Split(std::string_view s, const Value* sep, std::int64_t maxsplit, bool right) {
  std::vector<std::string_view> parts;
  if (sep == nullptr || sep->is_none()) {
    // Runs of whitespace, ignoring leading and trailing whitespace.
    std::vector<std::pair<std::size_t, std::size_t>> words;
    std::size_t i = 0;
    while (i < s.size()) {
      while (std::size_t n = SpaceAt(s, i)) i += n;
      if (i >= s.size()) break;
      const std::size_t b = i;
      while (i < s.size() && SpaceAt(s, i) == 0) ++i;
      words.emplace_back(b, i);
    }
    if (maxsplit >= 0 && static_cast<std::int64_t>(words.size()) > maxsplit + 1) {
      const auto keep = static_cast<std::size_t>(maxsplit);
      if (!right) {
        for (std::size_t k = 0; k < keep; ++k)
          parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
        parts.push_back(StripSpace(s.substr(words[keep].first), false, true));
      } else {
        const std::size_t first_kept = words.size() - keep;
        parts.push_back(StripSpace(s.substr(0, words[first_kept - 1].second), true, false));
        for (std::size_t k = first_kept; k < words.size(); ++k)
          parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
      }
    } else {
      for (const auto& [b, e] : words) parts.push_back(s.substr(b, e - b));
    }
  } else {
    const std::string& d = NeedString(*sep, "split");
    if (d.empty()) Fail("empty separator");
    if (!right) {
      std::size_t pos = 0;
      std::int64_t n = 0;
      while (maxsplit < 0 || n < maxsplit) {
        const std::size_t hit = s.find(d, pos);
        if (hit == std::string_view::npos) break;
        parts.push_back(s.substr(pos, hit - pos));
        pos = hit + d.size();
        ++n;
      }
      parts.push_back(s.substr(pos));
    } else {
      std::size_t end = s.size();
      std::int64_t n = 0;
      std::vector<std::string_view> rev;
      while (maxsplit < 0 || n < maxsplit) {
        if (end < d.size()) break;
        const std::size_t hit = s.rfind(d, end - d.size());
        if (hit == std::string_view::npos) break;
        rev.push_back(s.substr(hit + d.size(), end - hit - d.size()));
        end = hit;
        ++n;
      }
      rev.push_back(s.substr(0, end));
      parts.assign(rev.rbegin(), rev.rend());
    }
  }
  std::vector<Value> out;
  out.reserve(parts.size());
  for (std::string_view p : parts) out.push_back(Value::String(std::string(p)));
  if (out.size() > kMaxListItems) Fail("list too long");
  return out;
}

// Python's str.splitlines(keepends=False).
std::vector<std::string_view> SplitLines(std::string_view s) {
  std::vector<std::string_view> lines;
  std::size_t start = 0, i = 0;
  while (i < s.size()) {
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    const bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C ||
                     cp == 0x1D || cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
    if (!brk || (len == 1 && cp >= 0x80)) {
      i += len;
      continue;
    }
    lines.push_back(s.substr(start, i - start));
    i += len;
    if (cp == '\r' && i < s.size() && s[i] == '\n') ++i;
    start = i;
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  return lines;
}

bool AffixMatch(const std::string& s, const Value& affix, bool prefix) {
  const auto one = [&](const Value& a) {
    const std::string& x = NeedString(a, prefix ? "startswith" : "endswith");
    return s.size() >= x.size() && s.compare(prefix ? 0 : s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list() && affix.is_tuple()) {
    return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  }
  return one(affix);
}

// Python's str.title(): a cased character after a cased one is lowered, others raised.
std::string PyTitle(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    const bool cased = IsCased(cp);
    if (!cased) {
      out.append(s.substr(i, len));
    } else if (prev_cased) {
      AppendLower(out, cp);
    } else {
      AppendUpper(out, cp);
    }
    prev_cased = cased;
    i += len;
  }
  return out;
}

std::string Capitalize(std::string_view s) {
  if (s.empty()) return std::string();
  std::uint32_t cp = 0;
  const std::size_t len = DecodeUtf8(s, 0, &cp);
  std::string out;
  AppendUpper(out, cp);
  return out + Lower(s.substr(len));
}

// jinja2's title filter: words start after '-', whitespace or one of "({[<"; each word's first
// character is raised and the rest lowered.
std::string JinjaTitle(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t sp = SpaceAt(s, i);
    const char c = s[i];
    if (sp != 0 || c == '-' || c == '(' || c == '{' || c == '[' || c == '<') {
      const std::size_t len = sp != 0 ? sp : 1;
      out.append(s.substr(i, len));
      i += len;
      word_start = true;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (word_start) {
      AppendUpper(out, cp);
    } else {
      AppendLower(out, cp);
    }
    word_start = false;
    i += len;
  }
  return out;
}

std::string Indent(std::string s, const Value& width, bool first, bool blank) {
  const std::string pad =
      width.is_string() ? width.as_string()
                        : std::string(static_cast<std::size_t>(std::max<std::int64_t>(
                                          0, std::min<std::int64_t>(width.as_int(), 1 << 20))),
                                      ' ');
  s += '\n';
  const std::vector<std::string_view> lines = SplitLines(s);
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (blank || !lines[i].empty()) out += pad;
    }
    out += lines[i];
    CheckSize(out.size());
  }
  if (first) out = pad + out;
  CheckSize(out.size());
  return out;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  CheckSize(out.size());
  return out;
}

// Python's `fmt % args` for %s, %r, %d, %i, %f and %%, with optional %(name)s keys.
std::string PercentFormat(std::string_view fmt, const Value& args) {
  std::vector<Value> positional;
  if (args.is_tuple()) {
    positional = args.as_list();
  } else if (!args.is_dict()) {
    positional.push_back(args);
  }
  std::size_t next = 0;
  std::string out;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) Fail("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    Value arg;
    if (fmt[i] == '(') {
      const std::size_t close = fmt.find(')', i);
      if (close == std::string_view::npos || !args.is_dict()) Fail("format requires a mapping");
      const Value* v = args.as_dict().Find(fmt.substr(i + 1, close - i - 1));
      if (v == nullptr) Fail("format key " + Quoted(fmt.substr(i + 1, close - i - 1)) + " missing");
      arg = *v;
      i = close + 1;
      if (i >= fmt.size()) Fail("incomplete format");
    } else {
      if (next >= positional.size()) Fail("not enough arguments for format string");
      arg = positional[next++];
    }
    switch (fmt[i]) {
      case 's':
        out += Str(arg);
        break;
      case 'r':
        out += Repr(arg);
        break;
      case 'd':
      case 'i':
        if (!arg.is_number()) Fail("%d format: a real number is required");
        out += Str(arg.is_float() ? FloatToInt(arg.as_float()) : Value::Int(arg.as_int()));
        break;
      case 'f': {
        if (!arg.is_number()) Fail("%f format: a real number is required");
        char buf[400];
        std::snprintf(buf, sizeof(buf), "%.6f", arg.as_float());
        out += buf;
        break;
      }
      default:
        Fail(std::string("unsupported format character '") + fmt[i] + "'");
    }
    CheckSize(out.size());
  }
  if (!args.is_dict() && next < positional.size()) {
    Fail("not all arguments converted during string formatting");
  }
  return out;
}

// Python's str.format for `{}`, `{0}`, `{name}`, `{x!r}`, `{{` and `}}` (no format specs).
std::string BraceFormat(std::string_view fmt, const Args& args) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      Fail("single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const std::size_t close = fmt.find('}', i);
    if (close == std::string_view::npos) Fail("single '{' encountered in format string");
    std::string_view field = fmt.substr(i + 1, close - i - 1);
    char conversion = 's';
    if (const std::size_t bang = field.find('!'); bang != std::string_view::npos) {
      if (bang + 2 != field.size()) Fail("unsupported format conversion");
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    if (field.find(':') != std::string_view::npos) Fail("format specs are not supported");
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) Fail("format: not enough positional arguments");
      v = &args.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char d) { return d >= '0' && d <= '9'; })) {
      const std::size_t k = field.size() < 9 ? std::stoul(std::string(field)) : SIZE_MAX;
      if (k >= args.positional.size()) Fail("format: replacement index out of range");
      v = &args.positional[k];
    } else {
      for (const auto& [name, value] : args.keywords) {
        if (name == field) v = &value;
      }
      if (v == nullptr) Fail("format: missing key " + Quoted(field));
    }
    if (conversion == 'r') {
      out += Repr(*v);
    } else if (conversion == 's') {
      out += Str(*v);
    } else {
      Fail("unsupported format conversion");
    }
    CheckSize(out.size());
    i = close;
  }
  return out;
}

// --- JSON -----------------------------------------------------------------------------------

void JsonString(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F && !(len == 1 && cp >= 0x80))) {
          if (cp >= 0x10000) {
            const std::uint32_t v = cp - 0x10000;
            std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                          0xDC00 + (v & 0x3FF));
          } else {
            std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
          }
          out += buf;
        } else {
          out.append(s.substr(i, len));
        }
    }
    i += len;
  }
  out += '"';
}

struct JsonStyle {
  bool pretty = false;
  std::string indent;
  std::string item_sep;
  std::string key_sep;
  bool sort_keys = false;
  bool ensure_ascii = false;
};

void JsonTo(std::string& out, const Value& v, const JsonStyle& style, int level) {
  CheckSize(out.size());
  const auto newline = [&](int l) {
    if (!style.pretty) return;
    out += '\n';
    for (int k = 0; k < l; ++k) out += style.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      out += std::isnan(d)   ? "NaN"
             : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                             : FloatRepr(d);
      return;
    }
    case Value::Kind::kString:
      JsonString(out, v.as_string(), style.ensure_ascii);
      return;
    case Value::Kind::kList: {
      const auto& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += style.item_sep;
        newline(level + 1);
        JsonTo(out, items[i], style, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      std::vector<const Dict::Item*> items;
      for (const auto& item : v.as_dict().items()) items.push_back(&item);
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (style.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](const Dict::Item* a, const Dict::Item* b) {
          return a->first < b->first;
        });
      }
      out += '{';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += style.item_sep;
        newline(level + 1);
        JsonString(out, items[i]->first, style.ensure_ascii);
        out += style.key_sep;
        JsonTo(out, items[i]->second, style, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    default:
      Fail("Object of type " + std::string(TypeName(v)) + " is not JSON serializable");
  }
}

// --- filters --------------------------------------------------------------------------------

using FilterFn = Value (*)(const Value&, const Args&);

Value FAbs(const Value& v, const Args& a) {
  Bind("abs", a, {});
  if (v.is_float()) return Value::Float(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    std::int64_t r = 0;
    const bool overflow = __builtin_sub_overflow(std::int64_t{0}, v.as_int(), &r);
    return CheckedInt(overflow, v.as_int() < 0 ? r : v.as_int());
  }
  Fail("bad operand type for abs(): " + Quoted(TypeName(v)));
}

Value FAttr(const Value& v, const Args& a) {
  const auto p = Bind("attr", a, {"name"});
  if (p[0] == nullptr) Fail("attr needs a name");
  return GetAttr(v, NeedString(*p[0], "attr"));
}

Value FCapitalize(const Value& v, const Args& a) {
  Bind("capitalize", a, {});
  return Value::String(Capitalize(Str(v)));
}

Value FLength(const Value& v, const Args& a) {
  Bind("length", a, {});
  return Value::Int(static_cast<std::int64_t>(Length(v)));
}

Value FDefault(const Value& v, const Args& a) {
  const auto p = Bind("default", a, {"default_value", "boolean"});
  const bool boolean = p[1] != nullptr && Truthy(*p[1]);
  if (v.is_undefined() || (boolean && !Truthy(v))) return Or(p[0], Value::String(""));
  return v;
}

Value FDictsort(const Value& v, const Args& a) {
  const auto p = Bind("dictsort", a, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) Fail("dictsort expects a mapping");
  const bool case_sensitive = p[0] != nullptr && Truthy(*p[0]);
  const std::string by = p[1] != nullptr ? NeedString(*p[1], "dictsort") : "key";
  if (by != "key" && by != "value") Fail("You can only sort by either 'key' or 'value'");
  const bool reverse = p[2] != nullptr && Truthy(*p[2]);
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.as_dict().items()) {
    pairs.push_back(Value::List({Value::String(k), val}, true));
  }
  const std::size_t index = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    Value kx = x.as_list()[index], ky = y.as_list()[index];
    if (!case_sensitive) kx = IgnoreCase(kx), ky = IgnoreCase(ky);
    return reverse ? Less(ky, kx) : Less(kx, ky);
  });
  return MakeList(std::move(pairs));
}

Value FFirst(const Value& v, const Args& a) {
  Bind("first", a, {});
  if (v.is_string()) {
    if (v.as_string().empty()) return Value();
    std::uint32_t cp = 0;
    return Value::String(v.as_string().substr(0, DecodeUtf8(v.as_string(), 0, &cp)));
  }
  if (v.is_list()) return v.as_list().empty() ? Value() : v.as_list().front();
  std::vector<Value> items = Iterate(v);
  return items.empty() ? Value() : items.front();
}

Value FLast(const Value& v, const Args& a) {
  Bind("last", a, {});
  if (v.is_list()) return v.as_list().empty() ? Value() : v.as_list().back();
  std::vector<Value> items = Iterate(v);
  return items.empty() ? Value() : items.back();
}

Value FFloat(const Value& v, const Args& a) {
  const auto p = Bind("float", a, {"default"});
  Value fallback = Or(p[0], Value::Float(0.0));
  if (v.is_number()) return Value::Float(v.as_float());
  double d = 0;
  if (v.is_string() && ParseFloat(v.as_string(), &d)) return Value::Float(d);
  return fallback;
}

Value FInt(const Value& v, const Args& a) {
  const auto p = Bind("int", a, {"default", "base"});
  Value fallback = Or(p[0], Value::Int(0));
  const std::int64_t base = ToIndex(p[1], "base", 10);
  if (v.is_int() || v.is_bool()) return Value::Int(v.as_int());
  if (v.is_float()) return std::isfinite(v.as_float()) ? FloatToInt(v.as_float()) : fallback;
  if (v.is_string()) {
    std::int64_t i = 0;
    if (ParseInt(v.as_string(), static_cast<int>(base), &i)) return Value::Int(i);
    double d = 0;
    if (ParseFloat(v.as_string(), &d) && std::isfinite(d)) return FloatToInt(d);
  }
  return fallback;
}

Value FJoin(const Value& v, const Args& a) {
  const auto p = Bind("join", a, {"d", "attribute"});
  const std::string sep = p[0] != nullptr ? Str(*p[0]) : "";
  std::string out;
  bool first = true;
  for (const Value& item : Iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += Str(p[1] != nullptr ? GetPath(item, *p[1]) : item);
    CheckSize(out.size());
  }
  return Value::String(std::move(out));
}

Value FList(const Value& v, const Args& a) {
  Bind("list", a, {});
  return MakeList(Iterate(v));
}

Value FLower(const Value& v, const Args& a) {
  Bind("lower", a, {});
  return Value::String(Lower(Str(v)));
}

Value FUpper(const Value& v, const Args& a) {
  Bind("upper", a, {});
  return Value::String(Upper(Str(v)));
}

Value FItems(const Value& v, const Args& a) {
  Bind("items", a, {});
  if (v.is_undefined()) return MakeList({});
  if (!v.is_dict()) Fail("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.as_dict().items()) {
    pairs.push_back(Value::List({Value::String(k), val}, true));
  }
  return MakeList(std::move(pairs));
}

Value FMap(const Value& v, const Args& a) {
  std::vector<Value> out;
  if (a.positional.empty()) {
    const auto p = Bind("map", a, {"attribute", "default"});
    if (p[0] == nullptr) Fail("map requires a filter argument");
    for (const Value& item : Iterate(v)) {
      Value x = GetPath(item, *p[0]);
      if (x.is_undefined() && p[1] != nullptr) x = *p[1];
      out.push_back(std::move(x));
    }
  } else {
    const std::string& name = NeedString(a.positional[0], "map");
    if (!IsFilter(name)) Fail("no filter named " + Quoted(name));
    Args rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keywords = a.keywords;
    for (const Value& item : Iterate(v)) out.push_back(ApplyFilter(name, item, rest));
  }
  return MakeList(std::move(out));
}

Value MinMax(const Value& v, const Args& a, bool want_max) {
  const auto p = Bind(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
  const bool case_sensitive = p[0] != nullptr && Truthy(*p[0]);
  const std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value();
  const auto key = [&](const Value& item) {
    Value k = p[1] != nullptr ? GetPath(item, *p[1]) : item;
    return case_sensitive ? k : IgnoreCase(k);
  };
  std::size_t best = 0;
  Value best_key = key(items[0]);
  for (std::size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (want_max ? Less(best_key, k) : Less(k, best_key)) best = i, best_key = std::move(k);
  }
  return items[best];
}
Value FMax(const Value& v, const Args& a) {
  return MinMax(v, a, true);
}
Value FMin(const Value& v, const Args& a) {
  return MinMax(v, a, false);
}

Value FReplace(const Value& v, const Args& a) {
  const auto p = Bind("replace", a, {"old", "new", "count"});
  if (p[0] == nullptr || p[1] == nullptr) Fail("replace needs old and new");
  return Value::String(Replace(Str(v), Str(*p[0]), Str(*p[1]), ToIndex(p[2], "count", -1)));
}

Value FReverse(const Value& v, const Args& a) {
  Bind("reverse", a, {});
  if (v.is_string()) {
    const std::string& s = v.as_string();
    const std::vector<std::size_t> offsets = CharOffsets(s);
    std::string out;
    for (std::size_t i = offsets.size() - 1; i > 0; --i) {
      out.append(s, offsets[i - 1], offsets[i] - offsets[i - 1]);
    }
    return Value::String(std::move(out));
  }
  std::vector<Value> items = Iterate(v);
  std::reverse(items.begin(), items.end());
  return MakeList(std::move(items));
}

Value FRound(const Value& v, const Args& a) {
  const auto p = Bind("round", a, {"precision", "method"});
  const std::int64_t precision = ToIndex(p[0], "precision", 0);
  const std::string method = p[1] != nullptr ? NeedString(*p[1], "round") : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    Fail("method must be common, ceil or floor");
  }
  if (!v.is_number()) Fail("round expects a number, not " + Quoted(TypeName(v)));
  if (method == "common") {
    if (!v.is_float()) {
      if (precision >= 0) return Value::Int(v.as_int());
      return FloatToInt(RoundHalfEven(v.as_float(), precision));  // round(1234, -2) == 1200
    }
    return Value::Float(RoundHalfEven(v.as_float(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_float() * scale;
  return Value::Float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value FSafe(const Value& v, const Args& a) {
  Bind("safe", a, {});
  return v;
}

Value FEscape(const Value& v, const Args& a) {
  Bind("escape", a, {});
  return Value::String(HtmlEscape(Str(v)));
}

Value SelectOrReject(const Value& v, const Args& a, bool attr, bool select) {
  std::size_t off = 0;
  Value attribute;
  if (attr) {
    if (a.positional.empty()) Fail("Missing parameter for attribute name");
    attribute = a.positional[0];
    off = 1;
  }
  std::string test;
  Args test_args;
  if (a.positional.size() > off) {
    test = NeedString(a.positional[off], "test name");
    if (!IsTest(test)) Fail("no test named " + Quoted(test));
    test_args.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(off) + 1,
                                a.positional.end());
    test_args.keywords = a.keywords;
  }
  std::vector<Value> out;
  for (const Value& item : Iterate(v)) {
    const Value x = attr ? GetPath(item, attribute) : item;
    const bool pass = test.empty() ? Truthy(x) : ApplyTest(test, x, test_args);
    if (pass == select) out.push_back(item);
  }
  return MakeList(std::move(out));
}
Value FSelect(const Value& v, const Args& a) {
  return SelectOrReject(v, a, false, true);
}
Value FReject(const Value& v, const Args& a) {
  return SelectOrReject(v, a, false, false);
}
Value FSelectattr(const Value& v, const Args& a) {
  return SelectOrReject(v, a, true, true);
}
Value FRejectattr(const Value& v, const Args& a) {
  return SelectOrReject(v, a, true, false);
}

Value FSort(const Value& v, const Args& a) {
  const auto p = Bind("sort", a, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = p[0] != nullptr && Truthy(*p[0]);
  const bool case_sensitive = p[1] != nullptr && Truthy(*p[1]);
  std::vector<Value> items = Iterate(v);
  std::vector<std::pair<Value, std::size_t>> keyed;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Value k = p[2] != nullptr ? GetPath(items[i], *p[2]) : items[i];
    keyed.emplace_back(case_sensitive ? k : IgnoreCase(k), i);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? Less(y.first, x.first) : Less(x.first, y.first);
  });
  std::vector<Value> out;
  out.reserve(keyed.size());
  for (const auto& [k, i] : keyed) out.push_back(items[i]);
  return MakeList(std::move(out));
}

Value FString(const Value& v, const Args& a) {
  Bind("string", a, {});
  return Value::String(Str(v));
}

Value FSum(const Value& v, const Args& a) {
  const auto p = Bind("sum", a, {"attribute", "start"});
  Value total = Or(p[1], Value::Int(0));
  for (const Value& item : Iterate(v)) {
    total = BinaryOp("+", total, p[0] != nullptr ? GetPath(item, *p[0]) : item);
  }
  return total;
}

Value FTitle(const Value& v, const Args& a) {
  Bind("title", a, {});
  return Value::String(JinjaTitle(Str(v)));
}

Value FToJson(const Value& v, const Args& a) {
  const auto p = Bind("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  std::string out =
      ToJson(v, Or(p[1], Value::None()), Or(p[2], Value::None()), p[3] != nullptr && Truthy(*p[3]));
  if (p[0] != nullptr && Truthy(*p[0])) {
    // ensure_ascii: re-escape what ToJson left raw. Only string contents hold non-ASCII, and
    // escaping them in place is what json.dumps would have done.
    std::string ascii;
    for (std::size_t i = 0; i < out.size();) {
      std::uint32_t cp = 0;
      const std::size_t len = DecodeUtf8(out, i, &cp);
      if (cp >= 0x7F && !(len == 1 && cp >= 0x80)) {
        std::string one;
        JsonString(one, out.substr(i, len), true);
        ascii += one.substr(1, one.size() - 2);
      } else {
        ascii.append(out, i, len);
      }
      i += len;
    }
    out = std::move(ascii);
  }
  return Value::String(std::move(out));
}

Value FTrim(const Value& v, const Args& a) {
  const auto p = Bind("trim", a, {"chars"});
  const std::string s = Str(v);
  if (p[0] != nullptr && !p[0]->is_none()) {
    return Value::String(std::string(StripChars(s, NeedString(*p[0], "trim"), true, true)));
  }
  return Value::String(std::string(StripSpace(s, true, true)));
}

Value FUnique(const Value& v, const Args& a) {
  const auto p = Bind("unique", a, {"case_sensitive", "attribute"});
  const bool case_sensitive = p[0] != nullptr && Truthy(*p[0]);
  std::vector<Value> seen, out;
  for (const Value& item : Iterate(v)) {
    Value k = p[1] != nullptr ? GetPath(item, *p[1]) : item;
    if (!case_sensitive) k = IgnoreCase(k);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, k); })) {
      seen.push_back(std::move(k));
      out.push_back(item);
    }
  }
  return MakeList(std::move(out));
}

Value FWordcount(const Value& v, const Args& a) {
  Bind("wordcount", a, {});
  // re.findall(r"\w+"): runs of letters, digits and '_' (every non-ASCII character counts as
  // a word character here, which is right for letters and ideographs).
  const std::string s = Str(v);
  std::int64_t words = 0;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    const bool w =
        cp >= 0x80 ? SpaceAt(s, i) == 0 : (std::isalnum(static_cast<int>(cp)) != 0 || cp == '_');
    if (w && !in_word) ++words;
    in_word = w;
    i += len;
  }
  return Value::Int(words);
}

Value FIndent(const Value& v, const Args& a) {
  const auto p = Bind("indent", a, {"width", "first", "blank"});
  const Value width = Or(p[0], Value::Int(4));
  if (!width.is_string() && !width.is_int() && !width.is_bool())
    Fail("indent width must be int or str");
  return Value::String(
      Indent(Str(v), width, p[1] != nullptr && Truthy(*p[1]), p[2] != nullptr && Truthy(*p[2])));
}

Value FFormat(const Value& v, const Args& a) {
  if (!a.keywords.empty() && !a.positional.empty()) {
    Fail("can't handle positional and keyword arguments at the same time");
  }
  if (!a.keywords.empty()) {
    Dict d;
    for (const auto& [k, val] : a.keywords) d.Set(k, val);
    return Value::String(PercentFormat(Str(v), Value::MakeDict(std::move(d))));
  }
  return Value::String(PercentFormat(Str(v), Value::List(a.positional, true)));
}

Value FBatch(const Value& v, const Args& a) {
  const auto p = Bind("batch", a, {"linecount", "fill_with"});
  const std::int64_t n = ToIndex(p[0], "linecount", 0);
  if (n <= 0) Fail("batch size must be positive");
  std::vector<Value> out, cur;
  for (const Value& item : Iterate(v)) {
    cur.push_back(item);
    if (static_cast<std::int64_t>(cur.size()) == n) out.push_back(MakeList(std::exchange(cur, {})));
  }
  if (!cur.empty()) {
    if (p[1] != nullptr) {
      while (static_cast<std::int64_t>(cur.size()) < n) cur.push_back(*p[1]);
    }
    out.push_back(MakeList(std::move(cur)));
  }
  return MakeList(std::move(out));
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};
constexpr FilterEntry kFilters[] = {
    {"abs", FAbs},
    {"attr", FAttr},
    {"batch", FBatch},
    {"capitalize", FCapitalize},
    {"count", FLength},
    {"d", FDefault},
    {"default", FDefault},
    {"dictsort", FDictsort},
    {"e", FEscape},
    {"escape", FEscape},
    {"first", FFirst},
    {"float", FFloat},
    {"forceescape", FEscape},
    {"format", FFormat},
    {"indent", FIndent},
    {"int", FInt},
    {"items", FItems},
    {"join", FJoin},
    {"last", FLast},
    {"length", FLength},
    {"list", FList},
    {"lower", FLower},
    {"map", FMap},
    {"max", FMax},
    {"min", FMin},
    {"reject", FReject},
    {"rejectattr", FRejectattr},
    {"replace", FReplace},
    {"reverse", FReverse},
    {"round", FRound},
    {"safe", FSafe},
    {"select", FSelect},
    {"selectattr", FSelectattr},
    {"sort", FSort},
    {"string", FString},
    {"sum", FSum},
    {"title", FTitle},
    {"tojson", FToJson},
    {"trim", FTrim},
    {"unique", FUnique},
    {"upper", FUpper},
    {"wordcount", FWordcount},
};

FilterFn FindFilter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

// --- tests ----------------------------------------------------------------------------------

constexpr std::string_view kTests[] = {
    "defined", "undefined", "none",        "boolean", "false",       "true",     "integer",
    "float",   "number",    "string",      "mapping", "iterable",    "sequence", "callable",
    "sameas",  "escaped",   "odd",         "even",    "divisibleby", "eq",       "equalto",
    "==",      "ne",        "!=",          "lt",      "lessthan",    "<",        "le",
    "<=",      "gt",        "greaterthan", ">",       "ge",          ">=",       "in",
    "lower",   "upper",     "filter",      "test"};

std::int64_t NeedInt(const Value& v, std::string_view test) {
  if (!v.is_int() && !v.is_bool()) {
    Fail("test " + Quoted(test) + " expects an integer, not " + Quoted(TypeName(v)));
  }
  return v.as_int();
}

}  // namespace

void CheckSize(std::size_t bytes) {
  if (bytes > kMaxStringBytes) {
    Fail("output too large (over " + std::to_string(kMaxStringBytes >> 20) + " MiB)");
  }
}

void CheckDepth(const Value& v) {
  if (v.depth() > kMaxValueDepth) {
    Fail("value nested too deeply (over " + std::to_string(kMaxValueDepth) + " levels)");
  }
}

bool IsFilter(std::string_view name) {
  return FindFilter(name) != nullptr;
}

bool IsTest(std::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

Value ApplyFilter(std::string_view name, const Value& value, const Args& args) {
  const FilterFn fn = FindFilter(name);
  if (fn == nullptr) Fail("no filter named " + Quoted(name));
  return fn(value, args);
}

bool ApplyTest(std::string_view name, const Value& v, const Args& args) {
  const auto one = [&]() -> const Value& {
    const auto p = Bind("test " + std::string(name), args, {"other"});
    if (p[0] == nullptr) Fail("test " + Quoted(name) + " needs an argument");
    return *p[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "callable") return v.is_object() && v.as_object()->kind == Object::Kind::kCallable;
  if (name == "escaped") return false;
  if (name == "lower") return v.is_string() && Lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && Upper(v.as_string()) == v.as_string();
  if (name == "filter") return v.is_string() && IsFilter(v.as_string());
  if (name == "test") return v.is_string() && IsTest(v.as_string());
  if (name == "odd") return FloorMod(NeedInt(v, name), 2) == 1;
  if (name == "even") return FloorMod(NeedInt(v, name), 2) == 0;
  if (name == "divisibleby") {
    const std::int64_t d = NeedInt(one(), name);
    if (d == 0) Fail("integer division or modulo by zero");
    return FloorMod(NeedInt(v, name), d) == 0;
  }
  if (name == "sameas") {
    const Value& o = one();
    // Python's `is`: singletons and identical objects; small values compare equal here.
    if (v.kind() != o.kind()) return false;
    return v.is_object() ? v.as_object() == o.as_object() : Equals(v, o);
  }
  if (name == "eq" || name == "equalto" || name == "==") return Equals(v, one());
  if (name == "ne" || name == "!=") return !Equals(v, one());
  if (name == "lt" || name == "lessthan" || name == "<") return Less(v, one());
  if (name == "le" || name == "<=") return !Less(one(), v);
  if (name == "gt" || name == "greaterthan" || name == ">") return Less(one(), v);
  if (name == "ge" || name == ">=") return !Less(v, one());
  if (name == "in") return Contains(one(), v);
  Fail("no test named " + Quoted(name));
}

// --- methods --------------------------------------------------------------------------------

namespace {
constexpr std::string_view kStrMethods[] = {
    "strip", "lstrip", "rstrip",  "split",      "rsplit",  "splitlines", "startswith", "endswith",
    "upper", "lower",  "title",   "capitalize", "replace", "find",       "rfind",      "count",
    "join",  "format", "isdigit", "isalpha",    "isalnum", "isspace",    "islower",    "isupper"};
constexpr std::string_view kDictMethods[] = {"items", "keys", "values", "get"};
constexpr std::string_view kListMethods[] = {"index", "count"};

template <std::size_t N>
bool In(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

Value StrMethod(const std::string& s, std::string_view name, const Args& a) {
  const std::string what = "str." + std::string(name);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const auto p = Bind(what, a, {"chars"});
    const bool left = name != "rstrip", right = name != "lstrip";
    if (p[0] != nullptr && !p[0]->is_none()) {
      return Value::String(std::string(StripChars(s, NeedString(*p[0], what), left, right)));
    }
    return Value::String(std::string(StripSpace(s, left, right)));
  }
  if (name == "split" || name == "rsplit") {
    const auto p = Bind(what, a, {"sep", "maxsplit"});
    return MakeList(Split(s, p[0], ToIndex(p[1], "maxsplit", -1), name == "rsplit"));
  }
  if (name == "splitlines") {
    Bind(what, a, {});
    std::vector<Value> out;
    for (std::string_view line : SplitLines(s)) out.push_back(Value::String(std::string(line)));
    return MakeList(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    const auto p = Bind(what, a, {"prefix"});
    if (p[0] == nullptr) Fail(what + " takes at least 1 argument");
    return Value::Bool(AffixMatch(s, *p[0], name == "startswith"));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    Bind(what, a, {});
    if (name == "upper") return Value::String(Upper(s));
    if (name == "lower") return Value::String(Lower(s));
    if (name == "title") return Value::String(PyTitle(s));
    return Value::String(Capitalize(s));
  }
  if (name == "replace") {
    const auto p = Bind(what, a, {"old", "new", "count"});
    if (p[0] == nullptr || p[1] == nullptr) Fail(what + " needs old and new");
    return Value::String(
        Replace(s, NeedString(*p[0], what), NeedString(*p[1], what), ToIndex(p[2], "count", -1)));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    const auto p = Bind(what, a, {"sub"});
    if (p[0] == nullptr) Fail(what + " takes at least 1 argument");
    const std::string& sub = NeedString(*p[0], what);
    if (name == "count") {
      if (sub.empty()) return Value::Int(static_cast<std::int64_t>(CharCount(s) + 1));
      std::int64_t n = 0;
      for (std::size_t pos = s.find(sub); pos != std::string::npos;
           pos = s.find(sub, pos + sub.size()))
        ++n;
      return Value::Int(n);
    }
    const std::size_t hit = name == "find" ? s.find(sub) : s.rfind(sub);
    if (hit == std::string::npos) return Value::Int(-1);
    return Value::Int(static_cast<std::int64_t>(CharCount(std::string_view(s).substr(0, hit))));
  }
  if (name == "join") {
    const auto p = Bind(what, a, {"iterable"});
    if (p[0] == nullptr) Fail(what + " takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& item : Iterate(*p[0])) {
      if (!first) out += s;
      first = false;
      out += NeedString(item, what);
      CheckSize(out.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "format") return Value::String(BraceFormat(s, a));
  Bind(what, a, {});
  if (s.empty()) return Value::Bool(false);
  const auto all = [&](auto pred) { return std::all_of(s.begin(), s.end(), pred); };
  if (name == "isdigit") return Value::Bool(all([](char c) { return c >= '0' && c <= '9'; }));
  if (name == "isalpha") return Value::Bool(all([](char c) { return IsAsciiAlpha(c); }));
  if (name == "isalnum") {
    return Value::Bool(all([](char c) { return IsAsciiAlpha(c) || (c >= '0' && c <= '9'); }));
  }
  if (name == "isspace") return Value::Bool(StripSpace(s, true, false).empty());
  const bool has_cased = std::any_of(s.begin(), s.end(), IsAsciiAlpha);
  if (name == "islower") return Value::Bool(has_cased && Lower(s) == s);
  if (name == "isupper") return Value::Bool(has_cased && Upper(s) == s);
  Fail("'str' object has no attribute " + Quoted(name));
}

}  // namespace

bool HasMethod(const Value& value, std::string_view name) {
  if (value.is_string()) return In(kStrMethods, name);
  if (value.is_dict()) return In(kDictMethods, name);
  if (value.is_list()) return In(kListMethods, name);
  return false;
}

Value CallMethod(const Value& self, std::string_view name, const Args& a) {
  if (self.is_string()) return StrMethod(self.as_string(), name, a);
  if (self.is_dict()) {
    const std::string what = "dict." + std::string(name);
    if (name == "get") {
      const auto p = Bind(what, a, {"key", "default"});
      if (p[0] == nullptr) Fail(what + " expected at least 1 argument");
      const Value* v = p[0]->is_string() ? self.as_dict().Find(p[0]->as_string()) : nullptr;
      return v != nullptr ? *v : Or(p[1], Value::None());
    }
    Bind(what, a, {});
    std::vector<Value> out;
    for (const auto& [k, v] : self.as_dict().items()) {
      if (name == "items") out.push_back(Value::List({Value::String(k), v}, true));
      if (name == "keys") out.push_back(Value::String(k));
      if (name == "values") out.push_back(v);
    }
    return MakeList(std::move(out));
  }
  if (self.is_list()) {
    const auto p = Bind("list." + std::string(name), a, {"value"});
    if (p[0] == nullptr) Fail("list." + std::string(name) + " takes exactly one argument");
    const auto& items = self.as_list();
    std::int64_t count = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!Equals(items[i], *p[0])) continue;
      if (name == "index") return Value::Int(static_cast<std::int64_t>(i));
      ++count;
    }
    if (name == "index") Fail(Repr(*p[0]) + " is not in list");
    return Value::Int(count);
  }
  Fail(Quoted(TypeName(self)) + " object has no attribute " + Quoted(name));
}

// --- operators ------------------------------------------------------------------------------

namespace {

[[noreturn]] void Unsupported(std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) {
    Fail("undefined value used with '" + std::string(op) + "'");
  }
  Fail("unsupported operand type(s) for " + std::string(op) + ": " + Quoted(TypeName(a)) + " and " +
       Quoted(TypeName(b)));
}

Value Repeat(const Value& seq, std::int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<std::uint64_t>(n) > kMaxStringBytes / s.size())
      CheckSize(kMaxStringBytes + 1);
    std::string out;
    out.reserve(s.size() * static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) out += s;
    return Value::String(std::move(out));
  }
  const auto& items = seq.as_list();
  if (!items.empty() && static_cast<std::uint64_t>(n) > kMaxListItems / items.size()) {
    Fail("list too long");
  }
  std::vector<Value> out;
  for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::List(std::move(out), seq.is_tuple());
}

}  // namespace

Value BinaryOp(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = Str(a);
    s += Str(b);
    CheckSize(s.size());
    return Value::String(std::move(s));
  }
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) {
      std::int64_t r = 0;
      const bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      return CheckedInt(overflow, r);
    }
    if (nums) return Value::Float(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) {
      CheckSize(a.as_string().size() + b.as_string().size());
      return Value::String(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      std::vector<Value> items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return MakeList(std::move(items), a.is_tuple());
    }
    Unsupported(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      std::int64_t r = 0;
      const bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
      return CheckedInt(overflow, r);
    }
    if (nums) return Value::Float(a.as_float() - b.as_float());
    Unsupported(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      std::int64_t r = 0;
      const bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
      return CheckedInt(overflow, r);
    }
    if (nums) return Value::Float(a.as_float() * b.as_float());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return Repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return Repeat(b, a.as_int());
    Unsupported(op, a, b);
  }
  if (op == "/") {
    if (!nums) Unsupported(op, a, b);
    if (b.as_float() == 0) Fail("division by zero");
    return Value::Float(a.as_float() / b.as_float());
  }
  if (op == "//") {
    if (!nums) Unsupported(op, a, b);
    if (b.as_float() == 0) Fail("integer division or modulo by zero");
    if (ints) return Value::Int(FloorDiv(a.as_int(), b.as_int()));
    return Value::Float(std::floor(a.as_float() / b.as_float()));
  }
  if (op == "%") {
    if (a.is_string()) return Value::String(PercentFormat(a.as_string(), b));
    if (!nums) Unsupported(op, a, b);
    if (b.as_float() == 0) Fail("integer division or modulo by zero");
    if (ints) return Value::Int(FloorMod(a.as_int(), b.as_int()));
    double m = std::fmod(a.as_float(), b.as_float());
    if (m != 0 && ((m < 0) != (b.as_float() < 0))) m += b.as_float();
    return Value::Float(m);
  }
  if (op == "**") {
    if (!nums) Unsupported(op, a, b);
    if (ints && b.as_int() >= 0) {
      const std::int64_t base = a.as_int();
      std::int64_t exp = b.as_int();
      if (base == 0 || base == 1) return Value::Int(exp == 0 ? 1 : base);
      if (base == -1) return Value::Int(exp % 2 == 0 ? 1 : -1);
      std::int64_t result = 1;
      for (; exp > 0; --exp) {  // |base| >= 2, so this overflows within 64 steps
        if (__builtin_mul_overflow(result, base, &result)) Fail("integer overflow");
      }
      return Value::Int(result);
    }
    if (a.as_float() == 0 && b.as_float() < 0) Fail("0.0 cannot be raised to a negative power");
    return Value::Float(std::pow(a.as_float(), b.as_float()));
  }
  Fail("unknown operator '" + std::string(op) + "'");
}

bool Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!Equals(x[i], y[i])) return Less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined() || b.is_undefined()) Fail("undefined value used in a comparison");
  Fail("'<' not supported between instances of " + Quoted(TypeName(a)) + " and " +
       Quoted(TypeName(b)));
}

bool Contains(const Value& c, const Value& item) {
  switch (c.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        Fail("'in <string>' requires string as left operand, not " + std::string(TypeName(item)));
      }
      return c.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      return std::any_of(c.as_list().begin(), c.as_list().end(),
                         [&](const Value& v) { return Equals(v, item); });
    case Value::Kind::kDict:
      return item.is_string() && c.as_dict().Find(item.as_string()) != nullptr;
    default:
      Fail("argument of type " + Quoted(TypeName(c)) + " is not iterable");
  }
}

Value GetAttr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) Fail("cannot read attribute " + Quoted(name) + " of an undefined value");
  if (obj.is_dict()) {
    const Value* v = obj.as_dict().Find(name);
    return v != nullptr ? *v : Value();
  }
  if (obj.is_object() && obj.as_object()->kind == Object::Kind::kNamespace) {
    const Value* v = obj.as_object()->attributes.Find(name);
    return v != nullptr ? *v : Value();
  }
  return Value();
}

Value GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) Fail("cannot index an undefined value");
  if (key.is_string()) {
    if (obj.is_dict() || obj.is_object()) return GetAttr(obj, key.as_string());
    return Value();
  }
  if (!key.is_int() && !key.is_bool()) return Value();
  std::int64_t i = key.as_int();
  if (obj.is_list()) {
    const auto n = static_cast<std::int64_t>(obj.as_list().size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return obj.as_list()[static_cast<std::size_t>(i)];
  }
  if (obj.is_string()) {
    const std::vector<std::size_t> offsets = CharOffsets(obj.as_string());
    const auto n = static_cast<std::int64_t>(offsets.size()) - 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    const auto k = static_cast<std::size_t>(i);
    return Value::String(obj.as_string().substr(offsets[k], offsets[k + 1] - offsets[k]));
  }
  return Value();
}

Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) Fail("cannot slice an undefined value");
  const auto bound = [](const Value& v, std::string_view what) -> std::optional<std::int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) {
      Fail("slice " + std::string(what) + " must be an integer or none");
    }
    return v.as_int();
  };
  const std::int64_t st = bound(step, "step").value_or(1);
  if (st == 0) Fail("slice step cannot be zero");
  std::vector<std::size_t> offsets;
  std::int64_t n = 0;
  if (obj.is_string()) {
    offsets = CharOffsets(obj.as_string());
    n = static_cast<std::int64_t>(offsets.size()) - 1;
  } else if (obj.is_list()) {
    n = static_cast<std::int64_t>(obj.as_list().size());
  } else {
    return Value();
  }
  // CPython's PySlice_AdjustIndices.
  const auto adjust = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= n) {
      x = st < 0 ? n - 1 : n;
    }
    return x;
  };
  const std::int64_t b = adjust(bound(start, "start"), st < 0 ? n - 1 : 0);
  const std::int64_t e = adjust(bound(stop, "stop"), st < 0 ? -1 : n);
  std::vector<std::int64_t> picks;
  for (std::int64_t i = b; st > 0 ? i < e : i > e; i += st) picks.push_back(i);
  if (obj.is_string()) {
    std::string out;
    const std::string& s = obj.as_string();
    for (const std::int64_t i : picks) {
      const auto k = static_cast<std::size_t>(i);
      out.append(s, offsets[k], offsets[k + 1] - offsets[k]);
    }
    return Value::String(std::move(out));
  }
  std::vector<Value> out;
  out.reserve(picks.size());
  for (const std::int64_t i : picks) out.push_back(obj.as_list()[static_cast<std::size_t>(i)]);
  return Value::List(std::move(out), obj.is_tuple());
}

std::vector<Value> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.as_list();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& item : v.as_dict().items()) keys.push_back(Value::String(item.first));
      return keys;
    }
    case Value::Kind::kString: {
      const std::string& s = v.as_string();
      const std::vector<std::size_t> offsets = CharOffsets(s);
      if (offsets.size() > kMaxListItems) Fail("string too long to iterate");
      std::vector<Value> chars;
      for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
        chars.push_back(Value::String(s.substr(offsets[i], offsets[i + 1] - offsets[i])));
      }
      return chars;
    }
    default:
      Fail(Quoted(TypeName(v)) + " object is not iterable");
  }
}

std::string ToJson(const Value& v, const Value& indent, const Value& separators, bool sort_keys) {
  JsonStyle style;
  style.sort_keys = sort_keys;
  if (!indent.is_none()) {
    style.pretty = true;
    if (indent.is_string()) {
      style.indent = indent.as_string();
    } else if (indent.is_int() || indent.is_bool()) {
      style.indent.assign(
          static_cast<std::size_t>(std::clamp<std::int64_t>(indent.as_int(), 0, 1024)), ' ');
    } else {
      Fail("tojson indent must be an integer or a string");
    }
  }
  style.item_sep = style.pretty ? "," : ", ";
  style.key_sep = ": ";
  if (!separators.is_none()) {
    if (!separators.is_list() || separators.as_list().size() != 2 ||
        !separators.as_list()[0].is_string() || !separators.as_list()[1].is_string()) {
      Fail("tojson separators must be a pair of strings");
    }
    style.item_sep = separators.as_list()[0].as_string();
    style.key_sep = separators.as_list()[1].as_string();
  }
  std::string out;
  JsonTo(out, v, style, 0);
  CheckSize(out.size());
  return out;
}

}  // namespace tidelane::engine::jinja
