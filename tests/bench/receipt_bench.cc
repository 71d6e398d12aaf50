// What a receipt costs the router at the end of every answer (docs/benchmarks/serving.md):
// Countersign whole (parse and check the worker's statement, verify its Ed25519 signature,
// hash the tokens, build and sign the payload, check its own receipt), and its parts. The
// answer is the router-overhead bench's: 8 tokens from one worker; CountersigningALongAnswer
// takes 1,000 (the hashing of the tokens grows with the answer, the rest does not). Google
// Benchmark prints the machine's CPU and caches beside the figures. Run:
// build/<dir>/bin/receipt_bench (not in CI).
#include <benchmark/benchmark.h>
#include <sodium.h>

#include "router/receipt/receipt.h"

namespace {

using namespace tidelane::receipt;

struct Answer {
  Identity worker = Identity::Generate();
  Identity router = Identity::Generate();
  std::vector<std::string> tokens;
  SignedStatement statement;
  RouterStatement request;

  explicit Answer(std::size_t n) {
    static const std::vector<std::string> kWords{"Once", " upon",  " a",   " time",
                                                 ",",    " there", " was", " a"};
    for (std::size_t i = 0; i < n; ++i) tokens.push_back(kWords[i % kWords.size()]);
    WorkerStatement w;
    w.request_id = "routed-1234";
    w.worker_name = "instant";
    w.model_kind = "synthetic";
    w.model_id = "tidelane-synthetic";
    w.model_sha256 = Sha256Hex("profile high");
    w.prompt_encoding = "messages";
    w.prompt_tokens = 7;
    w.prompt_sha256 = Sha256Strings({"user", "latency probe 1234"});
    w.resumed_prefix_sha256 = Sha256Strings({});
    w.output_to_index = tokens.size();
    w.output_sha256 = Sha256Strings(tokens);
    w.finish_reason = "length";
    w.started_at_ms = 1764000000100;
    w.finished_at_ms = 1764000000102;
    statement = SignWorkerStatement(w, worker);
    request.request_id = w.request_id;
    request.prompt_messages_sha256 = w.prompt_sha256;
    request.prompt_tokens = 7;
    request.finish_reason = "length";
    request.route = {{"instant", 0, tokens.size(), "done", ""}};
    request.accepted_at_ms = 1764000000000;
    request.done_at_ms = 1764000000103;
  }
};

const Answer& TheAnswer() {
  static const Answer answer(8);
  return answer;
}

void CountersignAnswer(benchmark::State& state, const Answer& a) {
  std::string problem;
  for (auto _ : state) {
    auto e = Countersign(a.request, a.statement, a.tokens, a.router, &problem);
    if (!e) state.SkipWithError(problem.c_str());
    benchmark::DoNotOptimize(e);
  }
}

void Countersigning(benchmark::State& state) {
  CountersignAnswer(state, TheAnswer());
}
BENCHMARK(Countersigning);

void CountersigningALongAnswer(benchmark::State& state) {
  static const Answer answer(1000);
  CountersignAnswer(state, answer);
}
BENCHMARK(CountersigningALongAnswer);

void VerifyingTheWorkersSignature(benchmark::State& state) {
  const Answer& a = TheAnswer();
  const std::string key = *FromHex(a.statement.public_key);
  const auto* message = reinterpret_cast<const unsigned char*>(a.statement.statement.data());
  for (auto _ : state) {
    benchmark::DoNotOptimize(crypto_sign_verify_detached(
        reinterpret_cast<const unsigned char*>(a.statement.signature.data()), message,
        a.statement.statement.size(), reinterpret_cast<const unsigned char*>(key.data())));
  }
}
BENCHMARK(VerifyingTheWorkersSignature);

void SigningThePayload(benchmark::State& state) {
  const Answer& a = TheAnswer();
  for (auto _ : state) benchmark::DoNotOptimize(a.router.Sign(a.statement.statement));
}
BENCHMARK(SigningThePayload);

void VerifyingAWholeReceipt(benchmark::State& state) {  // what a client or auditor pays
  const Answer& a = TheAnswer();
  std::string problem;
  const auto e = Countersign(a.request, a.statement, a.tokens, a.router, &problem);
  for (auto _ : state) benchmark::DoNotOptimize(Verify(*e));
}
BENCHMARK(VerifyingAWholeReceipt);

}  // namespace

BENCHMARK_MAIN();
