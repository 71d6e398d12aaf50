// UTF-8 helpers for the tokenizers: strict validation (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), repair of invalid input, and the completeness test the
// streaming detokeniser needs. Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tidelane::engine {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length in bytes of the well-formed UTF-8 sequence starting at text[pos], or 0 when the bytes
// there do not start one (stray continuation byte, invalid lead, overlong, surrogate, truncated).
std::size_t ValidSequenceLength(std::string_view text, std::size_t pos);

// The sequence length a lead byte announces (1 for ASCII and for bytes that cannot lead, so a
// caller walking byte by byte always advances). llama.cpp splits SentencePiece input this way.
std::size_t LeadByteLength(unsigned char lead);

bool IsValidUtf8(std::string_view text);

// Copy of `text` in which every byte that is not part of a well-formed sequence is replaced by
// U+FFFD (one replacement per bad byte, as llama.cpp's unicode_cpts_from_utf8 does).
std::string RepairUtf8(std::string_view text);

// Appends the UTF-8 encoding of `cp` (which must be <= 0x10FFFF) to `out`.
void AppendUtf8(char32_t cp, std::string* out);

// Decodes the well-formed sequence of `len` bytes at text[pos] (as given by
// ValidSequenceLength).
char32_t DecodeSequence(std::string_view text, std::size_t pos, std::size_t len);

// Number of bytes at the end of `text` that form the beginning of a well-formed sequence still
// missing its last bytes (0..3). A streaming decoder holds these back until more arrive.
std::size_t IncompleteTailLength(std::string_view text);

}  // namespace tidelane::engine
