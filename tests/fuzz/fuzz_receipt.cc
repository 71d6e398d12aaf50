// Fuzz target: receipts arrive from anywhere (tidelane-verify reads a file a stranger sent, the
// app reads its history): any text must end in an Envelope that Verify judges, or a
// ReceiptFormatError, never a crash; and nothing random may ever verify.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "router/receipt/receipt.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace receipt = tidelane::receipt;
  receipt::EnsureSodium();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  receipt::Envelope envelope;
  try {
    envelope = receipt::FromJsonDocument(text);
  } catch (const receipt::ReceiptFormatError&) {
    return 0;
  }
  const auto verdict = receipt::Verify(envelope);
  if (!verdict.ok() && verdict.message.empty()) __builtin_trap();
  // A valid receipt from the corpus stays valid; a flipped byte of its payload must not.
  if (verdict.ok() && !envelope.payload.empty()) {
    auto tampered = envelope;
    tampered.payload[tampered.payload.size() / 2] ^= 0x01;
    if (receipt::Verify(tampered).ok()) __builtin_trap();
  }
  if (!verdict.payload.is_null()) (void)receipt::DescribePayload(verdict.payload);
  return 0;
}
