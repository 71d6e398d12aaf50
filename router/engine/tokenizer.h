// Tokenizer: text <-> token ids for a model's vocabulary, compatible with llama.cpp (and so with
// the Hugging Face tokenizers the models were trained with; shared/fixtures/tokenizers holds the
// test vectors). Two algorithms, chosen by GGUF tokenizer.ggml.model:
//   "llama"  SentencePiece: spaces become U+2581, the highest-scoring adjacent pair is merged
//            first, text with no token falls back to <0xXX> byte tokens; with add_space_prefix
//            (default true) a space is put before text that starts the prompt or follows a
//            special token.
//   "gpt2"   byte-level BPE: the text is split into words by the family's pre-tokeniser
//            (pretokenizer.h), each word's bytes are spelt with GPT-2's byte-to-unicode table
//            and merged by rank from tokenizer.ggml.merges.
//
// Special tokens: with parse_special, control tokens (e.g. <|im_start|>) written in the text are
// emitted as their ids; user-defined tokens are always matched, as in llama.cpp. Longer special
// tokens are matched first.
//
// Input that is not valid UTF-8 never fails: SentencePiece keeps every byte (byte fallback, so
// decode(encode(x)) == x for any bytes, U+2581 and special-token text aside); BPE replaces each
// invalid byte by U+FFFD first, as llama.cpp does.
//
// Threading: a Tokenizer is immutable after FromGguf; Encode, Decode and the accessors are safe
// to call concurrently from any thread. A StreamingDecoder is single-threaded state that
// refers to its Tokenizer, which must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "router/engine/gguf.h"
#include "router/engine/result.h"
#include "router/engine/vocab.h"

namespace tidelane::engine {

class Tokenizer {
 public:
  // Builds the tokenizer of `file`'s vocabulary. Fails (with the file's name and the reason)
  // when the file has no vocabulary or a corrupt or unsupported one. The tokenizer copies what
  // it needs: `file` may be closed afterwards.
  static Result<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);

  virtual ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`. With `add_special`, BOS is put first when the vocabulary asks for it
  // (tokenizer.ggml.add_bos_token; default true for SentencePiece, false for most BPE
  // families) and EOS last when it asks for that. With `parse_special`, control tokens written
  // in the text become their ids; without it they are tokenized as plain text. Never fails;
  // the empty text gives no tokens (or just BOS). Cost: O(n log n) in the text length, plus
  // one scan of the text per special token of the vocabulary.
  std::vector<std::int32_t> Encode(std::string_view text, bool add_special,
                                   bool parse_special) const;

  // The bytes `tokens` stand for, concatenated. Control and unknown tokens (BOS, EOS, <unk>,
  // <|im_end|>...) produce nothing unless `render_special`. When the vocabulary adds a space
  // prefix, one leading space is removed from the first token that is not a control token:
  // the space Encode put before the text, so that Decode(Encode(x, add_special, false)) == x
  // for SentencePiece (U+2581 in x excepted: it comes back as a space). Ids outside the
  // vocabulary produce nothing. The result is not necessarily valid UTF-8 (a token sequence
  // may end inside a character); StreamingDecoder repairs that. No clean-up of spaces before
  // punctuation is done (Hugging Face's clean_up_tokenization_spaces).
  std::string Decode(std::span<const std::int32_t> tokens, bool render_special = false) const;

  // The bytes one token stands for when it is not first (no space-prefix removal), including
  // the text of control tokens; empty for ids outside the vocabulary. Valid as long as the
  // Tokenizer.
  std::string_view TokenBytes(std::int32_t id) const;
  // The token's text as stored in the vocabulary ("▁Hello", "ĠHello", "<0x0A>"); empty for
  // ids outside it. Valid as long as the Tokenizer.
  std::string_view Piece(std::int32_t id) const;

  const Vocab& vocab() const { return vocab_; }
  std::int32_t vocab_size() const { return vocab_.size(); }
  std::int32_t bos() const { return vocab_.bos(); }  // kNoToken when there is none
  std::int32_t eos() const { return vocab_.eos(); }
  std::int32_t eot() const { return vocab_.eot(); }
  // True for EOS, EOT, EOM and the other tokens that end a model's turn.
  bool IsEndOfGeneration(std::int32_t id) const { return vocab_.IsEndOfGeneration(id); }
  // True for tokens whose text is hidden unless rendered specially (control, unknown).
  bool IsControl(std::int32_t id) const;

 protected:
  explicit Tokenizer(Vocab vocab);

  // Appends the ids of a run of plain text (no special tokens in it). `starts_segment` is
  // true at the start of the prompt and right after a special token (SentencePiece then adds
  // its space prefix).
  virtual void EncodeText(std::string_view text, bool starts_segment,
                          std::vector<std::int32_t>* out) const = 0;
  // The bytes of a normal token's text (SentencePiece: U+2581 -> space; BPE: unicode -> bytes).
  virtual std::string NormalTokenBytes(std::string_view text) const = 0;
  // Builds the TokenBytes cache; called once by the factory after construction.
  void BuildByteCache();

 private:
  // Defined in tokenizer_spm.cc and tokenizer_bpe.cc.
  static Result<std::unique_ptr<Tokenizer>> NewSpm(Vocab vocab);
  static Result<std::unique_ptr<Tokenizer>> NewBpe(Vocab vocab);

  Vocab vocab_;
  std::vector<std::string> bytes_;  // TokenBytes per id
};

// Turns a stream of token ids into text one token at a time, emitting only complete UTF-8: a
// character split across tokens is held back until its last byte arrives. Bytes that can never
// become valid UTF-8 are replaced by U+FFFD at once; a character still incomplete when Finish
// is called becomes U+FFFD then. Everything it returns is valid UTF-8, and the concatenation of
// its results equals Decode of the same tokens after that repair.
class StreamingDecoder {
 public:
  // `tokenizer` must outlive the decoder. See Tokenizer::Decode for `render_special`.
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = false);

  // The text that `token` completes; may be empty.
  std::string Push(std::int32_t token);
  // Flushes what is held back (as U+FFFD) and resets for a new sequence.
  std::string Finish();
  // The tokens pushed from now on continue a text already under way (an answer resumed on
  // another node): a leading space is kept, as it would have been had the text not stopped.
  void Continue() { at_start_ = false; }
  // Bytes held back, waiting for the rest of a character.
  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace tidelane::engine
