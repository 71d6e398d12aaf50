// PreTokenizer: splits text into the words a byte-level BPE tokenizer merges within, using the
// regular expressions of the model family named by GGUF tokenizer.ggml.pre. The expressions
// are llama.cpp's (src/llama-vocab.cpp, llm_tokenizer_bpe) and are run with PCRE2 in UTF + UCP
// mode, so \p{L}, \p{N}, \s and lookahead follow Unicode (PCRE2's tables, not hand-written).
//
// Splitting follows llama.cpp's unicode_regex_split: the expressions are applied in turn, each
// to every piece the previous one produced; within a piece both the matches and the text
// between them become pieces. Lookaround cannot see past the piece being split.
//
// Threading: immutable after Create; Split is safe from any thread (each call has its own
// match data). Move-only: owns the compiled PCRE2 patterns.
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "router/engine/result.h"

namespace tidelane::engine {

struct PreTokenizerFamily {
  std::span<const std::string_view> names;    // tokenizer.ggml.pre values that select it
  std::span<const std::string_view> regexes;  // applied in order
  bool ignore_merges = false;                 // a word that is a whole token is kept as is
  bool add_bos = false;                       // default of add_bos_token for this family
};

// The family for a tokenizer.ggml.pre value ("" means "default"), or nullptr when unsupported.
const PreTokenizerFamily* FindPreTokenizerFamily(std::string_view pre);

class PreTokenizer {
 public:
  // Compiles the family's expressions. Fails for an unknown `pre` or a PCRE2 compile error.
  static Result<PreTokenizer> Create(std::string_view pre);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Appends the words of `text` to `words` as views into `text`, covering it exactly, in
  // order, none empty. `text` must be valid UTF-8 (see utf8.h RepairUtf8); invalid input is
  // not examined by PCRE2 and would be undefined behaviour.
  void Split(std::string_view text, std::vector<std::string_view>* words) const;

 private:
  struct Pattern;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Pattern>> patterns_;
};

}  // namespace tidelane::engine
