// Router-added latency: the same requests, at the same moderate load, sent straight to a
// worker (WorkerService.Generate) and through the router (ChatService.Chat). With the
// synthetic engine at --time-scale 0 the worker answers at once, so the difference is what
// the router's path costs: admission, routing, the ledger, one more gRPC hop.
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

template <typename Fn>
std::vector<double> Measure(int requests, int concurrency, Fn one) {
  std::vector<double> ms;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next++) < requests;) {
        const auto t0 = Clock::now();
        if (!one(i)) continue;
        const double d = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        std::lock_guard lock(mu);
        ms.push_back(d);
      }
    });
  }
  for (auto& t : threads) t.join();
  return ms;
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
  const auto direct = [&](int i) {
    v1::GenerateRequest r;
    r.set_request_id("direct-" + std::to_string(i));
    message(r.add_messages(), i);
    r.mutable_sampling()->set_max_tokens(8);
    grpc::ClientContext c;
    auth::AttachBearer(c, token);
    auto reader = worker->Generate(&c, r);
    for (v1::GenerateEvent e; reader->Read(&e);) {
    }
    return reader->Finish().ok();
  };
  const auto routed = [&](int i) {
    v1::ChatRequest r;
    r.set_request_id("routed-" + std::to_string(i));
    message(r.add_messages(), i);
    r.mutable_sampling()->set_max_tokens(8);
    grpc::ClientContext c;
    auth::AttachBearer(c, token);
    auto reader = chat->Chat(&c, r);
    bool done = false;
    for (v1::ChatEvent e; reader->Read(&e);) done = done || e.has_done();
    return reader->Finish().ok() && done;
  };
  Measure(200, concurrency, direct);  // warm both paths
  Measure(200, concurrency, routed);
  // Interleave rounds so drift in the machine's load affects both paths alike.
  std::vector<double> d, r;
  for (int round = 0; round < 4; ++round) {
    auto a = Measure(requests / 4, concurrency, direct);
    auto b = Measure(requests / 4, concurrency, routed);
    d.insert(d.end(), a.begin(), a.end());
    r.insert(r.end(), b.begin(), b.end());
  }
  std::printf(
      "{\"requests_each\":%zu,\"concurrency\":%d,\"max_tokens\":8,"
      "\"direct_p50_ms\":%.3f,\"direct_p99_ms\":%.3f,\"routed_p50_ms\":%.3f,\"routed_p99_ms\":%.3f,"
      "\"added_p50_ms\":%.3f,\"added_p99_ms\":%.3f}\n",
      d.size(), concurrency, Percentile(d, 50), Percentile(d, 99), Percentile(r, 50),
      Percentile(r, 99), Percentile(r, 50) - Percentile(d, 50),
      Percentile(r, 99) - Percentile(d, 99));
  return 0;
}
