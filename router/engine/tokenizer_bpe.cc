// Byte-level BPE tokenizer (GPT-2 and its descendants), after llama.cpp's
// llm_tokenizer_bpe_session (src/llama-vocab.cpp): the pre-tokeniser splits the text into words;
// each word's bytes are spelt with GPT-2's byte-to-unicode table; adjacent symbols are merged by
// lowest merge rank (leftmost on ties) through a priority queue over a linked list, so a word of
// n characters costs O(n log n), never O(n^2).
#include <array>
#include <queue>
#include <string>
#include <vector>

#include "router/engine/pretokenizer.h"
#include "router/engine/tokenizer.h"
#include "router/engine/utf8.h"

namespace tidelane::engine {
namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves; the other 68 bytes
// are mapped, in order, to U+0100 onwards, so that every byte is a visible character.
constexpr bool StandsForItself(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

constexpr std::array<char16_t, 256> MakeByteToUnicode() {
  std::array<char16_t, 256> table{};
  char16_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = StandsForItself(b) ? static_cast<char16_t>(b) : next++;
  return table;
}
constexpr std::array<char16_t, 256> kByteToUnicode = MakeByteToUnicode();

constexpr int kUnicodeLimit = 256 + 68;
constexpr std::array<std::int16_t, kUnicodeLimit> MakeUnicodeToByte() {
  std::array<std::int16_t, kUnicodeLimit> table{};
  for (auto& v : table) v = -1;
  for (int b = 0; b < 256; ++b) table[kByteToUnicode[b]] = static_cast<std::int16_t>(b);
  return table;
}
constexpr std::array<std::int16_t, kUnicodeLimit> kUnicodeToByte = MakeUnicodeToByte();

struct Symbol {
  int prev;
  int next;
  std::size_t offset;
  std::size_t size;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  int rank;
  std::size_t left_size;
  std::size_t right_size;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(Vocab vocab, PreTokenizer pre) : Tokenizer(std::move(vocab)), pre_(std::move(pre)) {}

 protected:
  void EncodeText(std::string_view text, bool /*starts_segment*/,
                  std::vector<std::int32_t>* out) const override {
    // PCRE2 is only ever given valid UTF-8; invalid bytes become U+FFFD as in llama.cpp.
    std::string repaired;
    if (!IsValidUtf8(text)) {
      repaired = RepairUtf8(text);
      text = repaired;
    }
    std::vector<std::string_view> words;
    pre_.Split(text, &words);

    std::string encoded;
    std::string scratch;
    std::vector<Symbol> symbols;
    for (std::string_view word : words) {
      encoded.clear();
      for (char c : word) AppendUtf8(kByteToUnicode[static_cast<unsigned char>(c)], &encoded);
      if (vocab().ignore_merges()) {
        if (const std::int32_t id = vocab().Find(encoded); id != kNoToken) {
          out->push_back(id);
          continue;
        }
      }
      MergeWord(encoded, &symbols, &scratch);
      for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
        const std::string_view piece(encoded.data() + symbols[i].offset, symbols[i].size);
        if (const std::int32_t id = vocab().Find(piece); id != kNoToken) {
          out->push_back(id);
          continue;
        }
        // No token for the symbol: llama.cpp tries each byte of its spelling on its own.
        for (char c : piece) {
          if (const std::int32_t id = vocab().Find(std::string_view(&c, 1)); id != kNoToken) {
            out->push_back(id);
          }
        }
      }
    }
  }

  std::string NormalTokenBytes(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    for (std::size_t pos = 0; pos < text.size();) {
      const std::size_t len = ValidSequenceLength(text, pos);
      if (len == 0) {  // not UTF-8: keep the byte
        out += text[pos++];
        continue;
      }
      const char32_t cp = DecodeSequence(text, pos, len);
      if (cp < kUnicodeLimit && kUnicodeToByte[cp] >= 0) {
        out += static_cast<char>(kUnicodeToByte[cp]);
      } else {
        out.append(text.substr(pos, len));  // not a byte character: keep it as it is
      }
      pos += len;
    }
    return out;
  }

 private:
  // Merges the characters of `word` by rank; leaves the surviving symbols linked from index 0.
  void MergeWord(std::string_view word, std::vector<Symbol>* symbols_out,
                 std::string* scratch) const {
    std::vector<Symbol>& symbols = *symbols_out;
    symbols.clear();
    for (std::size_t offset = 0; offset < word.size();) {
      const std::size_t len =
          std::min(LeadByteLength(static_cast<unsigned char>(word[offset])), word.size() - offset);
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({index - 1, offset + len == word.size() ? -1 : index + 1, offset, len});
      offset += len;
    }

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    const auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = symbols[left];
      const Symbol& r = symbols[right];
      const int rank =
          vocab().MergeRank(word.substr(l.offset, l.size), word.substr(r.offset, r.size), scratch);
      if (rank >= 0) queue.push({left, right, rank, l.size, r.size});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[bigram.left];
      Symbol& right = symbols[bigram.right];
      // Stale: sizes only grow (or drop to 0 when absorbed), so unchanged sizes mean the pair
      // is still adjacent and still spells the queued text.
      if (left.size != bigram.left_size || right.size != bigram.right_size) continue;
      left.size += right.size;
      right.size = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      try_add(left.prev, bigram.left);
      try_add(bigram.left, left.next);
    }
  }

  PreTokenizer pre_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::NewBpe(Vocab vocab) {
  Result<PreTokenizer> pre = PreTokenizer::Create(vocab.pre());
  if (!pre) return Error{pre.error()};
  return std::unique_ptr<Tokenizer>(new BpeTokenizer(std::move(vocab), std::move(pre).value()));
}

}  // namespace tidelane::engine
