// The OpenAI-compatible HTTP API's translation layer: JSON bodies to ChatRequests, and chat
// events to the JSON objects OpenAI clients expect (chat.completion, chat.completion.chunk,
// error objects). Pure functions, no I/O, so they are unit-tested and fuzzed on their own.
//
// Reference: the OpenAI API reference for POST /v1/chat/completions (request body; the
// chat completion object; the chat completion chunk object; streaming as server-sent events
// ending with "data: [DONE]") and its error object {"error":{"message","type","param","code"}}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "tidelane/v1/chat.pb.h"

namespace tidelane::server::openai {

struct ApiError {
  int http_status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;  // the offending field, when there is one
  std::string code;
};

struct ParsedRequest {
  v1::ChatRequest request;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string model;
};

struct Limits {
  std::size_t max_body_bytes = 2 << 20;
  std::uint32_t max_tokens = 4096;
};

// Parses a /v1/chat/completions body. Message content may be a string or an array of
// {"type":"text","text":...} parts; unknown fields are ignored, as OpenAI's own server does.
std::variant<ParsedRequest, ApiError> ParseChatRequest(std::string_view body, const Limits& limits);

// {"error":{...}} for `e`.
std::string ErrorBody(const ApiError& e);

// One streamed chunk: the first carries the assistant role; `finish_reason` empty = null.
std::string ChunkJson(const std::string& id, std::int64_t created, const std::string& model,
                      std::string_view content, bool first, std::string_view finish_reason);
// The final usage-only chunk (stream_options.include_usage).
std::string UsageChunkJson(const std::string& id, std::int64_t created, const std::string& model,
                           const v1::Usage& usage);
// The whole non-streamed answer.
std::string CompletionJson(const std::string& id, std::int64_t created, const std::string& model,
                           const std::string& content, std::string_view finish_reason,
                           const v1::Usage& usage);
// GET /v1/models.
std::string ModelsJson(const v1::ListModelsResponse& models, std::int64_t created);

// The ApiError for a pipeline Error event.
ApiError FromChatError(const v1::Error& error);

}  // namespace tidelane::server::openai
