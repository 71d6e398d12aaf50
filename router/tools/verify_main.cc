// tidelane-verify: checks a Tidelane receipt offline (no router, no network) and prints what was
// signed. The receipt is the JSON document GET /v1/receipts/{id} returns.
//   exit 0  the receipt verifies (and matches the pinned keys, when given)
//   exit 1  it does not: the failing check is named on stderr
//   exit 2  the input is unreadable or not a receipt at all
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "router/receipt/receipt.h"

namespace {

namespace receipt = tidelane::receipt;

int Run(int argc, char** argv) {
  CLI::App cli{"tidelane-verify: checks a Tidelane receipt offline and shows what was signed"};
  std::string file;
  receipt::Pins pins;
  std::string answer_file;
  bool quiet = false;
  cli.add_option("RECEIPT", file, "Receipt JSON (from GET /v1/receipts/{id}); - reads stdin")
      ->required();
  cli.add_option("--worker-key", pins.worker_public_key,
                 "Require this worker public key (64 hex digits)");
  cli.add_option("--router-key", pins.router_public_key,
                 "Require this router public key (64 hex digits)");
  cli.add_option("--answer", answer_file,
                 "File holding the answer text; it must be the one that was signed")
      ->check(CLI::ExistingFile);
  cli.add_flag("--quiet,-q", quiet, "Print only the verdict");
  CLI11_PARSE(cli, argc, argv);

  for (const auto* pin : {&pins.worker_public_key, &pins.router_public_key}) {
    if (!pin->empty() && (pin->size() != 64 || !receipt::FromHex(*pin))) {
      std::cerr << "tidelane-verify: a pinned key must be 64 lowercase hex digits\n";
      return 2;
    }
  }
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "tidelane-verify: cannot read " << file << "\n";
      return 2;
    }
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::optional<std::string> answer;
  if (!answer_file.empty()) {
    std::ifstream in(answer_file, std::ios::binary);
    answer.emplace(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  receipt::Envelope envelope;
  try {
    envelope = receipt::FromJsonDocument(text);
  } catch (const receipt::ReceiptFormatError& e) {
    std::cerr << "tidelane-verify: " << file << ": " << e.what() << "\n";
    return 2;
  }
  const auto v = receipt::Verify(envelope, pins,
                                 answer ? std::optional<std::string_view>(*answer) : std::nullopt);
  if (!quiet && !v.payload.is_null()) {
    std::cout << "Signed:\n";
    for (const auto& [field, value] : receipt::DescribePayload(v.payload)) {
      std::cout << "  " << field << ": " << value << "\n";
    }
  }
  if (!v.ok()) {
    std::cout << "INVALID\n";
    std::cerr << "tidelane-verify: check failed (" << receipt::CheckName(v.failed)
              << "): " << v.message << "\n";
    return 1;
  }
  std::cout << "VALID: signed by worker " << envelope.worker_public_key
            << " and countersigned by router " << envelope.router_public_key << "\n";
  return 0;
}

}  // namespace

// Errors are reported where they happen; anything escaping is a bug, said plainly.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-verify: fatal: " << e.what() << "\n";
    return 2;
  }
}
