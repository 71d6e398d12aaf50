#include "router/worker/gguf_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <span>
#include <stdexcept>

#include "router/engine/sampler.h"
#include "router/receipt/receipt.h"
#include "router/worker/kv_handoff.h"

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
  std::function<bool()> cancelled;  // GenerationInput::cancelled, polled by Execute
  std::uint32_t next_index = 0;     // index of the next token the client sees
  std::uint32_t produced = 0;       // tokens generated here
  std::uint32_t max_new = 0;
  std::int32_t next_token = -1;  // sampled, not yet fed
  Clock::time_point admitted;
  GenerationResult result;
  std::string error;
  std::optional<KvHandoffError::Kind> kv_error;  // the handoff could not be imported
  bool done = false;
  // Prefill/decode split. A prefill job stops after its first token and exports its cache; a
  // decode job joins the batch by importing one (the blob outlives the job: Decode owns it).
  bool prefill_only = false;
  std::span<const std::uint8_t> import_kv;
  std::vector<std::uint8_t> exported;
  std::int32_t handoff_token = -1;
  std::uint64_t handoff_draws = 0;
  std::condition_variable finished;

  Job(const engine::SamplingParams& p, const engine::Tokenizer& t) : sampler(p), decoder(t) {}
  bool prefilling() const { return fed < prompt.size(); }
};

engine::Result<std::unique_ptr<GgufEngine>> GgufEngine::Load(const std::filesystem::path& path,
                                                             const GgufEngineOptions& options) {
  auto loaded = engine::Engine::Load(path, {.threads = options.threads,
                                            .backend = options.backend,
                                            .kv_type = options.kv_type,
                                            .weights = options.weights});
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

namespace {

engine::SamplingParams ParamsOf(const GenerationInput& input) {
  engine::SamplingParams params;
  params.temperature = input.temperature;
  params.top_p = input.temperature > 0 ? 0.95f : 1.0f;
  params.seed = input.seed;
  return params;
}

}  // namespace

// Fills in what every kind of job shares; false when there is nothing to generate.
bool GgufEngine::Prepare(Job& job, std::vector<std::int32_t> prompt,
                         const GenerationInput& input) const {
  job.prompt = std::move(prompt);
  job.next_index = static_cast<std::uint32_t>(input.generated.size());
  const std::uint32_t limit = input.max_tokens ? input.max_tokens : options_.default_max_tokens;
  job.max_new = limit > job.next_index ? limit - job.next_index : 0;
  job.result.prompt_tokens = static_cast<std::uint32_t>(job.prompt.size());
  job.result.prompt_encoding = "token-ids";
  job.result.prompt_sha256 = receipt::Sha256TokenIds(job.prompt);
  job.result.completion_tokens = job.next_index;
  job.cancelled = input.cancelled;
  if (!input.generated.empty()) {
    // A resumed answer (its node failed, or the router restarted) goes on as if it had not
    // stopped: its text continues mid-way, and a seeded sampler takes up where the first
    // node's left off, one draw per token said (the text re-read above gives the context).
    job.decoder.Continue();
    job.sampler.Skip(job.next_index);
  }
  if (job.max_new == 0) job.result.finish_reason = "length";
  return job.max_new > 0;
}

GenerationResult GgufEngine::Run(const GenerationInput& input, const TokenSink& sink) {
  auto prompt = PromptTokens(input);
  if (!prompt) throw std::invalid_argument(prompt.error());
  Job job(ParamsOf(input), *tokenizer_);
  if (!Prepare(job, std::move(prompt).value(), input)) return job.result;
  Execute(job, sink);
  return job.result;
}

PrefillOutput GgufEngine::Prefill(const GenerationInput& input, const TokenSink& sink) {
  auto prompt = PromptTokens(input);
  if (!prompt) throw std::invalid_argument(prompt.error());
  Job job(ParamsOf(input), *tokenizer_);
  job.prefill_only = true;
  if (!Prepare(job, std::move(prompt).value(), input)) return {job.result, {}};
  Execute(job, sink);
  PrefillOutput out{job.result, {}};
  if (job.result.finish_reason == "handoff") {
    HandoffHeader h;
    h.engine = std::string(Kind());
    h.model = Model();
    h.request_id = input.request_id;
    h.prompt_sha256 = job.result.prompt_sha256;
    h.prompt_prefix = static_cast<std::uint32_t>(input.generated.size());
    h.resume_index = job.next_index;
    h.next_token = job.handoff_token;
    h.sampler_draws = job.handoff_draws;
    out.handoff = PackHandoff(h, job.exported);
  }
  return out;
}

GenerationResult GgufEngine::Decode(const GenerationInput& input, std::string_view handoff,
                                    const TokenSink& sink) {
  const UnpackedHandoff u = UnpackHandoff(handoff);
  CheckHandoff(u.header, Kind(), Model(), input);
  // The cache must hold this conversation's prompt, as the prefill engine built it.
  GenerationInput prefilled = input;
  prefilled.generated.resize(u.header.prompt_prefix);
  auto prompt = PromptTokens(prefilled);
  if (!prompt) throw std::invalid_argument(prompt.error());
  if (receipt::Sha256TokenIds(*prompt) != u.header.prompt_sha256) {
    throw KvHandoffError(KvHandoffError::Kind::kForeign,
                         "the KV handoff does not belong here: it holds another prompt than "
                         "this conversation's");
  }
  if (u.header.next_token < 0 ||
      static_cast<std::size_t>(u.header.next_token) >= engine_->config().vocab) {
    throw KvHandoffError(KvHandoffError::Kind::kCorrupt,
                         "the KV handoff is unusable: its next token is outside the vocabulary");
  }
  Job job(ParamsOf(input), *tokenizer_);
  if (!Prepare(job, std::move(prompt).value(), input)) return job.result;
  job.fed = job.prompt.size();
  job.import_kv = u.kv;
  // The prefill engine sampled this token but did not feed it; its sampler and text decoder
  // saw it. Replaying both makes the answer continue exactly as on one node.
  job.next_token = u.header.next_token;
  // Prepare skipped the draws of the tokens said before a resume; the prefill engine's count
  // includes those.
  job.sampler.Skip(u.header.sampler_draws - std::min(u.header.sampler_draws, job.sampler.draws()));
  job.decoder.Push(u.header.next_token);
  Execute(job, sink);
  return job.result;
}

void GgufEngine::Execute(Job& job, const TokenSink& sink) {
  ++active_;
  std::unique_lock lock(mu_);
  job.admitted = Clock::now();
  waiting_.push_back(&job);
  wake_.notify_all();
  const auto ready = [&] { return job.done || !job.outbox.empty(); };
  for (;;) {
    if (!job.cancelled) {
      job.finished.wait(lock, ready);
    } else if (!job.finished.wait_for(lock, kCancelPoll, ready)) {
      // Nothing to pass on yet (a long prompt's prefill, say): has the client left? The batch
      // loop then drops the job at its next pass instead of computing the rest of its prompt.
      if (!job.client_gone) {
        lock.unlock();
        const bool gone = job.cancelled();
        lock.lock();
        if (gone) job.client_gone = true;
      }
      continue;
    }
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
  if (job.kv_error) throw KvHandoffError(*job.kv_error, job.error);
  if (!job.error.empty()) throw std::runtime_error(job.error);
}

void GgufEngine::Admit(Job* j, std::vector<Job*>& running) {
  if (j->import_kv.empty()) {
    j->seq = engine_->NewSequence();
    running.push_back(j);
    return;
  }
  // Imported on this thread, between two passes: the engine is only ever driven by the loop.
  auto imported = engine_->Import(j->import_kv);
  std::string problem;
  auto kind = KvHandoffError::Kind::kCorrupt;
  if (!imported) {
    // The engine's Import says why in words; these are the two that are not corruption.
    problem = imported.error();
    if (problem.find("another model") != std::string::npos) kind = KvHandoffError::Kind::kForeign;
    if (problem.find("KV cache is full") != std::string::npos) kind = KvHandoffError::Kind::kNoRoom;
  } else if (engine_->Tokens(*imported) != j->prompt) {
    engine_->FreeSequence(*imported);
    kind = KvHandoffError::Kind::kForeign;
    problem = "it holds other tokens than this conversation's prompt";
  }
  if (!problem.empty()) {
    std::lock_guard lock(mu_);
    j->result.finish_reason = "error";
    j->kv_error = kind;
    j->error = "cannot import the KV handoff: " + problem;
    j->done = true;
    j->finished.notify_all();
    return;
  }
  j->seq = *imported;
  j->import_kv = {};
  running.push_back(j);
}

void GgufEngine::Loop() {
  std::vector<Job*> running;
  for (;;) {
    std::vector<Job*> joining;
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
      while (!waiting_.empty() && running.size() + joining.size() < options_.max_batch) {
        joining.push_back(waiting_.front());
        waiting_.pop_front();
      }
    }
    for (Job* j : joining) Admit(j, running);
    if (!running.empty()) Step(running);
  }
}

void GgufEngine::Step(std::vector<Job*>& running) {
  auto finish = [&](Job* j, const std::string& reason, const std::string& error = {}) {
    engine_->FreeSequence(j->seq);
    std::lock_guard lock(mu_);
    j->result.finish_reason = reason;
    j->error = error;
    j->done = true;
    j->finished.notify_all();
  };
  // A job whose client left ends before another chunk of its prompt (or another token) is
  // computed for it.
  std::erase_if(running, [&](Job* j) {
    if (!j->client_gone) return false;
    finish(j, "cancelled");
    return true;
  });
  if (running.empty()) return;
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
    if (j->prefill_only) {
      // Split: the cache holds the prompt; the sampled token and the sampler's position go
      // with it, and another engine feeds the token and carries on.
      auto kv = engine_->Export(j->seq);
      if (!kv) {
        spdlog::error("cannot export a sequence's KV cache: {}", kv.error());
        finish(j, "error", "cannot export the KV cache: " + kv.error());
        continue;
      }
      j->exported = std::move(kv).value();
      j->handoff_token = token;
      j->handoff_draws = j->sampler.draws();
      finish(j, "handoff");
      continue;
    }
    j->next_token = token;
    still.push_back(j);
  }
  running = std::move(still);
}

}  // namespace tidelane::worker
