#include "router/engine/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <string>

#include "router/engine/utf8.h"

namespace tidelane::engine {
namespace {

// The expressions below are copied from llama.cpp, src/llama-vocab.cpp, llm_tokenizer_bpe's
// constructor (https://github.com/ggml-org/llama.cpp, MIT), rewritten as raw strings. Where
// llama.cpp rewrites a tokenizer.json expression for std::regex (which lacks \p{Lu}, (?i:)),
// the original from its comment is used instead, since PCRE2 supports it.

constexpr std::string_view kGpt2Words =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

constexpr std::string_view kDefaultNames[] = {"default", ""};
constexpr std::string_view kDefaultRegexes[] = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Words, R"(\p{N}+)",
                                                R"([0-9][0-9][0-9])"};

constexpr std::string_view kGpt2Names[] = {
    "gpt-2",      "phi-2",    "jina-es",         "jina-de",    "gigachat",     "jina-v2-es",
    "jina-v2-de", "a.x-4.0",  "mellum",          "mpt",        "olmo",         "jais",
    "exaone4",    "trillion", "granite-docling", "jina-v1-en", "jina-v2-code", "roberta-bpe"};
constexpr std::string_view kGpt2Regexes[] = {kGpt2Words};

constexpr std::string_view kLlama3Words =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Names[] = {"llama3",    "llama-v3", "llama-bpe", "falcon3",
                                             "falcon-h1", "pixtral",  "midm-2.0",  "lfm2"};
constexpr std::string_view kLlama3Regexes[] = {kLlama3Words};
// Same expression, without Llama 3's ignore_merges and add_bos defaults.
constexpr std::string_view kDbrxNames[] = {"dbrx", "smaug-bpe"};

// The second expression is Unicode's cased letters spelled out as ranges, as in llama.cpp; the
// code points are written as \x{...} so that no editor or normaliser can change them.
constexpr std::string_view kDeepseekLlmNames[] = {"deepseek-llm"};
constexpr std::string_view kDeepseekLlmRegexes[] = {
    R"([\r\n])",
    R"(\s?[)"
    R"(\x{41}-\x{5A}\x{61}-\x{7A}\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA})"
    R"(\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377})"
    R"(\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5})"
    R"(\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})"
    R"(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59})"
    R"(\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE})"
    R"(\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB})"
    R"(\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128})"
    R"(\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149})"
    R"(\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE})"
    R"(\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})"
    R"(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
    R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943})"
    R"(]+)",
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
    R"(\s+$)",
    R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)",
    R"(\p{N}+)",
};

constexpr std::string_view kDeepseekCoderNames[] = {"deepseek-coder"};
constexpr std::string_view kDeepseekCoderRegexes[] = {
    R"([\r\n])",    R"(\s?\p{L}+)",
    R"(\s?\p{P}+)", R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)",
    R"(\p{N})",
};

constexpr std::string_view kFalconNames[] = {"falcon"};
constexpr std::string_view kFalconRegexes[] = {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2Words,
                                               R"([0-9][0-9][0-9])"};

constexpr std::string_view kStarcoderNames[] = {"starcoder", "refact", "command-r", "smollm",
                                                "codeshell", "exaone", "minerva-7b"};
constexpr std::string_view kStarcoderRegexes[] = {R"(\p{N})", kGpt2Words};

constexpr std::string_view kQwen2Names[] = {"qwen2",  "deepseek-r1-qwen", "kormo",   "f2llmv2",
                                            "megrez", "stablelm2",        "hunyuan", "solar-open"};
constexpr std::string_view kQwen2Regexes[] = {
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};

constexpr std::string_view kTekkenNames[] = {"tekken"};
constexpr std::string_view kTekkenRegexes[] = {
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};

constexpr std::string_view kGpt4oNames[] = {"gpt-4o", "llama4"};
constexpr std::string_view kGpt4oRegexes[] = {
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};

constexpr PreTokenizerFamily kFamilies[] = {
    {kDefaultNames, kDefaultRegexes, false, false},
    {kGpt2Names, kGpt2Regexes, false, false},
    {kLlama3Names, kLlama3Regexes, true, true},
    {kDbrxNames, kLlama3Regexes, false, false},
    {kDeepseekLlmNames, kDeepseekLlmRegexes, false, false},
    {kDeepseekCoderNames, kDeepseekCoderRegexes, false, false},
    {kFalconNames, kFalconRegexes, false, false},
    {kStarcoderNames, kStarcoderRegexes, false, false},
    {kQwen2Names, kQwen2Regexes, false, false},
    {kTekkenNames, kTekkenRegexes, true, true},
    {kGpt4oNames, kGpt4oRegexes, false, false},
};

}  // namespace

const PreTokenizerFamily* FindPreTokenizerFamily(std::string_view pre) {
  for (const PreTokenizerFamily& family : kFamilies) {
    for (std::string_view name : family.names) {
      if (name == pre) return &family;
    }
  }
  return nullptr;
}

struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  ~Pattern() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

Result<PreTokenizer> PreTokenizer::Create(std::string_view pre) {
  const PreTokenizerFamily* family = FindPreTokenizerFamily(pre);
  if (family == nullptr) {
    return Error{"unsupported pre-tokenizer '" + std::string(pre) + "'"};
  }
  PreTokenizer result;
  for (std::string_view regex : family->regexes) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // DOLLAR_ENDONLY: '$' means end of piece, as in std::regex's ECMAScript grammar that the
    // expressions were written for (PCRE2 would also match before a final newline).
    auto pattern = std::make_unique<Pattern>();
    pattern->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(),
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error_code,
                                  &error_offset, nullptr);
    if (pattern->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof(message));
      return Error{"pre-tokenizer '" + std::string(pre) + "': regex error at offset " +
                   std::to_string(error_offset) + ": " + reinterpret_cast<const char*>(message)};
    }
    // JIT is an optimisation only: where it is unavailable the interpreter runs the pattern.
    pcre2_jit_compile(pattern->code, PCRE2_JIT_COMPLETE);
    result.patterns_.push_back(std::move(pattern));
  }
  return result;
}

namespace {

// Splits `piece` by `code` into matches and the text between them, as llama.cpp's
// unicode_regex_split_stl does with std::regex_iterator.
void SplitPiece(const pcre2_code* code, pcre2_match_data* match, std::string_view piece,
                std::vector<std::string_view>* out) {
  const auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  std::size_t emitted = 0;
  std::size_t offset = 0;
  while (offset < piece.size()) {
    // The text was validated before splitting, so PCRE2 need not check it again (which would
    // also make long inputs quadratic: the check covers the whole subject on every call).
    int rc = pcre2_match(code, subject, piece.size(), offset, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Very long runs can exhaust JIT's small stack; the interpreter uses the heap instead.
      rc = pcre2_match(code, subject, piece.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       match, nullptr);
    }
    // No match, or a resource limit hit: the rest of the piece stays one piece.
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const std::size_t begin = ovector[0];
    const std::size_t end = ovector[1];
    if (begin < offset || end < begin || end > piece.size()) break;  // never happens; be safe
    if (end == begin) {
      // An empty match produces no piece; move on by one character.
      const std::size_t len = ValidSequenceLength(piece, begin);
      offset = begin + (len == 0 ? 1 : len);
      continue;
    }
    if (begin > emitted) out->push_back(piece.substr(emitted, begin - emitted));
    out->push_back(piece.substr(begin, end - begin));
    emitted = end;
    offset = end;
  }
  if (emitted < piece.size()) out->push_back(piece.substr(emitted));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

}  // namespace

void PreTokenizer::Split(std::string_view text, std::vector<std::string_view>* words) const {
  if (text.empty()) return;
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (const auto& pattern : patterns_) {
    const std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
        pcre2_match_data_create_from_pattern(pattern->code, nullptr));
    if (match == nullptr) continue;  // out of memory: skip this split rather than fail
    next.clear();
    next.reserve(pieces.size() * 2);
    for (std::string_view piece : pieces) SplitPiece(pattern->code, match.get(), piece, &next);
    pieces.swap(next);
  }
  words->insert(words->end(), pieces.begin(), pieces.end());
}

}  // namespace tidelane::engine
