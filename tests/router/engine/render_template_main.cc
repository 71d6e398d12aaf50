// render_template TEMPLATE CONTEXT_JSON [NOW_UNIX_SECONDS]: renders a chat template file with
// the JSON object in CONTEXT_JSON as its variables and prints the result to stdout (exit 0),
// or prints the error to stderr (exit 1). The Python reference test drives it.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "router/engine/chat_template.h"

namespace {

using tidelane::engine::jinja::Dict;
using tidelane::engine::jinja::Value;

Value FromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Int(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::Int(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& item : j) items.push_back(FromJson(item));
      return Value::List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, v] : j.items()) d.Set(k, FromJson(v));
      return Value::MakeDict(std::move(d));
    }
    default:
      return Value();
  }
}

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(2);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: render_template TEMPLATE CONTEXT_JSON [NOW_UNIX_SECONDS]\n";
    return 2;
  }
  const auto tpl = tidelane::engine::ChatTemplate::Parse(ReadFile(argv[1]));
  if (!tpl.ok()) {
    std::cerr << "error: " << tpl.error() << "\n";
    return 1;
  }
  nlohmann::ordered_json context;
  try {
    context = nlohmann::ordered_json::parse(ReadFile(argv[2]));
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "bad context JSON: " << e.what() << "\n";
    return 2;
  }
  tidelane::engine::jinja::RenderOptions options;
  if (argc == 4) options.now_unix_seconds = std::strtoll(argv[3], nullptr, 10);
  const auto out = tpl->Render(FromJson(context), options);
  if (!out.ok()) {
    std::cerr << "error: " << out.error() << "\n";
    return 1;
  }
  std::fwrite(out.value().data(), 1, out.value().size(), stdout);
  return 0;
}
