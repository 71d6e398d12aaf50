// tidelane-generate: runs a GGUF model on a prompt and prints only the continuation (or, with
// --json, the prompt and generated token ids, the text and the speeds). --backend cuda runs the
// weight products on an NVIDIA GPU where the build and the machine have one.
#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "router/engine/chat_template.h"
#include "router/engine/engine.h"
#include "router/engine/sampler.h"
#include "router/engine/tokenizer.h"

using namespace tidelane;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<std::int32_t> ParseTokens(const std::string& s) {
  std::vector<std::int32_t> out;
  std::string text = s;
  for (char& ch : text) {
    if (ch == ',') ch = ' ';
  }
  std::istringstream in(text);
  for (std::string word; in >> word;) {
    std::size_t used = 0;
    const long v = std::stol(word, &used);
    if (used != word.size()) throw std::invalid_argument("not a token id: " + word);
    out.push_back(static_cast<std::int32_t>(v));
  }
  return out;
}

int Run(int argc, char** argv) {
  CLI::App cli{"tidelane-generate: run a GGUF chat model on a prompt"};
  std::string model_path, prompt_text, prompt_tokens, logits_out;
  bool chat = false;
  int max_tokens = 128;
  int threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  bool json = false;
  engine::SamplingParams sampling;
  sampling.temperature = 0.0f;
  cli.add_option("--model", model_path, "GGUF model file")->required()->check(CLI::ExistingFile);
  auto* text_opt = cli.add_option("--prompt", prompt_text,
                                  "Prompt text (BOS added as the model's metadata says)");
  auto* ids_opt = cli.add_option("--prompt-tokens", prompt_tokens,
                                 "Prompt as token ids, used verbatim (no BOS added)");
  text_opt->excludes(ids_opt);
  cli.add_flag("--chat", chat, "Apply the model's chat template to the prompt as one user message");
  cli.add_option("--max-tokens", max_tokens, "Tokens to generate")->check(CLI::Range(0, 1 << 20));
  cli.add_option("--temperature", sampling.temperature, "0 = greedy")
      ->check(CLI::Range(0.0, 100.0));
  cli.add_option("--top-k", sampling.top_k);
  cli.add_option("--top-p", sampling.top_p)->check(CLI::Range(0.0, 1.0));
  cli.add_option("--min-p", sampling.min_p)->check(CLI::Range(0.0, 1.0));
  cli.add_option("--repeat-penalty", sampling.repetition_penalty)->check(CLI::Range(0.0, 10.0));
  cli.add_option("--seed", sampling.seed);
  cli.add_option("--threads", threads)->check(CLI::Range(1, 1024));
  std::string kv_type = "f16";
  cli.add_option("--kv-type", kv_type, "KV cache element type: f16 (default) or f32")
      ->check(CLI::IsMember({"f32", "f16"}));
  std::string backend = "cpu";
  cli.add_option("--backend", backend,
                 "Where the weight products run: cpu (default) or cuda (an NVIDIA GPU; this "
                 "build has: " +
                     engine::AvailableBackends() + ")");
  bool map_weights = false;
  cli.add_flag("--mmap", map_weights,
               "Map the model file instead of reading it into 2 MiB pages (a quicker start, the "
               "page cache's copy shared between processes; decoding is slower). A model too "
               "large to read in is mapped anyway");
  cli.add_flag("--json", json, "Print token ids, text and speeds as JSON");
  cli.add_option(
      "--logits-out", logits_out,
      "Write the logits of every prompt position (float32, prompt x vocab) to this file");
  CLI11_PARSE(cli, argc, argv);

  auto engine = engine::Engine::Load(
      model_path,
      {.threads = threads,
       .backend = backend,
       .kv_type = *engine::ParseKvType(kv_type),
       .weights = map_weights ? engine::Placement::kMapped : engine::Placement::kHugePages});
  if (!engine) {
    std::cerr << "tidelane-generate: " << engine.error() << "\n";
    return 1;
  }
  engine::Engine& e = **engine;
  auto tokenizer = engine::Tokenizer::FromGguf(e.model().file());
  if (!tokenizer) {
    std::cerr << "tidelane-generate: " << tokenizer.error() << "\n";
    return 1;
  }
  const engine::Tokenizer& tok = **tokenizer;
  std::vector<std::int32_t> prompt;
  if (!prompt_tokens.empty()) {
    prompt = ParseTokens(prompt_tokens);
  } else if (chat) {
    auto source = e.model().file().GetString("tokenizer.chat_template");
    if (!source) {
      std::cerr << "tidelane-generate: " << model_path << " has no chat template; drop --chat\n";
      return 2;
    }
    auto tmpl = engine::ChatTemplate::Parse(*source);
    if (!tmpl) {
      std::cerr << "tidelane-generate: the model's chat template: " << tmpl.error() << "\n";
      return 1;
    }
    engine::ChatTemplateInput in;
    in.messages.push_back({"user", prompt_text});
    in.add_generation_prompt = true;
    if (tok.vocab().Contains(tok.bos())) in.bos_token = tok.vocab().text(tok.bos());
    if (tok.vocab().Contains(tok.eos())) in.eos_token = tok.vocab().text(tok.eos());
    auto rendered = tmpl->Render(in);
    if (!rendered) {
      std::cerr << "tidelane-generate: the model's chat template: " << rendered.error() << "\n";
      return 1;
    }
    const bool has_bos = !in.bos_token.empty() && rendered->starts_with(in.bos_token);
    prompt = tok.Encode(*rendered, !has_bos, true);
  } else {
    prompt = tok.Encode(prompt_text, true, false);
  }
  if (prompt.empty()) {
    std::cerr << "tidelane-generate: the prompt is empty (give --prompt or --prompt-tokens)\n";
    return 2;
  }
  const engine::SequenceId seq = e.NewSequence();
  const auto t0 = Clock::now();
  engine::Engine::Step step{seq, prompt, !logits_out.empty()};
  auto logits = e.Forward({&step, 1});
  if (!logits) {
    std::cerr << "tidelane-generate: " << logits.error() << "\n";
    return 1;
  }
  const auto t1 = Clock::now();
  const std::size_t vocab = e.config().vocab;
  if (!logits_out.empty()) {
    std::ofstream out(logits_out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits->front().data()),
              static_cast<std::streamsize>(logits->front().size() * sizeof(float)));
    if (!out) {
      std::cerr << "tidelane-generate: cannot write " << logits_out << "\n";
      return 1;
    }
  }
  std::vector<float> last(logits->front().end() - static_cast<std::ptrdiff_t>(vocab),
                          logits->front().end());
  engine::Sampler sampler(sampling);
  std::vector<std::int32_t> generated;
  std::string text;
  engine::StreamingDecoder decoder(tok);
  for (int i = 0; i < max_tokens; ++i) {
    const std::int32_t next = sampler.Sample(last, e.Tokens(seq));
    if (tok.IsEndOfGeneration(next)) break;
    generated.push_back(next);
    const std::string piece = decoder.Push(next);
    text += piece;
    if (!json) std::cout << piece << std::flush;
    if (i + 1 == max_tokens || e.Tokens(seq).size() + 1 >= e.config().context) break;
    const std::int32_t one[] = {next};
    engine::Engine::Step s{seq, one};
    auto l = e.Forward({&s, 1});
    if (!l) {
      std::cerr << "tidelane-generate: " << l.error() << "\n";
      return 1;
    }
    last = std::move(l->front());
  }
  const auto t2 = Clock::now();
  const std::string tail = decoder.Finish();
  text += tail;
  if (json) {
    nlohmann::json j;
    j["prompt_tokens"] = prompt;
    j["tokens"] = generated;
    j["text"] = text;
    j["backend"] = std::string(e.backend());
    j["prefill_tok_s"] = static_cast<double>(prompt.size()) / Seconds(t0, t1);
    j["decode_tok_s"] =
        generated.size() > 1 ? static_cast<double>(generated.size() - 1) / Seconds(t1, t2) : 0.0;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << tail << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& ex) {
    std::cerr << "tidelane-generate: " << ex.what() << "\n";
    return 1;
  }
}
