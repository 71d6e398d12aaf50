// tidelane-tokenize: tokenizes text with a GGUF model's vocabulary (router/engine/tokenizer.h).
//   --text TEXT          prints the ids on one line (--pieces: one "id<TAB>piece" line each)
//   --vocab-test F.inp   llama.cpp's tokenizer test format: inputs separated by lines
//                        "__ggml_vocab_test__"; prints " id id ...\n" per input, no BOS, exactly
//                        like the .out files of shared/fixtures/tokenizers
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "router/engine/gguf.h"
#include "router/engine/tokenizer.h"

using namespace tidelane::engine;

namespace {

// Splits a .inp file as llama.cpp's tests/test-tokenizer-0.cpp does: each input is followed by
// "\n__ggml_vocab_test__\n"; text after the last separator (normally none) is one more input.
std::vector<std::string> SplitVocabTest(const std::string& raw) {
  static constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    const std::size_t next = raw.find(kSeparator, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + kSeparator.size();
  }
  return inputs;
}

// A piece made printable: control bytes and backslashes escaped, the rest as is.
std::string Printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int Run(int argc, char** argv) {
  CLI::App cli{"tidelane-tokenize: token ids of text under a GGUF model's vocabulary"};
  std::string model_path, text, vocab_test;
  bool bos = false, special = false, pieces = false;
  cli.add_option("--model", model_path, "GGUF file with a tokenizer vocabulary")->required();
  auto* text_opt = cli.add_option("--text", text, "Text to tokenize");
  auto* test_opt =
      cli.add_option("--vocab-test", vocab_test,
                     "llama.cpp vocabulary test inputs (.inp); prints one line of ids per input");
  text_opt->excludes(test_opt);
  cli.add_flag("--bos", bos, "Add BOS/EOS as the vocabulary asks (tokenizer.ggml.add_bos_token)");
  cli.add_flag("--special", special, "Parse control tokens written in the text");
  cli.add_flag("--pieces", pieces, "With --text: print each id with the bytes it stands for");
  CLI11_PARSE(cli, argc, argv);
  if (text_opt->count() == 0 && test_opt->count() == 0) {
    std::cerr << "tidelane-tokenize: give --text TEXT or --vocab-test FILE.inp\n";
    return 2;
  }

  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(model_path);
  if (!file) {
    std::cerr << "tidelane-tokenize: " << file.error() << "\n";
    return 1;
  }
  Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromGguf(**file);
  if (!tokenizer) {
    std::cerr << "tidelane-tokenize: " << tokenizer.error() << "\n";
    return 1;
  }
  const Tokenizer& tok = **tokenizer;

  std::string out;
  if (test_opt->count() > 0) {
    std::ifstream in(vocab_test, std::ios::binary);
    if (!in) {
      std::cerr << "tidelane-tokenize: cannot read " << vocab_test << "\n";
      return 1;
    }
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const std::string& input : SplitVocabTest(raw)) {
      for (std::int32_t id : tok.Encode(input, bos, special)) out += " " + std::to_string(id);
      out += '\n';
    }
  } else {
    const std::vector<std::int32_t> ids = tok.Encode(text, bos, special);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (pieces) {
        out += std::to_string(ids[i]) + "\t" + Printable(tok.TokenBytes(ids[i])) + "\n";
      } else {
        out += (i == 0 ? "" : " ") + std::to_string(ids[i]);
      }
    }
    if (!pieces) out += '\n';
  }
  std::cout << out << std::flush;
  return std::cout ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-tokenize: " << e.what() << "\n";
    return 1;
  }
}
