// Router-added latency: the same requests, at the same moderate load, sent straight to a
// worker (WorkerService.Generate) and through the router (ChatService.Chat). With the
// synthetic engine at --time-scale 0 the worker answers at once, so the difference is what
// the router's path costs: admission, routing, the ledger, one more gRPC hop, relaying each
// token, the receipt. Two measures per request: until the stream has ended (the added_*
// fields, the stricter: every token relayed and the receipt signed) and until the first token
// arrives (added_ttft_*: what a user waits for before text appears).
// Usage: router_overhead_bench ROUTER_ADDR WORKER_ADDR TOKEN_FILE [REQUESTS] [CONCURRENCY]
// (scripts/bench-serving starts the processes and runs it).
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router/proto/auth.h"
#include "tidelane/v1/chat.grpc.pb.h"
#include "tidelane/v1/worker.grpc.pb.h"

using namespace tidelane;
using Clock = std::chrono::steady_clock;

namespace {

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p / 100 * (v.size() - 1))];
}

double MsSince(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

struct Times {
  std::vector<double> total, first_token;  // ms per request
  void Add(const Times& other) {
    total.insert(total.end(), other.total.begin(), other.total.end());
    first_token.insert(first_token.end(), other.first_token.begin(), other.first_token.end());
  }
};

// `one(i, &first_token)` runs request i, sets the moment its first token arrived, and says
// whether it succeeded.
template <typename Fn>
Times Measure(int requests, int concurrency, Fn one) {
  Times times;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(concurrency));
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next++) < requests;) {
        const auto t0 = Clock::now();
        Clock::time_point first = t0;
        if (!one(i, &first)) continue;
        const auto end = Clock::now();
        std::lock_guard lock(mu);
        times.total.push_back(MsSince(t0, end));
        times.first_token.push_back(MsSince(t0, first));
      }
    });
  }
  for (auto& t : threads) t.join();
  return times;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s ROUTER_ADDR WORKER_ADDR TOKEN_FILE [REQUESTS] [CONCURRENCY]\n",
                 argv[0]);
    return 2;
  }
  const std::string token = auth::ReadTokenFile(argv[3]);
  const int requests = argc > 4 ? std::stoi(argv[4]) : 2000;
  const int concurrency = argc > 5 ? std::stoi(argv[5]) : 4;
  auto chat =
      v1::ChatService::NewStub(grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  auto worker =
      v1::WorkerService::NewStub(grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials()));

  const auto message = [](v1::ChatMessage* m, int i) {
    m->set_role("user");
    m->set_content("latency probe " + std::to_string(i));
  };
  const auto direct = [&](int i, Clock::time_point* first) {
    v1::GenerateRequest r;
    r.set_request_id("direct-" + std::to_string(i));
    message(r.add_messages(), i);
    r.mutable_sampling()->set_max_tokens(8);
    grpc::ClientContext c;
    auth::AttachBearer(c, token);
    auto reader = worker->Generate(&c, r);
    bool seen = false;
    for (v1::GenerateEvent e; reader->Read(&e);) {
      if (!seen && e.has_token()) {
        *first = Clock::now();
        seen = true;
      }
    }
    return reader->Finish().ok() && seen;
  };
  const auto routed = [&](int i, Clock::time_point* first) {
    v1::ChatRequest r;
    r.set_request_id("routed-" + std::to_string(i));
    message(r.add_messages(), i);
    r.mutable_sampling()->set_max_tokens(8);
    grpc::ClientContext c;
    auth::AttachBearer(c, token);
    auto reader = chat->Chat(&c, r);
    bool done = false, seen = false;
    for (v1::ChatEvent e; reader->Read(&e);) {
      if (!seen && e.has_token()) {
        *first = Clock::now();
        seen = true;
      }
      done = done || e.has_done();
    }
    return reader->Finish().ok() && done && seen;
  };
  Measure(200, concurrency, direct);  // warm both paths
  Measure(200, concurrency, routed);
  // Interleave rounds so drift in the machine's load affects both paths alike.
  Times d, r;
  for (int round = 0; round < 4; ++round) {
    d.Add(Measure(requests / 4, concurrency, direct));
    r.Add(Measure(requests / 4, concurrency, routed));
  }
  const auto p = [](const std::vector<double>& v, double q) { return Percentile(v, q); };
  std::printf(
      "{\"requests_each\":%zu,\"concurrency\":%d,\"max_tokens\":8,"
      "\"direct_p50_ms\":%.3f,\"direct_p99_ms\":%.3f,\"routed_p50_ms\":%.3f,\"routed_p99_ms\":%.3f,"
      "\"added_p50_ms\":%.3f,\"added_p99_ms\":%.3f,"
      "\"direct_ttft_p50_ms\":%.3f,\"direct_ttft_p99_ms\":%.3f,"
      "\"routed_ttft_p50_ms\":%.3f,\"routed_ttft_p99_ms\":%.3f,"
      "\"added_ttft_p50_ms\":%.3f,\"added_ttft_p99_ms\":%.3f}\n",
      d.total.size(), concurrency, p(d.total, 50), p(d.total, 99), p(r.total, 50), p(r.total, 99),
      p(r.total, 50) - p(d.total, 50), p(r.total, 99) - p(d.total, 99), p(d.first_token, 50),
      p(d.first_token, 99), p(r.first_token, 50), p(r.first_token, 99),
      p(r.first_token, 50) - p(d.first_token, 50), p(r.first_token, 99) - p(d.first_token, 99));
  return 0;
}
