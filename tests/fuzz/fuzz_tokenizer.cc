// Fuzz target: the tokenizers (router/engine/tokenizer.h) with the gpt-2 and llama-spm fixture
// vocabularies must encode any bytes without crashing, produce ids inside the vocabulary,
// decode back to the input (byte for byte for SentencePiece, after U+FFFD repair for BPE) and
// stream-decode to valid UTF-8 equal to the repaired Decode. Arbitrary id sequences must decode
// without crashing too.
//
// Input: byte 0 picks the vocabulary and flags, the rest is the text (and, read as int32s, the
// ids). The fixtures are found in $TIDELANE_SHARED_DIR, else in the compiled-in shared dir.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "router/engine/gguf.h"
#include "router/engine/tokenizer.h"
#include "router/engine/utf8.h"

using namespace tidelane::engine;

namespace {

std::unique_ptr<Tokenizer> Load(const char* vocab) {
  const char* env = std::getenv("TIDELANE_SHARED_DIR");
  const std::string shared = env != nullptr ? env : TIDELANE_SHARED_DIR;
  auto file = GgufFile::Open(shared + "/fixtures/tokenizers/ggml-vocab-" + vocab + ".gguf");
  if (!file) __builtin_trap();
  auto tokenizer = Tokenizer::FromGguf(**file);
  if (!tokenizer) __builtin_trap();
  return std::move(tokenizer).value();
}

// Loaded once and never modified afterwards.
const Tokenizer& Vocabulary(bool spm) {
  static const std::unique_ptr<Tokenizer> gpt2 = Load("gpt-2");
  static const std::unique_ptr<Tokenizer> llama = Load("llama-spm");
  return spm ? *llama : *gpt2;
}

// SentencePiece writes spaces as U+2581, so a U+2581 in the text comes back as a space.
std::string SpmSpelling(std::string_view text) {
  static constexpr std::string_view kMarker = "\xE2\x96\x81";
  std::string out;
  for (std::size_t pos = 0; pos < text.size();) {
    if (text.substr(pos, kMarker.size()) == kMarker) {
      out += ' ';
      pos += kMarker.size();
    } else {
      out += text[pos++];
    }
  }
  return out;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const bool spm = (mode & 1) != 0;
  const bool add_special = (mode & 2) != 0;
  const bool parse_special = (mode & 4) != 0;
  const bool render_special = (mode & 8) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const Tokenizer& tok = Vocabulary(spm);

  const std::vector<std::int32_t> ids = tok.Encode(text, add_special, parse_special);
  bool plain = true;  // only text tokens: the round trip must be exact
  for (std::int32_t id : ids) {
    Check(id >= 0 && id < tok.vocab_size());
    if (tok.vocab().Has(id, kAttrControl | kAttrUnknown | kAttrUserDefined)) plain = false;
  }
  const std::string decoded = tok.Decode(ids, render_special);
  if (plain) Check(decoded == (spm ? SpmSpelling(text) : RepairUtf8(text)));

  StreamingDecoder stream(tok, render_special);
  std::string streamed;
  for (std::int32_t id : ids) streamed += stream.Push(id);
  streamed += stream.Finish();
  Check(IsValidUtf8(streamed));
  Check(streamed == RepairUtf8(decoded));

  // Arbitrary ids, in and out of range.
  std::vector<std::int32_t> raw((size - 1) / sizeof(std::int32_t));
  if (!raw.empty()) std::memcpy(raw.data(), data + 1, raw.size() * sizeof(std::int32_t));
  const std::string any = tok.Decode(raw, render_special);
  StreamingDecoder any_stream(tok, render_special);
  std::string any_streamed;
  for (std::int32_t id : raw) any_streamed += any_stream.Push(id);
  any_streamed += any_stream.Finish();
  Check(any_streamed == RepairUtf8(any));
  return 0;
}
