#include "router/engine/jinja_lexer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "router/engine/jinja_text.h"

namespace tidelane::engine::jinja {
namespace {

constexpr std::size_t npos = std::string_view::npos;

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsNameStart(char c) {
  return IsAsciiAlpha(c) || c == '_';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || IsDigit(c);
}
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's str.splitlines-free newline normalisation: "\r\n" and "\r" become "\n", then one
// trailing "\n" goes (jinja2's keep_trailing_newline=False).
std::string NormalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(NormalizeNewlines(source)) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) LexRoot();
    Emit(TokenType::kEnd, src_.size());
    return std::move(tokens_);
  }

 private:
  Pos PosAt(std::size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const auto line = static_cast<std::size_t>(it - line_starts_.begin());
    return Pos{static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }
  [[noreturn]] void Fail(const std::string& message, std::size_t offset) const {
    throw TemplateError(message, PosAt(offset));
  }
  Token& Emit(TokenType type, std::size_t offset, std::string text = {}) {
    tokens_.push_back(Token{type, std::move(text), 0, 0, PosAt(offset)});
    return tokens_.back();
  }
  bool At(std::size_t i, std::string_view s) const { return src_.compare(i, s.size(), s) == 0; }
  std::size_t SkipSpace(std::size_t i) const {
    while (std::size_t n = SpaceAt(src_, i)) i += n;
    return i;
  }

  // Text before a tag: `-` strips all whitespace before it; otherwise lstrip_blocks strips the
  // spaces between the start of the line and a block or comment tag (not `{{`), unless `+`.
  void EmitText(std::size_t begin, std::size_t end, char sign, bool is_variable) {
    std::string_view text(src_.data() + begin, end - begin);
    if (sign == '-') {
      text = StripSpace(text, false, true);
    } else if (sign != '+' && !is_variable) {
      const std::size_t nl = text.rfind('\n');
      const std::size_t l_pos = nl == npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size() &&
          StripSpace(text.substr(l_pos), true, false).empty()) {
        text = text.substr(0, l_pos);
      }
    }
    if (!text.empty()) Emit(TokenType::kText, begin, std::string(text));
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` at i: returns the end of the match or npos.
  std::size_t MatchRawBegin(std::size_t i, std::string_view word) const {
    if (!At(i, "{%")) return npos;
    i += 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i = SkipSpace(i);
    if (!At(i, word)) return npos;
    i = SkipSpace(i + word.size());
    if (At(i, "-%}")) return SkipSpace(i + 3);
    if (At(i, "%}")) return i + 2;
    return npos;
  }

  void LexRoot() {
    std::size_t tag = pos_;
    for (;; ++tag) {
      tag = src_.find('{', tag);
      if (tag == npos || tag + 1 >= src_.size()) {
        EmitText(pos_, src_.size(), 0, true);
        pos_ = src_.size();
        return;
      }
      const char c = src_[tag + 1];
      if (c == '%' || c == '{' || c == '#') break;
    }
    const char kind = src_[tag + 1];
    std::size_t after = tag + 2;
    char sign = 0;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
    EmitText(pos_, tag, sign, kind == '{');

    if (kind == '%') {
      if (const std::size_t raw_end = MatchRawBegin(tag, "raw"); raw_end != npos) {
        line_starting_ = src_[raw_end - 1] == '\n';
        LexRaw(raw_end);
        return;
      }
    }
    if (kind == '#') {
      LexComment(after, tag);
      return;
    }
    line_starting_ = false;
    Emit(kind == '%' ? TokenType::kBlockBegin : TokenType::kVariableBegin, tag);
    pos_ = after;
    LexTag(kind == '%', tag);
  }

  // `{%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)` at i: returns the end of the match or npos.
  std::size_t MatchEndRaw(std::size_t i) const {
    if (!At(i, "{%")) return npos;
    i += 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i = SkipSpace(i);
    if (!At(i, "endraw")) return npos;
    i = SkipSpace(i + 6);
    if (At(i, "+%}")) return i + 3;
    if (At(i, "-%}")) return SkipSpace(i + 3);
    if (At(i, "%}")) return i + 2 + (i + 2 < src_.size() && src_[i + 2] == '\n' ? 1 : 0);
    return npos;
  }

  void LexRaw(std::size_t begin) {
    for (std::size_t i = begin; (i = src_.find("{%", i)) != npos; ++i) {
      const std::size_t end = MatchEndRaw(i);
      if (end == npos) continue;
      const char sign = (src_[i + 2] == '-' || src_[i + 2] == '+') ? src_[i + 2] : 0;
      EmitText(begin, i, sign, false);
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    Fail("missing end of raw directive", begin);
  }

  void LexComment(std::size_t begin, std::size_t tag) {
    for (std::size_t i = begin; i < src_.size(); ++i) {
      std::size_t end = npos;
      if (At(i, "+#}")) {
        end = i + 3;
      } else if (At(i, "-#}")) {
        end = SkipSpace(i + 3);
      } else if (At(i, "#}")) {
        end = i + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      }
      if (end != npos) {
        line_starting_ = src_[end - 1] == '\n';
        pos_ = end;
        return;
      }
    }
    Fail("missing end of comment tag", tag);
  }

  // The end of a tag, when brackets are balanced: `+%}`, `-%}` plus whitespace, or `%}` plus
  // one newline (trim_blocks); for variables `-}}` plus whitespace or `}}`.
  std::size_t MatchTagEnd(bool block) const {
    const std::size_t i = pos_;
    if (block) {
      if (At(i, "+%}")) return i + 3;
      if (At(i, "-%}")) return SkipSpace(i + 3);
      if (At(i, "%}")) return i + 2 + (i + 2 < src_.size() && src_[i + 2] == '\n' ? 1 : 0);
    } else {
      if (At(i, "-}}")) return SkipSpace(i + 3);
      if (At(i, "}}")) return i + 2;
    }
    return npos;
  }

  void LexTag(bool block, std::size_t tag) {
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src_.size()) {
        Fail(block ? "unexpected end of template: missing '%}'"
                   : "unexpected end of template: missing '}}'",
             tag);
      }
      if (balance.empty()) {
        if (const std::size_t end = MatchTagEnd(block); end != npos) {
          Emit(block ? TokenType::kBlockEnd : TokenType::kVariableEnd, pos_);
          line_starting_ = src_[end - 1] == '\n';
          pos_ = end;
          return;
        }
      }
      if (const std::size_t end = SkipSpace(pos_); end != pos_) {
        line_starting_ = src_[end - 1] == '\n';
        pos_ = end;
        continue;
      }
      line_starting_ = false;
      if (LexNumber() || LexName() || LexString()) continue;
      LexOperator(balance);
    }
  }

  // `(\d+_)*\d+` at i: returns its end or npos.
  std::size_t Digits(std::size_t i) const {
    if (i >= src_.size() || !IsDigit(src_[i])) return npos;
    while (true) {
      while (i < src_.size() && IsDigit(src_[i])) ++i;
      if (i + 1 < src_.size() && src_[i] == '_' && IsDigit(src_[i + 1])) {
        ++i;
        continue;
      }
      return i;
    }
  }
  std::size_t Exponent(std::size_t i) const {
    if (i >= src_.size() || (src_[i] != 'e' && src_[i] != 'E')) return npos;
    ++i;
    if (i < src_.size() && (src_[i] == '+' || src_[i] == '-')) ++i;
    return Digits(i);
  }

  bool LexNumber() {
    const std::size_t start = pos_;
    if (start < src_.size() && !IsDigit(src_[start])) return false;
    // Float: digits then (fraction? exponent | fraction), not right after a '.' (so `x.0.1`
    // is an attribute chain).
    if (start == 0 || src_[start - 1] != '.') {
      const std::size_t a = Digits(start);
      std::size_t end = npos;
      if (a < src_.size() && src_[a] == '.') {
        if (const std::size_t b = Digits(a + 1); b != npos) {
          const std::size_t e = Exponent(b);
          end = e != npos ? e : b;
        }
      } else {
        end = Exponent(a);
      }
      if (end != npos) {
        std::string text;
        for (std::size_t i = start; i < end; ++i) {
          if (src_[i] != '_') text += src_[i];
        }
        double value = 0;
        const auto res = std::from_chars(text.data(), text.data() + text.size(), value);
        if (res.ec != std::errc() && res.ec != std::errc::result_out_of_range) {
          Fail("invalid float literal", start);
        }
        if (res.ec == std::errc::result_out_of_range) {
          value = text.find_first_of("eE") != npos && text[text.find_first_of("eE") + 1] == '-'
                      ? 0.0
                      : HUGE_VAL;
        }
        Emit(TokenType::kFloat, start).float_value = value;
        pos_ = end;
        return true;
      }
    }
    // Integer: 0b/0o/0x with optional single underscores, a decimal, or zeros.
    int base = 10;
    std::size_t i = start;
    std::string digits;
    const char prefix = start + 1 < src_.size() ? static_cast<char>(src_[start + 1] | 0x20) : 0;
    if (src_[start] == '0' && (prefix == 'b' || prefix == 'o' || prefix == 'x')) {
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      std::size_t j = start + 2;
      while (true) {
        const std::size_t k = j < src_.size() && src_[j] == '_' ? j + 1 : j;
        const int d = k < src_.size() ? HexValue(src_[k]) : -1;
        if (d < 0 || d >= base) break;
        digits += src_[k];
        j = k + 1;
      }
      if (digits.empty()) {
        base = 10;  // not a prefixed literal: the lone "0" below
      } else {
        i = j;
      }
    }
    if (base == 10) {
      digits.clear();
      if (src_[start] == '0') {
        i = start + 1;
        digits.push_back('0');
        while (true) {
          const std::size_t k = i < src_.size() && src_[i] == '_' ? i + 1 : i;
          if (k >= src_.size() || src_[k] != '0') break;
          i = k + 1;
        }
      } else {
        i = Digits(start);
        for (std::size_t k = start; k < i; ++k) {
          if (src_[k] != '_') digits += src_[k];
        }
      }
    }
    std::uint64_t value = 0;
    const auto res = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (res.ec != std::errc() || value > static_cast<std::uint64_t>(INT64_MAX)) {
      Fail("integer literal too large", start);
    }
    Emit(TokenType::kInteger, start).int_value = static_cast<std::int64_t>(value);
    pos_ = i;
    return true;
  }

  bool LexName() {
    if (!IsNameStart(src_[pos_])) return false;
    std::size_t end = pos_;
    while (end < src_.size() && IsNameChar(src_[end])) ++end;
    Emit(TokenType::kName, pos_, src_.substr(pos_, end - pos_));
    pos_ = end;
    return true;
  }

  bool LexString() {
    const char quote = src_[pos_];
    if (quote != '\'' && quote != '"') return false;
    std::size_t end = pos_ + 1;
    while (end < src_.size() && src_[end] != quote) end += src_[end] == '\\' ? 2 : 1;
    if (end >= src_.size()) return false;  // unterminated: reported as an unexpected char
    Emit(TokenType::kString, pos_, Unescape(pos_ + 1, end));
    pos_ = end + 1;
    return true;
  }

  // Python's `.encode("ascii", "backslashreplace").decode("unicode-escape")`, which is how
  // jinja2 unescapes string literals.
  std::string Unescape(std::size_t begin, std::size_t end) const {
    std::string out;
    for (std::size_t i = begin; i < end;) {
      if (src_[i] != '\\') {
        out += src_[i++];
        continue;
      }
      const std::size_t at = i;
      ++i;  // the escape letter; the lexer guarantees one exists
      const char c = src_[i++];
      switch (c) {
        case '\n':
          break;
        case '\\':
        case '\'':
        case '"':
          out += c;
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
          std::uint32_t cp = 0;
          for (int k = 0; k < n; ++k, ++i) {
            const int d = i < end ? HexValue(src_[i]) : -1;
            if (d < 0) Fail(std::string("truncated \\") + c + " escape", at);
            cp = cp * 16 + static_cast<std::uint32_t>(d);
          }
          if (cp > 0x10FFFF) Fail("illegal Unicode character", at);
          if (cp >= 0xD800 && cp <= 0xDFFF) Fail("surrogate escapes are not supported", at);
          AppendUtf8(out, cp);
          break;
        }
        case 'N':
          Fail("\\N{...} escapes are not supported", at);
        default:
          if (c >= '0' && c <= '7') {
            std::uint32_t cp = static_cast<std::uint32_t>(c - '0');
            for (int k = 0; k < 2 && i < end && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i) {
              cp = cp * 8 + static_cast<std::uint32_t>(src_[i] - '0');
            }
            AppendUtf8(out, cp);
          } else if (static_cast<unsigned char>(c) >= 0x80) {
            // backslashreplace turned the character into its \x/\u/\U escape, whose
            // backslash the preceding one escapes: the text of the escape remains.
            std::uint32_t cp = 0;
            const std::size_t len = DecodeUtf8(src_, i - 1, &cp);
            i = i - 1 + len;
            char buf[16];
            std::snprintf(buf, sizeof(buf),
                          cp <= 0xFF     ? "\\x%02x"
                          : cp <= 0xFFFF ? "\\u%04x"
                                         : "\\U%08x",
                          static_cast<unsigned>(cp));
            out += buf;
          } else {
            out += '\\';
            out += c;
          }
      }
    }
    return out;
  }

  void LexOperator(std::vector<char>& balance) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    static constexpr std::string_view kOne = "+-/*%~[](){}><=.:|,;";
    std::string op;
    for (std::string_view two : kTwo) {
      if (At(pos_, two)) op = two;
    }
    if (op.empty() && kOne.find(src_[pos_]) != npos) op = src_[pos_];
    if (op.empty()) {
      std::uint32_t cp = 0;
      const std::size_t len = DecodeUtf8(src_, pos_, &cp);
      Fail("unexpected char '" + src_.substr(pos_, len) + "'", pos_);
    }
    if (op == "{" || op == "(" || op == "[") {
      balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
    } else if (op == "}" || op == ")" || op == "]") {
      if (balance.empty()) Fail("unexpected '" + op + "'", pos_);
      if (balance.back() != op[0]) {
        Fail("unexpected '" + op + "', expected '" + balance.back() + "'", pos_);
      }
      balance.pop_back();
    }
    Emit(TokenType::kOperator, pos_, op);
    pos_ += op.size();
  }

  std::string src_;
  std::vector<std::size_t> line_starts_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  bool line_starting_ = true;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view source) {
  return Lexer(source).Run();
}

}  // namespace tidelane::engine::jinja
