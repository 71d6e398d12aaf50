#include "router/worker/gguf_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <stdexcept>

#include "router/engine/sampler.h"
#include "router/receipt/receipt.h"

namespace tidelane::worker {

using Clock = std::chrono::steady_clock;

struct GgufEngine::Job {
  std::vector<std::int32_t> prompt;
  std::size_t fed = 0;  // prompt tokens already in the KV cache
  engine::SequenceId seq = 0;
  engine::Sampler sampler;
  engine::StreamingDecoder decoder;
  // Tokens made by the batch loop, handed to Run's thread, which writes them to the sink: a
  // slow client then slows only its own request, never the batch. Guarded by the engine's mu_.
  std::deque<std::pair<std::uint32_t, std::string>> outbox;
  std::atomic<bool> client_gone{false};
  std::uint32_t next_index = 0;  // index of the next token the client sees
  std::uint32_t produced = 0;    // tokens generated here
  std::uint32_t max_new = 0;
  std::int32_t next_token = -1;  // sampled, not yet fed
  Clock::time_point admitted;
  GenerationResult result;
  std::string error;
  bool done = false;
  std::condition_variable finished;

  Job(const engine::SamplingParams& p, const engine::Tokenizer& t) : sampler(p), decoder(t) {}
  bool prefilling() const { return fed < prompt.size(); }
};

engine::Result<std::unique_ptr<GgufEngine>> GgufEngine::Load(const std::filesystem::path& path,
                                                             const GgufEngineOptions& options) {
  auto loaded = engine::Engine::Load(path, {.threads = options.threads});
  if (!loaded) return engine::Error{loaded.error()};
  std::unique_ptr<GgufEngine> e(new GgufEngine());
  e->engine_ = std::move(loaded).value();
  auto tokenizer = engine::Tokenizer::FromGguf(e->engine_->model().file());
  if (!tokenizer) return engine::Error{tokenizer.error()};
  e->tokenizer_ = std::move(tokenizer).value();
  if (auto source = e->engine_->model().file().GetString("tokenizer.chat_template")) {
    auto parsed = engine::ChatTemplate::Parse(*source);
    if (!parsed) {
      return engine::Error{path.string() + ": its chat template cannot be used: " + parsed.error()};
    }
    e->template_ = std::move(parsed).value();
  }
  e->model_name_ = e->engine_->config().name;
  e->options_ = options;
  e->Calibrate();
  e->loop_ = std::thread([raw = e.get()] { raw->Loop(); });
  return e;
}

void GgufEngine::Calibrate() {
  const std::size_t vocab = engine_->config().vocab;
  const std::size_t prompt_len = std::min<std::size_t>(32, engine_->config().context / 2);
  constexpr int kDecodeSteps = 4;
  std::vector<std::int32_t> prompt(prompt_len);
  for (std::size_t i = 0; i < prompt_len; ++i)
    prompt[i] = static_cast<std::int32_t>((i * 7919) % vocab);
  const engine::SequenceId seq = engine_->NewSequence();
  const auto t0 = Clock::now();
  engine::Engine::Step step{seq, prompt};
  auto logits = engine_->Forward({&step, 1});
  const auto t1 = Clock::now();
  int decoded = 0;
  for (; logits && decoded < kDecodeSteps &&
         engine_->Tokens(seq).size() + 1 < engine_->config().context;
       ++decoded) {
    const std::int32_t next[] = {prompt[static_cast<std::size_t>(decoded) % prompt_len]};
    engine::Engine::Step one{seq, next};
    logits = engine_->Forward({&one, 1});
  }
  const auto t2 = Clock::now();
  engine_->FreeSequence(seq);
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  if (prefill_s > 0) prefill_tokens_per_s_ = static_cast<double>(prompt_len) / prefill_s;
  if (decoded > 0) decode_ms_per_token_ = decode_ms / decoded;
  spdlog::info("model {}: prefill {:.0f} tok/s, decode {:.2f} ms/token on {} thread(s)",
               model_name_, prefill_tokens_per_s_, decode_ms_per_token_, engine_->threads());
}

GgufEngine::~GgufEngine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (loop_.joinable()) loop_.join();
}

engine::Result<std::vector<std::int32_t>> GgufEngine::PromptTokens(
    const GenerationInput& input) const {
  std::string text;
  if (template_) {
    engine::ChatTemplateInput in;
    for (const auto& m : input.messages) in.messages.push_back({m.role, m.content});
    in.add_generation_prompt = true;
    const auto& vocab = tokenizer_->vocab();
    if (vocab.Contains(tokenizer_->bos())) in.bos_token = vocab.text(tokenizer_->bos());
    if (vocab.Contains(tokenizer_->eos())) in.eos_token = vocab.text(tokenizer_->eos());
    auto rendered = template_->Render(in);
    if (!rendered)
      return engine::Error{"the chat template rejected the conversation: " + rendered.error()};
    text = std::move(rendered).value();
  } else {
    // A model without a chat template is a plain text model: it continues the conversation's
    // text, one message per paragraph.
    for (const auto& m : input.messages) text += (text.empty() ? "" : "\n\n") + m.content;
  }
  // Templates usually write BOS themselves; do not add a second one.
  const bool template_has_bos = tokenizer_->vocab().Contains(tokenizer_->bos()) &&
                                text.starts_with(tokenizer_->vocab().text(tokenizer_->bos()));
  std::vector<std::int32_t> tokens = tokenizer_->Encode(text, !template_has_bos, true);
  std::string resumed;
  for (const auto& piece : input.generated) resumed += piece;
  if (!resumed.empty()) {
    auto more = tokenizer_->Encode(resumed, false, false);
    tokens.insert(tokens.end(), more.begin(), more.end());
  }
  if (tokens.empty()) return engine::Error{"the conversation is empty"};
  if (tokens.size() >= engine_->config().context) {
    return engine::Error{"the conversation is " + std::to_string(tokens.size()) +
                         " tokens long; the model's context holds " +
                         std::to_string(engine_->config().context)};
  }
  return tokens;
}

GenerationResult GgufEngine::Run(const GenerationInput& input, const TokenSink& sink) {
  auto prompt = PromptTokens(input);
  if (!prompt) throw std::invalid_argument(prompt.error());
  engine::SamplingParams params;
  params.temperature = input.temperature;
  params.top_p = input.temperature > 0 ? 0.95f : 1.0f;
  params.seed = input.seed;
  Job job(params, *tokenizer_);
  job.prompt = std::move(prompt).value();
  job.next_index = static_cast<std::uint32_t>(input.generated.size());
  const std::uint32_t limit = input.max_tokens ? input.max_tokens : options_.default_max_tokens;
  job.max_new = limit > job.next_index ? limit - job.next_index : 0;
  job.result.prompt_tokens = static_cast<std::uint32_t>(job.prompt.size());
  job.result.prompt_encoding = "token-ids";
  job.result.prompt_sha256 = receipt::Sha256TokenIds(job.prompt);
  job.result.completion_tokens = job.next_index;
  if (job.max_new == 0) {
    job.result.finish_reason = "length";
    return job.result;
  }
  ++active_;
  std::unique_lock lock(mu_);
  job.admitted = Clock::now();
  waiting_.push_back(&job);
  wake_.notify_all();
  for (;;) {
    job.finished.wait(lock, [&] { return job.done || !job.outbox.empty(); });
    while (!job.outbox.empty()) {
      auto [index, text] = std::move(job.outbox.front());
      job.outbox.pop_front();
      lock.unlock();
      if (!job.client_gone && !sink(index, text)) job.client_gone = true;
      lock.lock();
    }
    if (job.done && job.outbox.empty()) break;
  }
  --active_;
  if (job.client_gone && job.result.finish_reason != "error")
    job.result.finish_reason = "cancelled";
  if (!job.error.empty()) throw std::runtime_error(job.error);
  return job.result;
}

void GgufEngine::Loop() {
  std::vector<Job*> running;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !waiting_.empty() || !running.empty(); });
      if (stop_) {
        for (Job* j : running) {
          j->result.finish_reason = "cancelled";
          j->done = true;
          j->finished.notify_all();
        }
        for (Job* j : waiting_) {
          j->result.finish_reason = "cancelled";
          j->done = true;
          j->finished.notify_all();
        }
        return;
      }
      while (!waiting_.empty() && running.size() < options_.max_batch) {
        running.push_back(waiting_.front());
        waiting_.pop_front();
        running.back()->seq = engine_->NewSequence();
      }
    }
    Step(running);
  }
}

void GgufEngine::Step(std::vector<Job*>& running) {
  std::vector<engine::Engine::Step> steps;
  std::vector<Job*> stepped;
  for (Job* j : running) {
    if (j->prefilling()) {
      const std::size_t n = std::min(options_.prefill_chunk, j->prompt.size() - j->fed);
      steps.push_back({j->seq, {j->prompt.data() + j->fed, n}});
    } else {
      steps.push_back({j->seq, {&j->next_token, 1}});
    }
    stepped.push_back(j);
  }
  auto logits = engine_->Forward(steps);
  auto finish = [&](Job* j, const std::string& reason, const std::string& error = {}) {
    engine_->FreeSequence(j->seq);
    std::lock_guard lock(mu_);
    j->result.finish_reason = reason;
    j->error = error;
    j->done = true;
    j->finished.notify_all();
  };
  if (!logits) {
    // Out of KV memory with others running: the newest request waits for them to finish.
    if (running.size() > 1 && logits.error().find("KV cache is full") != std::string::npos) {
      // Its context so far (prompt, answer, the token not yet fed) becomes its new prompt, so
      // nothing it already sent is lost or repeated when it comes back.
      Job* j = running.back();
      running.pop_back();
      std::vector<std::int32_t> context = engine_->Tokens(j->seq);
      if (!j->prefilling())
        context.push_back(j->next_token);
      else
        context.insert(context.end(), j->prompt.begin() + static_cast<std::ptrdiff_t>(j->fed),
                       j->prompt.end());
      engine_->FreeSequence(j->seq);
      j->prompt = std::move(context);
      j->fed = 0;
      std::lock_guard lock(mu_);
      waiting_.push_front(j);
      return;
    }
    spdlog::error("model pass failed: {}", logits.error());
    for (Job* j : running) finish(j, "error", logits.error());
    running.clear();
    return;
  }
  std::vector<Job*> still;
  for (std::size_t i = 0; i < stepped.size(); ++i) {
    Job* j = stepped[i];
    if (j->prefilling()) {
      j->fed += steps[i].tokens.size();
      if (j->prefilling()) {
        still.push_back(j);
        continue;
      }
      if (j->produced == 0) {
        j->result.prefill_ms =
            std::chrono::duration<double, std::milli>(Clock::now() - j->admitted).count();
      }
    }
    const std::int32_t token = j->sampler.Sample((*logits)[i], engine_->Tokens(j->seq));
    if (tokenizer_->IsEndOfGeneration(token)) {
      finish(j, "stop");
      continue;
    }
    const std::string text = j->decoder.Push(token);
    ++j->produced;
    j->result.completion_tokens = j->next_index + 1;
    if (j->client_gone) {
      finish(j, "cancelled");
      continue;
    }
    {
      std::lock_guard lock(mu_);
      j->outbox.emplace_back(j->next_index++, text);
      j->finished.notify_all();
    }
    if (j->produced >= j->max_new ||
        engine_->Tokens(j->seq).size() + 1 >= engine_->config().context) {
      finish(j, "length");
      continue;
    }
    j->next_token = token;
    still.push_back(j);
  }
  running = std::move(still);
}

}  // namespace tidelane::worker
