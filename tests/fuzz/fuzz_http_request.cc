// Fuzz target: the router's HTTP front door. Raw bytes go through the same Boost.Beast request
// parser with the same header and body limits as the server's connection loop, then a complete
// POST body through the OpenAI request parser: any input ends in a parsed request, a clean
// HTTP error or an ApiError with a message, never a crash or a read past the limits.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "router/server/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace http = boost::beast::http;
  namespace openai = tidelane::server::openai;
  const openai::Limits limits{1 << 16, 4096};

  http::request_parser<http::string_body> parser;
  parser.body_limit(limits.max_body_bytes);
  parser.header_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const auto n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;  // rejected as the server would reject it: 400 or 413, connection closed
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }
  const auto& req = parser.get();
  if (req.body().size() > limits.max_body_bytes) __builtin_trap();
  const std::string_view target(req.target().data(), req.target().size());
  const auto auth = req[http::field::authorization];
  (void)auth.substr(0, 7);
  if (target == "/v1/chat/completions" && req.method() == http::verb::post) {
    const auto result = openai::ParseChatRequest(req.body(), limits);
    if (const auto* e = std::get_if<openai::ApiError>(&result); e && e->message.empty()) {
      __builtin_trap();
    }
  }
  return 0;
}
