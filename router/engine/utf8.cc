#include "router/engine/utf8.h"

namespace tidelane::engine {
namespace {

bool IsContinuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// The allowed range of the second byte for a lead byte (Unicode Table 3-7), which rules out
// overlong forms, surrogates and code points above U+10FFFF; {0, 0} for invalid leads.
struct SecondByteRange {
  unsigned char lo;
  unsigned char hi;
  std::size_t length;
};

SecondByteRange RangeFor(unsigned char lead) {
  if (lead < 0x80) return {0, 0, 1};
  if (lead < 0xC2) return {0, 0, 0};
  if (lead < 0xE0) return {0x80, 0xBF, 2};
  if (lead == 0xE0) return {0xA0, 0xBF, 3};
  if (lead == 0xED) return {0x80, 0x9F, 3};
  if (lead < 0xF0) return {0x80, 0xBF, 3};
  if (lead == 0xF0) return {0x90, 0xBF, 4};
  if (lead < 0xF4) return {0x80, 0xBF, 4};
  if (lead == 0xF4) return {0x80, 0x8F, 4};
  return {0, 0, 0};
}

}  // namespace

std::size_t ValidSequenceLength(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return 0;
  const auto lead = static_cast<unsigned char>(text[pos]);
  const SecondByteRange r = RangeFor(lead);
  if (r.length <= 1) return r.length;
  if (text.size() - pos < r.length) return 0;
  const auto second = static_cast<unsigned char>(text[pos + 1]);
  if (second < r.lo || second > r.hi) return 0;
  for (std::size_t i = 2; i < r.length; ++i) {
    if (!IsContinuation(static_cast<unsigned char>(text[pos + i]))) return 0;
  }
  return r.length;
}

std::size_t LeadByteLength(unsigned char lead) {
  static constexpr std::size_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[lead >> 4];
}

bool IsValidUtf8(std::string_view text) {
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t len = ValidSequenceLength(text, pos);
    if (len == 0) return false;
    pos += len;
  }
  return true;
}

std::string RepairUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t len = ValidSequenceLength(text, pos);
    if (len == 0) {
      out += kReplacementUtf8;
      ++pos;
    } else {
      out.append(text.substr(pos, len));
      pos += len;
    }
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t DecodeSequence(std::string_view text, std::size_t pos, std::size_t len) {
  const auto b = [&](std::size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(text[pos + i]));
  };
  switch (len) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    case 4:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    default:
      return kReplacementChar;
  }
}

std::size_t IncompleteTailLength(std::string_view text) {
  // A sequence is at most 4 bytes, so only the last 3 bytes can start an incomplete one.
  const std::size_t first = text.size() > 3 ? text.size() - 3 : 0;
  for (std::size_t start = first; start < text.size(); ++start) {
    const auto lead = static_cast<unsigned char>(text[start]);
    const SecondByteRange r = RangeFor(lead);
    const std::size_t have = text.size() - start;
    if (r.length < 2 || have >= r.length) continue;
    // The bytes present must be a valid prefix of a sequence of r.length bytes.
    bool ok = true;
    if (have >= 2) {
      const auto second = static_cast<unsigned char>(text[start + 1]);
      ok = second >= r.lo && second <= r.hi;
    }
    for (std::size_t i = 2; ok && i < have; ++i) {
      ok = IsContinuation(static_cast<unsigned char>(text[start + i]));
    }
    if (ok) return have;
  }
  return 0;
}

}  // namespace tidelane::engine
