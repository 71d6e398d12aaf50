// UTF-8 text helpers with Python's str semantics, which jinja2 templates see: lengths and
// indices count code points, and whitespace is what str.isspace() accepts (the Unicode set,
// which is also what `\s` and str.strip() use), not just ASCII.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tidelane::engine::jinja {

// Decodes the code point starting at s[i] (i < s.size()); returns its byte length. A byte that
// does not start a valid sequence decodes as itself (length 1), so any input makes progress.
std::size_t DecodeUtf8(std::string_view s, std::size_t i, std::uint32_t* cp);
void AppendUtf8(std::string& out, std::uint32_t cp);

// Byte length of the Python whitespace character at s[i], or 0.
std::size_t SpaceAt(std::string_view s, std::size_t i);
// Byte length of the Python whitespace character that ends just before s[end], or 0.
std::size_t SpaceBefore(std::string_view s, std::size_t end);
std::string_view StripSpace(std::string_view s, bool left, bool right);
// Strips any of the code points in `chars` (Python's str.strip(chars)).
std::string_view StripChars(std::string_view s, std::string_view chars, bool left, bool right);

// Byte offset of every code point, plus s.size() at the end (so the result has Count()+1
// entries).
std::vector<std::size_t> CharOffsets(std::string_view s);
std::size_t CharCount(std::string_view s);

// Python's str.upper()/lower() for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic
// (with ß -> SS and İ -> i̇); other scripts are left as they are, and Greek final sigma is not
// special-cased.
std::string Upper(std::string_view s);
std::string Lower(std::string_view s);
void AppendUpper(std::string& out, std::uint32_t cp);
void AppendLower(std::string& out, std::uint32_t cp);
// Whether the code point has case (what Python's title() and capitalize() key on).
bool IsCased(std::uint32_t cp);
bool IsAsciiAlpha(char c);

// Whether CPython's repr() prints the code point as is (str.isprintable()); approximated for
// non-ASCII by the separator, control, format and private-use ranges.
bool IsPrintable(std::uint32_t cp);

}  // namespace tidelane::engine::jinja
