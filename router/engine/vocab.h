// Vocab: a model's tokenizer vocabulary as read from GGUF metadata (tokenizer.ggml.*): token
// texts, scores, types, BPE merge ranks, special token ids and the add-BOS/EOS/space-prefix
// flags. It is data only; Tokenizer (tokenizer.h) does the encoding and decoding.
//
// Loading follows llama.cpp's llama_vocab::impl::load (src/llama-vocab.cpp) for defaults and
// heuristics (special ids per model type, EOT/EOG detection by token text, control types forced
// on end-of-generation tokens) but is stricter about corrupt input: a missing or mistyped token
// list, score/type arrays whose length differs from the token list, unknown token types,
// duplicate token texts, special ids given in the metadata that lie outside the vocabulary,
// malformed byte tokens, or an unknown tokenizer model or pre-tokenizer all give an Error naming
// the file and the problem. Nothing read from the file is trusted before it is checked.
//
// Threading: immutable after FromGguf; every const method is safe from any thread. A Vocab owns
// copies of everything it needs and does not reference the GgufFile it was read from.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "router/engine/gguf.h"
#include "router/engine/result.h"

namespace tidelane::engine {

// "No such token": the value of absent special ids and failed look-ups.
inline constexpr std::int32_t kNoToken = -1;

enum class VocabType {
  kSpm,  // tokenizer.ggml.model == "llama": SentencePiece, scores, byte fallback
  kBpe,  // tokenizer.ggml.model == "gpt2": byte-level BPE with merges and a pre-tokeniser
};

// Token attribute bits, as llama.cpp's llama_token_attr (GGUF token types map onto them).
enum TokenAttr : std::uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLStrip = 1u << 6,  // eat whitespace left of this special token when it is matched
  kAttrRStrip = 1u << 7,  // eat whitespace right of it
};

class Vocab {
 public:
  // Reads and validates the vocabulary of `file`. Errors name file.name() and the problem.
  static Result<Vocab> FromGguf(const GgufFile& file);

  VocabType type() const { return type_; }
  // The GGUF tokenizer.ggml.pre value ("default" when absent).
  const std::string& pre() const { return pre_; }
  std::int32_t size() const { return static_cast<std::int32_t>(texts_.size()); }
  bool Contains(std::int32_t id) const { return id >= 0 && id < size(); }

  // Per-token data; `id` must satisfy Contains(id).
  const std::string& text(std::int32_t id) const { return texts_[id]; }
  float score(std::int32_t id) const { return scores_[id]; }
  std::uint32_t attrs(std::int32_t id) const { return attrs_[id]; }
  bool Has(std::int32_t id, std::uint32_t attr) const { return (attrs_[id] & attr) != 0; }

  // The id whose text is exactly `text`, or kNoToken.
  std::int32_t Find(std::string_view text) const;
  // SentencePiece byte fallback: the id of token "<0xXX>" (or of the one-byte token), or
  // kNoToken when the vocabulary has neither.
  std::int32_t ByteToken(std::uint8_t byte) const { return byte_tokens_[byte]; }
  // BPE merge rank of the pair (left, right); lower merges first. -1 when there is no such
  // merge. `scratch` is a caller-owned buffer reused between calls to avoid allocations.
  int MergeRank(std::string_view left, std::string_view right, std::string* scratch) const;

  std::int32_t bos() const { return bos_; }
  std::int32_t eos() const { return eos_; }
  std::int32_t eot() const { return eot_; }
  std::int32_t eom() const { return eom_; }
  std::int32_t unk() const { return unk_; }
  std::int32_t pad() const { return pad_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // Llama-3-style BPE: a pre-tokenised word that is itself a token is not merged further.
  bool ignore_merges() const { return ignore_merges_; }

  // True for tokens that end generation: EOS, EOT, EOM and the tokens llama.cpp recognises by
  // text (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, ...).
  bool IsEndOfGeneration(std::int32_t id) const;
  const std::vector<std::int32_t>& end_of_generation() const { return eog_; }

  // Control, user-defined and unknown tokens, longest text first (ties by id): the order in
  // which they are matched in text before the normal tokenizer runs.
  const std::vector<std::int32_t>& special_tokens() const { return special_tokens_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StringMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

  Vocab() = default;
  Status Load(const GgufFile& file);
  Status LoadSpecialIds(const GgufFile& file);
  void DetectEndOfGeneration();

  VocabType type_ = VocabType::kSpm;
  std::string pre_ = "default";
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<std::uint32_t> attrs_;
  StringMap text_to_id_;
  StringMap merge_ranks_;  // key: "left right", exactly the GGUF merge string
  std::int32_t byte_tokens_[256] = {};
  std::vector<std::int32_t> special_tokens_;
  std::vector<std::int32_t> eog_;

  std::int32_t bos_ = kNoToken;
  std::int32_t eos_ = kNoToken;
  std::int32_t eot_ = kNoToken;
  std::int32_t eom_ = kNoToken;
  std::int32_t unk_ = kNoToken;
  std::int32_t pad_ = kNoToken;
  std::int32_t sep_ = kNoToken;
  std::int32_t fim_pad_ = kNoToken;
  std::int32_t fim_rep_ = kNoToken;
  std::int32_t fim_sep_ = kNoToken;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool ignore_merges_ = false;
};

}  // namespace tidelane::engine
