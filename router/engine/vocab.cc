#include "router/engine/vocab.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "router/engine/pretokenizer.h"

namespace tidelane::engine {
namespace {

// GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum GgufTokenType : std::int64_t {
  kTypeUndefined = 0,
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

// Token texts llama.cpp treats as end of generation whatever their declared type (its
// "auto-detect special tokens by text" workaround for converters that do not set the ids).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<\uFF5Cend\u2581of\u2581sentence\uFF5C>",  // DeepSeek's, in UTF-8
};
// Subset used to find the EOT id when the metadata does not give one.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<end_of_utterance>",
    "<\uFF5Cend\u2581of\u2581sentence\uFF5C>",
};
// The \u escapes above are UTF-8 (GCC's execution character set), as the vocabularies are.
static_assert(std::string_view("\uFF5C\u2581") == "\xEF\xBD\x9C\xE2\x96\x81");

bool OneOf(std::string_view text, std::span<const std::string_view> set) {
  return std::find(set.begin(), set.end(), text) != set.end();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte of a "<0xXX>" token, or -1 when `text` has another form.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  const int hi = HexDigit(text[3]);
  const int lo = HexDigit(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

const GgufValue::Array* FindArray(const GgufFile& file, std::string_view key) {
  const GgufValue* value = file.Find(key);
  return value == nullptr ? nullptr : value->AsArray();
}

}  // namespace

Result<Vocab> Vocab::FromGguf(const GgufFile& file) {
  Vocab vocab;
  if (Status s = vocab.Load(file); !s) return Error{file.name() + ": " + s.error()};
  return vocab;
}

Status Vocab::Load(const GgufFile& file) {
  const GgufValue* model_value = file.Find("tokenizer.ggml.model");
  if (model_value == nullptr) return Error{"no vocabulary (tokenizer.ggml.model is missing)"};
  const std::string* model = model_value->AsString();
  if (model == nullptr) return Error{"tokenizer.ggml.model is not a string"};

  // Defaults per tokenizer model, as llama.cpp sets them before reading the metadata (the
  // special ids' defaults are in LoadSpecialIds).
  if (*model == "llama") {
    type_ = VocabType::kSpm;
    add_space_prefix_ = true;
    add_bos_ = true;
  } else if (*model == "gpt2") {
    type_ = VocabType::kBpe;
  } else {
    return Error{"unsupported tokenizer model '" + *model + "' (supported: llama, gpt2)"};
  }

  if (const GgufValue* pre = file.Find("tokenizer.ggml.pre"); pre != nullptr) {
    if (pre->AsString() == nullptr) return Error{"tokenizer.ggml.pre is not a string"};
    pre_ = *pre->AsString();
    if (pre_.empty()) pre_ = "default";
  }
  if (type_ == VocabType::kBpe) {
    const PreTokenizerFamily* family = FindPreTokenizerFamily(pre_);
    if (family == nullptr) return Error{"unsupported pre-tokenizer '" + pre_ + "'"};
    ignore_merges_ = family->ignore_merges;
    add_bos_ = family->add_bos;
  }
  if (const GgufValue* v = file.Find("tokenizer.ggml.add_space_prefix"); v != nullptr) {
    if (!v->AsBool()) return Error{"tokenizer.ggml.add_space_prefix is not a boolean"};
    add_space_prefix_ = *v->AsBool();
  }

  // Token texts.
  const GgufValue::Array* tokens = FindArray(file, "tokenizer.ggml.tokens");
  if (tokens == nullptr)
    return Error{"no vocabulary (tokenizer.ggml.tokens is missing or not an array)"};
  if (tokens->empty()) return Error{"tokenizer.ggml.tokens is empty"};
  if (tokens->size() > static_cast<std::size_t>(INT32_MAX / 2)) {
    return Error{"tokenizer.ggml.tokens has too many entries"};
  }
  const std::size_t n = tokens->size();
  texts_.reserve(n);
  text_to_id_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string* text = (*tokens)[i].AsString();
    if (text == nullptr)
      return Error{"tokenizer.ggml.tokens[" + std::to_string(i) + "] is not a string"};
    // llama.cpp renames empty tokens so that they can neither match nor collide.
    texts_.push_back(text->empty() ? "[EMPTY_" + std::to_string(i) + "]" : *text);
    const auto [it, inserted] = text_to_id_.emplace(texts_.back(), static_cast<std::int32_t>(i));
    if (!inserted) {
      return Error{"duplicate token '" + texts_.back() + "' (ids " + std::to_string(it->second) +
                   " and " + std::to_string(i) + ")"};
    }
  }

  // Scores (SentencePiece merges by them; BPE files usually omit them).
  scores_.assign(n, 0.0f);
  if (const GgufValue* v = file.Find("tokenizer.ggml.scores"); v != nullptr) {
    const GgufValue::Array* scores = v->AsArray();
    if (scores == nullptr) return Error{"tokenizer.ggml.scores is not an array"};
    if (scores->size() != n) {
      return Error{"tokenizer.ggml.scores has " + std::to_string(scores->size()) + " entries for " +
                   std::to_string(n) + " tokens"};
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::optional<double> score = (*scores)[i].AsFloat();
      if (!score || !std::isfinite(*score)) {
        return Error{"tokenizer.ggml.scores[" + std::to_string(i) + "] is not a finite number"};
      }
      scores_[i] = static_cast<float>(*score);
    }
  } else if (type_ == VocabType::kSpm) {
    return Error{"tokenizer.ggml.scores is missing (a SentencePiece vocabulary needs it)"};
  }

  // Types.
  attrs_.assign(n, kAttrNormal);
  if (const GgufValue* v = file.Find("tokenizer.ggml.token_type"); v != nullptr) {
    const GgufValue::Array* types = v->AsArray();
    if (types == nullptr) return Error{"tokenizer.ggml.token_type is not an array"};
    if (types->size() != n) {
      return Error{"tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                   " entries for " + std::to_string(n) + " tokens"};
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::optional<std::int64_t> t = (*types)[i].AsInt();
      std::uint32_t attr = 0;
      switch (t.value_or(-1)) {
        case kTypeUndefined:
          attr = kAttrUndefined;
          break;
        case kTypeNormal:
          attr = kAttrNormal;
          break;
        case kTypeUnknown:
          attr = kAttrUnknown;
          break;
        case kTypeControl:
          attr = kAttrControl;
          break;
        case kTypeUserDefined:
          attr = kAttrUserDefined;
          break;
        case kTypeUnused:
          attr = kAttrUnused;
          break;
        case kTypeByte:
          attr = kAttrByte;
          break;
        default:
          return Error{"tokenizer.ggml.token_type[" + std::to_string(i) +
                       "] is not a token type (0..6)"};
      }
      attrs_[i] = attr;
    }
  }

  // Byte tokens: decoding needs their value, and SentencePiece falls back to them.
  std::fill(std::begin(byte_tokens_), std::end(byte_tokens_), kNoToken);
  for (std::size_t i = 0; i < n; ++i) {
    if ((attrs_[i] & kAttrByte) == 0) continue;
    const int byte = ParseByteToken(texts_[i]);
    if (byte < 0) {
      return Error{"byte token " + std::to_string(i) + " is '" + texts_[i] + "', not <0xXX>"};
    }
  }
  if (type_ == VocabType::kSpm) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      std::int32_t id = Find(std::string_view(name, 6));
      if (id == kNoToken) id = Find(std::string_view(std::string(1, static_cast<char>(b))));
      byte_tokens_[b] = id;
    }
  }

  // BPE merges: "left right", split at the first space after the first byte, as llama.cpp.
  if (type_ == VocabType::kBpe) {
    const GgufValue::Array* merges = FindArray(file, "tokenizer.ggml.merges");
    if (merges == nullptr) return Error{"tokenizer.ggml.merges is missing or not an array"};
    merge_ranks_.reserve(merges->size());
    for (std::size_t i = 0; i < merges->size(); ++i) {
      const std::string* merge = (*merges)[i].AsString();
      if (merge == nullptr) {
        return Error{"tokenizer.ggml.merges[" + std::to_string(i) + "] is not a string"};
      }
      const std::size_t space = merge->find(' ', 1);
      if (space == std::string::npos || space + 1 == merge->size()) {
        return Error{"tokenizer.ggml.merges[" + std::to_string(i) + "] is '" + *merge +
                     "', not 'left right'"};
      }
      merge_ranks_.emplace(*merge, static_cast<std::int32_t>(i));  // the first rank wins
    }
  }

  if (Status s = LoadSpecialIds(file); !s) return s;
  if (add_bos_ && bos_ == kNoToken) return Error{"add_bos_token is set but there is no BOS token"};
  if (add_eos_ && eos_ == kNoToken) return Error{"add_eos_token is set but there is no EOS token"};
  if (bos_ == kNoToken) add_bos_ = false;
  if (eos_ == kNoToken) add_eos_ = false;

  DetectEndOfGeneration();

  // llama.cpp's per-model attribute fix-up for Phi-3: its special tokens eat the whitespace
  // to their right when matched in text, except <unk>, <s> and <|endoftext|>.
  std::string name = file.GetString("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool phi3 =
      name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;

  for (std::size_t i = 0; i < n; ++i) {
    if (attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      special_tokens_.push_back(static_cast<std::int32_t>(i));
    }
  }
  std::stable_sort(
      special_tokens_.begin(), special_tokens_.end(),
      [this](std::int32_t a, std::int32_t b) { return texts_[a].size() > texts_[b].size(); });
  if (phi3) {
    for (std::int32_t id : special_tokens_) attrs_[id] |= kAttrRStrip;
    for (std::string_view t : {"</s>"}) {
      if (const std::int32_t id = Find(t); id != kNoToken) attrs_[id] |= kAttrRStrip;
    }
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (const std::int32_t id = Find(t); id != kNoToken) attrs_[id] &= ~kAttrRStrip;
    }
  }
  return Ok{};
}

Status Vocab::LoadSpecialIds(const GgufFile& file) {
  const std::int32_t n = size();
  const auto in_range = [n](std::int32_t id) { return id >= 0 && id < n ? id : kNoToken; };
  if (type_ == VocabType::kSpm) {
    bos_ = in_range(1);
    eos_ = in_range(2);
    unk_ = in_range(0);
  } else {
    bos_ = in_range(11);
    eos_ = in_range(11);
  }
  struct Key {
    std::string_view key;
    std::int32_t* id;
  };
  const Key keys[] = {
      {"tokenizer.ggml.bos_token_id", &bos_},
      {"tokenizer.ggml.eos_token_id", &eos_},
      {"tokenizer.ggml.eot_token_id", &eot_},
      {"tokenizer.ggml.eom_token_id", &eom_},
      {"tokenizer.ggml.unknown_token_id", &unk_},
      {"tokenizer.ggml.seperator_token_id", &sep_},  // sic: GGUF's spelling
      {"tokenizer.ggml.padding_token_id", &pad_},
      {"tokenizer.ggml.fim_pad_token_id", &fim_pad_},
      {"tokenizer.ggml.fim_rep_token_id", &fim_rep_},
      {"tokenizer.ggml.fim_sep_token_id", &fim_sep_},
  };
  for (const Key& k : keys) {
    const GgufValue* v = file.Find(k.key);
    if (v == nullptr) continue;
    const std::optional<std::int64_t> id = v->AsInt();
    if (!id) return Error{std::string(k.key) + " is not an integer"};
    if (*id < 0 || *id >= n) {
      return Error{std::string(k.key) + " = " + std::to_string(*id) +
                   " is outside the vocabulary (size " + std::to_string(n) + ")"};
    }
    *k.id = static_cast<std::int32_t>(*id);
  }
  for (const auto& [key, flag] :
       {std::pair<std::string_view, bool*>{"tokenizer.ggml.add_bos_token", &add_bos_},
        {"tokenizer.ggml.add_eos_token", &add_eos_}}) {
    const GgufValue* v = file.Find(key);
    if (v == nullptr) continue;
    if (!v->AsBool()) return Error{std::string(key) + " is not a boolean"};
    *flag = *v->AsBool();
  }
  return Ok{};
}

void Vocab::DetectEndOfGeneration() {
  const std::int32_t n = size();
  std::vector<std::int32_t> eog;
  for (std::int32_t id = 0; id < n; ++id) {
    const std::string& text = texts_[id];
    // The lowest id among the known texts, so that the choice does not depend on hash order.
    if (eot_ == kNoToken && OneOf(text, kEotTexts)) {
      eot_ = id;
      attrs_[id] |= kAttrControl;
    }
    if (eom_ == kNoToken && text == "<|eom_id|>") {
      eom_ = id;
      attrs_[id] |= kAttrControl;
    }
    if (OneOf(text, kEogTexts)) {
      // Whatever the file says, a token that ends generation is not text a user typed.
      attrs_[id] |= kAttrControl;
      eog.push_back(id);
    }
  }
  for (std::int32_t id : {fim_pad_, fim_rep_, fim_sep_, eos_, eot_, eom_}) {
    if (id != kNoToken) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  eog_ = std::move(eog);
}

std::int32_t Vocab::Find(std::string_view text) const {
  const auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? kNoToken : it->second;
}

int Vocab::MergeRank(std::string_view left, std::string_view right, std::string* scratch) const {
  // Merges are split at the first space after the first byte, so a left part with a space
  // past its first byte can never have been written down as one.
  if (left.empty() || right.empty() || left.find(' ', 1) != std::string_view::npos) return -1;
  scratch->assign(left);
  scratch->push_back(' ');
  scratch->append(right);
  const auto it = merge_ranks_.find(std::string_view(*scratch));
  return it == merge_ranks_.end() ? -1 : it->second;
}

bool Vocab::IsEndOfGeneration(std::int32_t id) const {
  return std::binary_search(eog_.begin(), eog_.end(), id);
}

}  // namespace tidelane::engine
