#include "router/engine/tokenizer.h"

#include <utility>

#include "router/engine/utf8.h"

namespace tidelane::engine {
namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// A run of the prompt: plain text [begin, begin + size) or one special token.
struct Fragment {
  std::size_t begin = 0;
  std::size_t size = 0;
  std::int32_t token = kNoToken;
};

// Splits the text fragments around every occurrence of one special token, as llama.cpp's
// tokenizer_st_partition does (including its lstrip/rstrip handling of nearby whitespace).
void SplitAround(std::string_view text, std::int32_t id, std::string_view special,
                 std::uint32_t attrs, const std::vector<Fragment>& in, std::vector<Fragment>* out) {
  out->clear();
  for (const Fragment& f : in) {
    if (f.token != kNoToken || f.size < special.size()) {
      out->push_back(f);
      continue;
    }
    std::size_t base = f.begin;
    const std::size_t end = f.begin + f.size;
    const std::string_view window = text.substr(0, end);
    while (base < end) {
      const std::size_t match = window.find(special, base);
      if (match == std::string_view::npos) {
        out->push_back({base, end - base, kNoToken});
        break;
      }
      std::size_t left = match - base;
      if (attrs & kAttrLStrip) {
        while (left > 0 && IsAsciiSpace(text[base + left - 1])) --left;
      }
      if (left > 0) out->push_back({base, left, kNoToken});
      out->push_back({match, special.size(), id});
      base = match + special.size();
      if (attrs & kAttrRStrip) {
        while (base < end && IsAsciiSpace(text[base])) ++base;
      }
    }
  }
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  Result<Vocab> vocab = Vocab::FromGguf(file);
  if (!vocab) return Error{vocab.error()};
  Result<std::unique_ptr<Tokenizer>> tokenizer = vocab->type() == VocabType::kSpm
                                                     ? NewSpm(std::move(vocab).value())
                                                     : NewBpe(std::move(vocab).value());
  if (!tokenizer) return Error{file.name() + ": " + tokenizer.error()};
  tokenizer.value()->BuildByteCache();
  return tokenizer;
}

void Tokenizer::BuildByteCache() {
  bytes_.resize(vocab_.size());
  for (std::int32_t id = 0; id < vocab_.size(); ++id) {
    const std::uint32_t attrs = vocab_.attrs(id);
    const std::string& text = vocab_.text(id);
    if (attrs & (kAttrControl | kAttrUnknown | kAttrUserDefined)) {
      bytes_[id] = text;
    } else if (attrs & kAttrNormal) {
      bytes_[id] = NormalTokenBytes(text);
    } else if (attrs & kAttrByte) {
      // Validated by Vocab: the text is "<0xXX>".
      bytes_[id] = std::string(1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
    }
    // Unused and undefined tokens stand for nothing, as in llama.cpp.
  }
}

bool Tokenizer::IsControl(std::int32_t id) const {
  return vocab_.Contains(id) && vocab_.Has(id, kAttrControl | kAttrUnknown);
}

std::string_view Tokenizer::TokenBytes(std::int32_t id) const {
  return vocab_.Contains(id) ? std::string_view(bytes_[id]) : std::string_view();
}

std::string_view Tokenizer::Piece(std::int32_t id) const {
  return vocab_.Contains(id) ? std::string_view(vocab_.text(id)) : std::string_view();
}

std::vector<std::int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                            bool parse_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && vocab_.add_bos()) out.push_back(vocab_.bos());

  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({0, text.size(), kNoToken});
  std::vector<Fragment> next;
  for (std::int32_t id : vocab_.special_tokens()) {
    const std::uint32_t attrs = vocab_.attrs(id);
    // Without parse_special only user-defined tokens are matched (llama.cpp, after
    // Hugging Face tokenizers: added tokens are split off before everything else).
    if (!parse_special && (attrs & (kAttrControl | kAttrUnknown))) continue;
    const std::string& special = vocab_.text(id);
    if (text.find(special) == std::string_view::npos) continue;  // the common case, cheaply
    SplitAround(text, id, special, attrs, fragments, &next);
    fragments.swap(next);
  }

  bool starts_segment = true;
  for (const Fragment& f : fragments) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      starts_segment = true;
    } else {
      EncodeText(text.substr(f.begin, f.size), starts_segment, &out);
      starts_segment = false;
    }
  }
  if (add_special && vocab_.add_eos()) out.push_back(vocab_.eos());
  return out;
}

std::string Tokenizer::Decode(std::span<const std::int32_t> tokens, bool render_special) const {
  std::string out;
  bool strip_space = vocab_.add_space_prefix();
  for (std::int32_t id : tokens) {
    if (!vocab_.Contains(id)) continue;
    std::string_view bytes = bytes_[id];
    if (IsControl(id)) {
      if (render_special) out.append(bytes);
      continue;
    }
    if (strip_space && !bytes.empty() && bytes.front() == ' ') bytes.remove_prefix(1);
    strip_space = false;
    out.append(bytes);
  }
  return out;
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamingDecoder::Push(std::int32_t token) {
  std::string_view bytes = tokenizer_->TokenBytes(token);
  if (tokenizer_->IsControl(token)) {
    if (!render_special_) return {};
  } else if (tokenizer_->vocab().Contains(token)) {
    if (at_start_ && tokenizer_->vocab().add_space_prefix() && !bytes.empty() &&
        bytes.front() == ' ') {
      bytes.remove_prefix(1);
    }
    at_start_ = false;
  }
  pending_.append(bytes);

  std::string out;
  std::size_t pos = 0;
  while (pos < pending_.size()) {
    const std::size_t len = ValidSequenceLength(pending_, pos);
    if (len > 0) {
      out.append(pending_, pos, len);
      pos += len;
      continue;
    }
    const std::string_view rest = std::string_view(pending_).substr(pos);
    if (IncompleteTailLength(rest) == rest.size()) break;  // wait for the rest of it
    out += kReplacementUtf8;
    ++pos;
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamingDecoder::Finish() {
  std::string out = RepairUtf8(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace tidelane::engine
