#include "router/engine/jinja_text.h"

#include <algorithm>

namespace tidelane::engine::jinja {

std::size_t DecodeUtf8(std::string_view s, std::size_t i, std::uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  *cp = b0;
  if (b0 < 0x80) return 1;
  int len = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, *cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, *cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, *cp = b0 & 0x07, min = 0x10000;
  } else {
    *cp = b0;
    return 1;
  }
  if (i + len > s.size()) {
    *cp = b0;
    return 1;
  }
  std::uint32_t v = *cp;
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      *cp = b0;
      return 1;
    }
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    *cp = b0;
    return 1;
  }
  *cp = v;
  return len;
}

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

bool IsSpace(std::uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace

std::size_t SpaceAt(std::string_view s, std::size_t i) {
  if (i >= s.size()) return 0;
  std::uint32_t cp = 0;
  const std::size_t len = DecodeUtf8(s, i, &cp);
  if (len == 1 && static_cast<unsigned char>(s[i]) >= 0x80) return 0;  // invalid byte
  return IsSpace(cp) ? len : 0;
}

std::size_t SpaceBefore(std::string_view s, std::size_t end) {
  // Whitespace characters are at most 3 bytes long in UTF-8.
  for (std::size_t len = 1; len <= 3 && len <= end; ++len) {
    const std::size_t start = end - len;
    if (len > 1 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) continue;
    if (SpaceAt(s, start) == len) return len;
    if ((static_cast<unsigned char>(s[start]) & 0xC0) != 0x80) return 0;
  }
  return 0;
}

std::string_view StripSpace(std::string_view s, bool left, bool right) {
  std::size_t b = 0, e = s.size();
  if (left) {
    while (std::size_t n = SpaceAt(s, b)) b += n;
  }
  if (right) {
    while (e > b) {
      const std::size_t n = SpaceBefore(s, e);
      if (n == 0) break;
      e -= n;
    }
  }
  return s.substr(b, e - b);
}

std::string_view StripChars(std::string_view s, std::string_view chars, bool left, bool right) {
  std::vector<std::uint32_t> set;
  for (std::size_t i = 0; i < chars.size();) {
    std::uint32_t cp = 0;
    i += DecodeUtf8(chars, i, &cp);
    set.push_back(cp);
  }
  const auto in_set = [&](std::uint32_t cp) {
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  const std::vector<std::size_t> offsets = CharOffsets(s);
  std::size_t b = 0, e = offsets.size() - 1;  // code point indices
  std::uint32_t cp = 0;
  if (left) {
    while (b < e && (DecodeUtf8(s, offsets[b], &cp), in_set(cp))) ++b;
  }
  if (right) {
    while (e > b && (DecodeUtf8(s, offsets[e - 1], &cp), in_set(cp))) --e;
  }
  return s.substr(offsets[b], offsets[e] - offsets[b]);
}

std::vector<std::size_t> CharOffsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  offsets.reserve(s.size() + 1);
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    i += DecodeUtf8(s, i, &cp);
  }
  offsets.push_back(s.size());
  return offsets;
}

std::size_t CharCount(std::string_view s) {
  std::size_t n = 0;
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size(); ++n) i += DecodeUtf8(s, i, &cp);
  return n;
}

namespace {

// Simple one-to-one mappings; 0 when the code point has no other case here.
std::uint32_t SimpleUpper(std::uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return 0;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 0x20;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) {
    return c % 2 == 1 ? c - 1 : 0;
  }
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 0 ? c - 1 : 0;
  if (c == 0x131) return 'I';
  if (c == 0x17F) return 'S';
  if (c >= 0x3B1 && c <= 0x3C9) return c == 0x3C2 ? 0x3A3 : c - 0x20;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 0x25;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 0x3F;
  if (c >= 0x430 && c <= 0x44F) return c - 0x20;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  return 0;
}

std::uint32_t SimpleLower(std::uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return 0;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) {
    return c % 2 == 0 ? c + 1 : 0;
  }
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1 ? c + 1 : 0;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return 0;
}

template <typename Fn>
std::string MapChars(std::string_view s, Fn append) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (len == 1 && cp >= 0x80) {
      out += s[i];  // not UTF-8: pass the byte through
    } else {
      append(out, cp);
    }
    i += len;
  }
  return out;
}

}  // namespace

void AppendUpper(std::string& out, std::uint32_t cp) {
  if (cp == 0xDF) {
    out += "SS";
    return;
  }
  const std::uint32_t u = SimpleUpper(cp);
  AppendUtf8(out, u != 0 ? u : cp);
}

void AppendLower(std::string& out, std::uint32_t cp) {
  if (cp == 0x130) {
    out += "i\u0307";
    return;
  }
  const std::uint32_t l = SimpleLower(cp);
  AppendUtf8(out, l != 0 ? l : cp);
}

std::string Upper(std::string_view s) {
  return MapChars(s, AppendUpper);
}
std::string Lower(std::string_view s) {
  return MapChars(s, AppendLower);
}

bool IsCased(std::uint32_t cp) {
  return SimpleUpper(cp) != 0 || SimpleLower(cp) != 0 || cp == 0xDF || cp == 0x130;
}

bool IsAsciiAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool IsPrintable(std::uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  if (cp <= 0xA0 || cp == 0xAD) return false;  // C1 controls, no-break space, soft hyphen
  if (IsSpace(cp)) return false;               // separators other than ' '
  if ((cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
      (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) ||
      (cp >= 0x0600 && cp <= 0x0605) || cp == 0x061C || cp == 0x06DD || cp == 0x070F ||
      cp == 0x180E) {
    return false;  // format characters
  }
  if ((cp >= 0xD800 && cp <= 0xF8FF) || cp >= 0xF0000) return false;  // surrogates, private use
  if ((cp & 0xFFFE) == 0xFFFE) return false;                          // noncharacters
  return true;
}

}  // namespace tidelane::engine::jinja
