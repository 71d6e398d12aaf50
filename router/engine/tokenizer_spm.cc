// SentencePiece (BPE-by-score) tokenizer, after llama.cpp's llm_tokenizer_spm_session
// (src/llama-vocab.cpp): start from single UTF-8 characters, repeatedly merge the adjacent pair
// whose concatenation is the highest-scoring vocabulary token (leftmost on ties), then emit each
// remaining symbol as its token or, when it has none, as byte tokens.
#include <queue>
#include <string>
#include <vector>

#include "router/engine/tokenizer.h"
#include "router/engine/utf8.h"

namespace tidelane::engine {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

struct Symbol {
  int prev;
  int next;
  std::size_t offset;
  std::size_t size;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  float score;
  std::size_t size;
};

// Highest score first; among equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {}

 protected:
  void EncodeText(std::string_view text, bool starts_segment,
                  std::vector<std::int32_t>* out) const override {
    std::string s;
    s.reserve(text.size() * 3 + 3);
    if (starts_segment && vocab().add_space_prefix()) s += kSpaceMarker;
    for (char c : text) {
      if (c == ' ') {
        s += kSpaceMarker;
      } else {
        s += c;
      }
    }
    if (s.empty()) return;

    // One symbol per character; a byte that is not part of a well-formed sequence is a symbol
    // of its own and ends as a byte token, so any input survives a round trip. (llama.cpp
    // trusts lead bytes instead, which lets a truncated sequence swallow the next character;
    // for valid UTF-8 the two agree.)
    std::vector<Symbol> symbols;
    symbols.reserve(s.size());
    for (std::size_t offset = 0; offset < s.size();) {
      const std::size_t len = std::max<std::size_t>(ValidSequenceLength(s, offset), 1);
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({index - 1, offset + len == s.size() ? -1 : index + 1, offset, len});
      offset += len;
    }

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    const auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const std::string_view pair(s.data() + symbols[left].offset,
                                  symbols[left].size + symbols[right].size);
      const std::int32_t id = vocab().Find(pair);
      if (id == kNoToken) return;
      queue.push({left, right, vocab().score(id), pair.size()});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[bigram.left];
      Symbol& right = symbols[bigram.right];
      // Stale: one side has been merged since this pair was queued.
      if (left.size == 0 || right.size == 0 || left.size + right.size != bigram.size) continue;
      left.size += right.size;
      right.size = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      try_add(left.prev, bigram.left);
      try_add(bigram.left, left.next);
    }

    for (int i = 0; i != -1; i = symbols[i].next) {
      const std::string_view piece(s.data() + symbols[i].offset, symbols[i].size);
      // Every merged symbol is a token (only pairs that are tokens are queued), so only
      // single characters can miss; they fall back to bytes.
      if (const std::int32_t id = vocab().Find(piece); id != kNoToken) {
        out->push_back(id);
        continue;
      }
      for (char c : piece) {
        std::int32_t id = vocab().ByteToken(static_cast<std::uint8_t>(c));
        // llama.cpp aborts here; a vocabulary without byte tokens gets <unk> instead.
        if (id == kNoToken) id = vocab().unk();
        if (id != kNoToken) out->push_back(id);
      }
    }
  }

  std::string NormalTokenBytes(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    for (std::size_t pos = 0; pos < text.size();) {
      if (text.substr(pos, kSpaceMarker.size()) == kSpaceMarker) {
        out += ' ';
        pos += kSpaceMarker.size();
      } else {
        out += text[pos++];
      }
    }
    return out;
  }
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::NewSpm(Vocab vocab) {
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab)));
}

}  // namespace tidelane::engine
