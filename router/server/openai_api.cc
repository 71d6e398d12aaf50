#include "router/server/openai_api.h"

#include <nlohmann/json.hpp>

namespace tidelane::server::openai {
namespace {

using nlohmann::json;

ApiError Invalid(std::string message, std::string param = {}) {
  return ApiError{400, "invalid_request_error", std::move(message), std::move(param), {}};
}

}  // namespace

std::variant<ParsedRequest, ApiError> ParseChatRequest(std::string_view body,
                                                       const Limits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return ApiError{413,
                    "invalid_request_error",
                    "request body is " + std::to_string(body.size()) + " bytes; the limit is " +
                        std::to_string(limits.max_body_bytes),
                    {},
                    "request_too_large"};
  }
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid("the request body is not valid JSON");
  if (!j.is_object()) return Invalid("the request body must be a JSON object");

  ParsedRequest out;
  if (!j.contains("model") || !j["model"].is_string() || j["model"].get<std::string>().empty()) {
    return Invalid("'model' is required and must be a non-empty string", "model");
  }
  out.model = j["model"].get<std::string>();
  out.request.set_model(out.model);

  if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty()) {
    return Invalid("'messages' must be a non-empty array", "messages");
  }
  std::size_t index = 0;
  for (const auto& m : j["messages"]) {
    const std::string where = "messages[" + std::to_string(index++) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Invalid(where + " must be an object with a string 'role'", where);
    }
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant") {
      return Invalid(where + ".role must be system, developer, user or assistant", where + ".role");
    }
    std::string content;
    if (!m.contains("content") || m["content"].is_null()) {
      content.clear();
    } else if (m["content"].is_string()) {
      content = m["content"].get<std::string>();
    } else if (m["content"].is_array()) {
      for (const auto& part : m["content"]) {
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
            !part.contains("text") || !part["text"].is_string()) {
          return Invalid(where + ".content parts must be {\"type\":\"text\",\"text\":...}",
                         where + ".content");
        }
        content += part["text"].get<std::string>();
      }
    } else {
      return Invalid(where + ".content must be a string or an array of text parts",
                     where + ".content");
    }
    auto* msg = out.request.add_messages();
    msg->set_role(role);
    msg->set_content(std::move(content));
  }

  const auto number = [&](const char* key, double lo,
                          double hi) -> std::variant<double, ApiError, std::monostate> {
    if (!j.contains(key) || j[key].is_null()) return std::monostate{};
    if (!j[key].is_number()) return Invalid(std::string("'") + key + "' must be a number", key);
    const double v = j[key].get<double>();
    if (!(v >= lo && v <= hi)) {
      return Invalid(std::string("'") + key + "' must be between " + json(lo).dump() + " and " +
                         json(hi).dump(),
                     key);
    }
    return v;
  };
  auto* sampling = out.request.mutable_sampling();
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    const auto v = number(key, 1, limits.max_tokens);
    if (const auto* e = std::get_if<ApiError>(&v)) return *e;
    if (const auto* d = std::get_if<double>(&v); d && sampling->max_tokens() == 0) {
      sampling->set_max_tokens(static_cast<std::uint32_t>(*d));
    }
  }
  if (const auto v = number("temperature", 0, 2); std::holds_alternative<ApiError>(v))
    return std::get<ApiError>(v);
  else if (const auto* d = std::get_if<double>(&v))
    sampling->set_temperature(static_cast<float>(*d));
  if (const auto v = number("top_p", 0, 1); std::holds_alternative<ApiError>(v))
    return std::get<ApiError>(v);
  else if (const auto* d = std::get_if<double>(&v))
    sampling->set_top_p(static_cast<float>(*d));
  if (const auto v = number("seed", -9.2e18, 9.2e18); std::holds_alternative<ApiError>(v))
    return std::get<ApiError>(v);
  else if (const auto* d = std::get_if<double>(&v))
    sampling->set_seed(static_cast<std::uint64_t>(static_cast<std::int64_t>(*d)));

  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) return Invalid("'stream' must be a boolean", "stream");
    out.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && j["stream_options"].is_object()) {
    const auto& usage = j["stream_options"];
    if (usage.contains("include_usage") && !usage["include_usage"].is_null()) {
      if (!usage["include_usage"].is_boolean()) {
        return Invalid("'stream_options.include_usage' must be a boolean",
                       "stream_options.include_usage");
      }
      out.include_usage = usage["include_usage"].get<bool>();
    }
  }
  if (j.contains("user") && j["user"].is_string())
    out.request.set_user(j["user"].get<std::string>());
  return out;
}

std::string ErrorBody(const ApiError& e) {
  return json{{"error",
               {{"message", e.message},
                {"type", e.type},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}}
      .dump();
}

std::string ChunkJson(const std::string& id, std::int64_t created, const std::string& model,
                      std::string_view content, bool first, std::string_view finish_reason) {
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  if (!content.empty() || first) delta["content"] = std::string(content);
  return json{
      {"id", id},
      {"object", "chat.completion.chunk"},
      {"created", created},
      {"model", model},
      {"choices",
       json::array({{{"index", 0},
                     {"delta", delta},
                     {"logprobs", nullptr},
                     {"finish_reason",
                      finish_reason.empty() ? json(nullptr) : json(std::string(finish_reason))}}})}}
      .dump();
}

std::string UsageChunkJson(const std::string& id, std::int64_t created, const std::string& model,
                           const v1::Usage& usage) {
  return json{{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", model},
              {"choices", json::array()},
              {"usage",
               {{"prompt_tokens", usage.prompt_tokens()},
                {"completion_tokens", usage.completion_tokens()},
                {"total_tokens", usage.prompt_tokens() + usage.completion_tokens()}}}}
      .dump();
}

std::string CompletionJson(const std::string& id, std::int64_t created, const std::string& model,
                           const std::string& content, std::string_view finish_reason,
                           const v1::Usage& usage) {
  return json{{"id", id},
              {"object", "chat.completion"},
              {"created", created},
              {"model", model},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", content}}},
                                        {"logprobs", nullptr},
                                        {"finish_reason", std::string(finish_reason)}}})},
              {"usage",
               {{"prompt_tokens", usage.prompt_tokens()},
                {"completion_tokens", usage.completion_tokens()},
                {"total_tokens", usage.prompt_tokens() + usage.completion_tokens()}}}}
      .dump();
}

std::string ModelsJson(const v1::ListModelsResponse& models, std::int64_t created) {
  json data = json::array();
  for (const auto& m : models.models()) {
    data.push_back(
        {{"id", m.id()}, {"object", "model"}, {"created", created}, {"owned_by", "tidelane"}});
  }
  return json{{"object", "list"}, {"data", data}}.dump();
}

ApiError FromChatError(const v1::Error& error) {
  switch (error.code()) {
    case v1::ERROR_CODE_INVALID_REQUEST:
      return {400, "invalid_request_error", error.message(), {}, {}};
    case v1::ERROR_CODE_UNKNOWN_MODEL:
      return {404, "invalid_request_error", error.message(), "model", "model_not_found"};
    case v1::ERROR_CODE_OVERLOADED:
      return {429,
              "rate_limit_error",
              error.message() + " (retry after " + std::to_string(error.retry_after_ms()) + " ms)",
              {},
              "overloaded"};
    case v1::ERROR_CODE_NO_WORKER:
      return {503, "server_error", error.message(), {}, "no_worker"};
    default:
      return {500, "server_error", error.message(), {}, {}};
  }
}

}  // namespace tidelane::server::openai
