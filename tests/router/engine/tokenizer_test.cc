// Tokenizer tests against the real fixture vocabularies in ../shared/fixtures/tokenizers
// (llama.cpp's test models): round trips, special tokens, BOS/EOG, the streaming decoder and
// corrupt vocabularies. The test vectors themselves are checked byte for byte by the
// tokenizer_vectors_* tests (tidelane-tokenize --vocab-test).
#include "router/engine/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "router/engine/gguf.h"
#include "router/engine/pretokenizer.h"
#include "router/engine/utf8.h"
#include "tests/router/engine/gguf_builder.h"

namespace tidelane::engine {
namespace {

std::string FixturePath(const std::string& name) {
  return std::string(TIDELANE_SHARED_DIR) + "/fixtures/tokenizers/ggml-vocab-" + name + ".gguf";
}

// Loads each fixture once for the whole test program.
const Tokenizer& Fixture(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto file = GgufFile::Open(FixturePath(name));
    EXPECT_TRUE(file.ok()) << file.error();
    auto tokenizer = Tokenizer::FromGguf(**file);
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.error();
    slot = std::move(tokenizer).value();
  }
  return *slot;
}

const std::vector<std::string>& Samples() {
  static const std::vector<std::string> samples = {
      "Hello world",
      " Hello world",
      "  two leading spaces",
      "trailing spaces   ",
      "tab\tand\nnewlines\n\n",
      "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8"
      "apple",
      "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE \xD0\xBD\xD0\xB0 \xD0\x91\xD1\x8A\xD0\xBB",  // Cyrillic
      "3333333 1.5e10 0x1F",
      "    int main() {\n        return 0;\n    }\n",
      " ",
      "",
  };
  return samples;
}

TEST(TokenizerTest, SentencePieceRoundTripsWithSpacePrefixRule) {
  for (const char* name : {"llama-spm", "phi-3"}) {
    const Tokenizer& tok = Fixture(name);
    for (const std::string& text : Samples()) {
      EXPECT_EQ(tok.Decode(tok.Encode(text, false, false)), text) << name << ": '" << text << "'";
      EXPECT_EQ(tok.Decode(tok.Encode(text, true, false)), text) << name << ": '" << text << "'";
    }
  }
}

TEST(TokenizerTest, SentencePieceAddsSpacePrefixAndBos) {
  const Tokenizer& tok = Fixture("llama-spm");
  const std::vector<std::int32_t> ids = tok.Encode("Hello", true, false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], tok.bos());
  EXPECT_EQ(tok.Piece(ids[1]), "\xE2\x96\x81Hello");
  EXPECT_EQ(tok.TokenBytes(ids[1]), " Hello");
  EXPECT_TRUE(tok.Encode("", false, false).empty());
  EXPECT_EQ(tok.Encode("", true, false), std::vector<std::int32_t>{tok.bos()});
}

TEST(TokenizerTest, SentencePieceKeepsInvalidBytes) {
  const Tokenizer& tok = Fixture("llama-spm");
  const std::string text = "a\xFF\xE4\xB8 b\xC0\x80 \xED\xA0\x80 end\xF0\x9F";
  EXPECT_EQ(tok.Decode(tok.Encode(text, true, false)), text);
}

TEST(TokenizerTest, BpeRoundTrips) {
  for (const char* name : {"gpt-2", "deepseek-llm"}) {
    const Tokenizer& tok = Fixture(name);
    for (const std::string& text : Samples()) {
      EXPECT_EQ(tok.Decode(tok.Encode(text, true, false)), text) << name << ": '" << text << "'";
    }
  }
}

TEST(TokenizerTest, BpeReplacesInvalidBytes) {
  const Tokenizer& tok = Fixture("gpt-2");
  EXPECT_EQ(tok.Decode(tok.Encode("a\xFF"
                                  "b",
                                  false, false)),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(tok.Decode(tok.Encode("\xE4\xB8", false, false)), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerTest, BosFollowsTheVocabulary) {
  EXPECT_EQ(Fixture("gpt-2").Encode("Hi", true, false), Fixture("gpt-2").Encode("Hi", false, false))
      << "gpt-2 does not ask for BOS";
  const Tokenizer& deepseek = Fixture("deepseek-llm");  // add_bos_token = true
  const std::vector<std::int32_t> ids = deepseek.Encode("Hi", true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 100000);
  EXPECT_EQ(deepseek.bos(), 100000);
}

TEST(TokenizerTest, ControlTokensAreParsedOnlyWhenAsked) {
  const Tokenizer& tok = Fixture("gpt-2");
  const std::string text = "a<|endoftext|>b";
  const std::vector<std::int32_t> special = tok.Encode(text, false, true);
  EXPECT_EQ(special, (std::vector<std::int32_t>{64, 50256, 65}));
  const std::vector<std::int32_t> plain = tok.Encode(text, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok.Decode(plain), text);
  // Control tokens are hidden when decoding unless rendered.
  EXPECT_EQ(tok.Decode(special), "ab");
  EXPECT_EQ(tok.Decode(special, true), text);
}

TEST(TokenizerTest, PhiThreeChatTokens) {
  const Tokenizer& tok = Fixture("phi-3");
  const std::vector<std::int32_t> ids = tok.Encode("<|user|>\nHi<|end|>", false, true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 32010);
  EXPECT_EQ(ids.back(), 32007);
  EXPECT_TRUE(tok.IsEndOfGeneration(32007));  // <|end|>
  EXPECT_TRUE(tok.IsEndOfGeneration(32000));  // <|endoftext|>, the EOS
  EXPECT_FALSE(tok.IsEndOfGeneration(32010));
  // Unparsed, the same text is plain text.
  const std::vector<std::int32_t> plain = tok.Encode("<|user|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 32010), 0);
  // "</s>" is a user-defined token in this vocabulary: always matched, as in llama.cpp.
  const std::vector<std::int32_t> user = tok.Encode("</s>", false, false);
  EXPECT_EQ(user, std::vector<std::int32_t>{2});
}

TEST(TokenizerTest, EndOfGeneration) {
  EXPECT_TRUE(Fixture("llama-spm").IsEndOfGeneration(2));
  EXPECT_FALSE(Fixture("llama-spm").IsEndOfGeneration(1));
  EXPECT_TRUE(Fixture("gpt-2").IsEndOfGeneration(50256));
  EXPECT_TRUE(Fixture("deepseek-llm").IsEndOfGeneration(100001));
  EXPECT_FALSE(Fixture("deepseek-llm").IsEndOfGeneration(-1));
}

TEST(TokenizerTest, DecodeSkipsIdsOutsideTheVocabulary) {
  const Tokenizer& tok = Fixture("gpt-2");
  const std::vector<std::int32_t> ids = {-5, 64, 1 << 30, 65};
  EXPECT_EQ(tok.Decode(ids), "ab");
  EXPECT_EQ(tok.TokenBytes(-1), "");
  EXPECT_EQ(tok.Piece(tok.vocab_size()), "");
}

TEST(TokenizerTest, StreamingHoldsBackSplitCharacters) {
  const Tokenizer& tok = Fixture("llama-spm");
  const std::string text = "llama \xF0\x9F\xA6\x99 \xE4\xB8\xAD!";  // 🦙 is four byte tokens here
  const std::vector<std::int32_t> ids = tok.Encode(text, true, false);
  StreamingDecoder decoder(tok);
  std::string streamed;
  bool held_back = false;
  for (std::int32_t id : ids) {
    const std::string part = decoder.Push(id);
    EXPECT_TRUE(IsValidUtf8(part)) << "emitted a partial character";
    held_back = held_back || decoder.pending_bytes() > 0;
    streamed += part;
  }
  streamed += decoder.Finish();
  EXPECT_TRUE(held_back) << "the emoji should have been split across byte tokens";
  EXPECT_EQ(streamed, text);
}

TEST(TokenizerTest, StreamingReplacesInvalidBytes) {
  const Tokenizer& tok = Fixture("llama-spm");
  const std::int32_t ff = tok.vocab().ByteToken(0xFF);
  const std::int32_t e4 = tok.vocab().ByteToken(0xE4);
  const std::int32_t b8 = tok.vocab().ByteToken(0xB8);
  const std::int32_t a = tok.vocab().Find("a");
  ASSERT_NE(ff, kNoToken);
  ASSERT_NE(a, kNoToken);
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.Push(ff), "\xEF\xBF\xBD");  // can never be UTF-8: replaced at once
  EXPECT_EQ(decoder.Push(e4), "");              // may still become a character
  EXPECT_EQ(decoder.Push(b8), "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  EXPECT_EQ(decoder.Push(a),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "a");  // it did not
  EXPECT_EQ(decoder.Push(e4), "");
  EXPECT_EQ(decoder.Finish(), "\xEF\xBF\xBD");  // incomplete at the end
  EXPECT_EQ(decoder.pending_bytes(), 0u);
}

TEST(TokenizerTest, StreamingSkipsControlTokensUnlessAsked) {
  const Tokenizer& tok = Fixture("gpt-2");
  const std::vector<std::int32_t> ids = {64, 50256, 65};
  StreamingDecoder plain(tok);
  StreamingDecoder rendered(tok, true);
  std::string a, b;
  for (std::int32_t id : ids) {
    a += plain.Push(id);
    b += rendered.Push(id);
  }
  EXPECT_EQ(a, "ab");
  EXPECT_EQ(b, "a<|endoftext|>b");
}

TEST(TokenizerTest, LongPromptsEncodeQuickly) {
  std::string text;
  while (text.size() < 100000) text += "The quick brown fox, jumps over 1234 lazy dogs! ";
  const std::string spaces = "x" + std::string(100000, ' ') + "y";
  const std::string letters(100000, 'a');
  for (const char* name : {"llama-spm", "gpt-2", "deepseek-llm"}) {
    const Tokenizer& tok = Fixture(name);
    for (const std::string* input : std::vector<const std::string*>{&text, &spaces, &letters}) {
      const auto start = std::chrono::steady_clock::now();
      const std::vector<std::int32_t> ids = tok.Encode(*input, false, false);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_FALSE(ids.empty());
      EXPECT_LT(seconds, 5.0) << name;
      EXPECT_EQ(tok.Decode(ids), *input) << name;
    }
  }
}

std::vector<std::string> Words(std::string_view pre, std::string_view text) {
  Result<PreTokenizer> p = PreTokenizer::Create(pre);
  EXPECT_TRUE(p.ok()) << p.error();
  if (!p) return {};
  std::vector<std::string_view> views;
  p->Split(text, &views);
  return std::vector<std::string>(views.begin(), views.end());
}

using Strings = std::vector<std::string>;

TEST(TokenizerTest, PreTokenizerFamilies) {
  for (const char* name :
       {"default", "gpt-2", "llama3", "llama-bpe", "dbrx", "deepseek-llm", "deepseek-coder",
        "falcon", "starcoder", "smollm", "qwen2", "stablelm2", "tekken", "gpt-4o"}) {
    EXPECT_TRUE(PreTokenizer::Create(name).ok()) << name;
  }
  EXPECT_FALSE(PreTokenizer::Create("no-such-family").ok());
  EXPECT_EQ(Words("gpt-2", "Hello world  foo's"), (Strings{"Hello", " world", " ", " foo", "'s"}));
  EXPECT_EQ(Words("llama3", "I'M 12345"), (Strings{"I", "'M", " ", "123", "45"}));
  EXPECT_EQ(Words("qwen2", "x 123"), (Strings{"x", " ", "1", "2", "3"}));
  EXPECT_EQ(Words("deepseek-llm", "abc 123\n"), (Strings{"abc", " ", "123", "\n"}));
  EXPECT_EQ(Words("deepseek-coder", "ab, 12"), (Strings{"ab", ",", " ", "1", "2"}));
  EXPECT_EQ(Words("smollm", "v12 ok"), (Strings{"v", "1", "2", " ok"}));
  EXPECT_EQ(Words("tekken", "HelloWorld  x"), (Strings{"Hello", "World", " ", " x"}));
  // Unicode classes come from PCRE2: Cyrillic letters are \p{L}, Arabic-Indic digits \p{N}.
  EXPECT_EQ(Words("llama3", "\xD0\xB4\xD0\xB0 \xD9\xA3\xD9\xA4"),
            (Strings{"\xD0\xB4\xD0\xB0", " ", "\xD9\xA3\xD9\xA4"}));
}

// --- corrupt vocabularies ---------------------------------------------------------------

using testing::GgufBuilder;

std::string LoadError(const GgufBuilder& builder) {
  const std::vector<std::uint8_t> bytes = builder.Build();
  auto file = GgufFile::FromMemory(bytes, "vocab.gguf");
  if (!file) return "gguf: " + file.error();
  auto tokenizer = Tokenizer::FromGguf(**file);
  return tokenizer ? std::string() : tokenizer.error();
}

GgufBuilder MinimalBpe(std::vector<std::string> tokens = {"a", "b", "ab", "\xC4\xA0"},
                       std::vector<std::string> merges = {"a b"}) {
  GgufBuilder b;
  b.KvString("tokenizer.ggml.model", "gpt2");
  b.KvString("tokenizer.ggml.pre", "gpt-2");
  b.KvStrings("tokenizer.ggml.tokens", tokens);
  b.KvStrings("tokenizer.ggml.merges", merges);
  return b;
}

TEST(TokenizerTest, MinimalVocabularyWorks) {
  const std::vector<std::uint8_t> bytes = MinimalBpe().Build();
  auto file = GgufFile::FromMemory(bytes, "vocab.gguf");
  ASSERT_TRUE(file.ok()) << file.error();
  auto tokenizer = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error();
  EXPECT_EQ((*tokenizer)->Encode("ab a", false, false), (std::vector<std::int32_t>{2, 3, 0}));
}

TEST(TokenizerTest, CorruptVocabulariesAreErrors) {
  {
    GgufBuilder b;
    b.KvString("general.name", "no vocabulary");
    EXPECT_NE(LoadError(b).find("no vocabulary"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b;
    b.KvString("tokenizer.ggml.model", "gpt2");
    EXPECT_NE(LoadError(b).find("tokenizer.ggml.tokens"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b;
    b.KvString("tokenizer.ggml.model", "gpt2");
    b.KvString("tokenizer.ggml.tokens", "not an array");
    EXPECT_NE(LoadError(b).find("tokenizer.ggml.tokens"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b;
    b.KvString("tokenizer.ggml.model", "wordpiece-of-the-future");
    EXPECT_NE(LoadError(b).find("unsupported tokenizer model"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b = MinimalBpe();
    b.KvU32("tokenizer.ggml.bos_token_id", 4);  // vocabulary of 4: ids 0..3
    EXPECT_NE(LoadError(b).find("outside the vocabulary"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b = MinimalBpe({"a", "b", "a"});
    EXPECT_NE(LoadError(b).find("duplicate token"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b = MinimalBpe({"a", "b", "ab"}, {"ab"});
    EXPECT_NE(LoadError(b).find("merges[0]"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b;
    b.KvString("tokenizer.ggml.model", "gpt2");
    b.KvStrings("tokenizer.ggml.tokens", {"a", "b"});
    EXPECT_NE(LoadError(b).find("merges"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b = MinimalBpe();
    b.KvStrings("tokenizer.ggml.scores", {"1", "2"});  // wrong length (and type)
    EXPECT_NE(LoadError(b).find("2 entries for 4 tokens"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b = MinimalBpe();
    b.KvStrings("tokenizer.ggml.token_type", {"1", "1", "1", "1"});  // wrong element type
    EXPECT_NE(LoadError(b).find("token_type[0]"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b;
    b.KvString("tokenizer.ggml.model", "gpt2");
    b.KvString("tokenizer.ggml.pre", "no-such-family");
    b.KvStrings("tokenizer.ggml.tokens", {"a"});
    b.KvStrings("tokenizer.ggml.merges", {});
    EXPECT_NE(LoadError(b).find("unsupported pre-tokenizer"), std::string::npos) << LoadError(b);
  }
  {
    GgufBuilder b;
    b.KvString("tokenizer.ggml.model", "llama");
    b.KvStrings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
    EXPECT_NE(LoadError(b).find("scores"), std::string::npos) << LoadError(b);
  }
}

}  // namespace
}  // namespace tidelane::engine
