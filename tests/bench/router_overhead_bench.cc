// Router-added latency: the same requests, at the same moderate load, sent straight to a
// worker (WorkerService.Generate) and through the router (ChatService.Chat). With the
// synthetic engine at --time-scale 0 the worker answers at once, so the difference is what
// the router's path costs: admission, routing, the ledger, one more gRPC hop, relaying each
// token, the receipt. Two measures per request: until the stream has ended (the added_*
// fields, the stricter: every token relayed and the receipt signed) and until the first token
// arrives (added_ttft_*: what a user waits for before text appears).
// Two kinds of load. Closed loop (the default): CONCURRENCY clients, each sending its next
// request when the last one ended. Open loop (RATE > 0): requests arrive as a Poisson process
// of RATE per second whatever the earlier ones are doing, as users do, served by up to
// CONCURRENCY client threads; each latency counts from when its request was due, so a request
// that waited for a free thread pays for the wait (no coordinated omission).
// With RELAY_ADDR (a tests/bench/bare_relay in front of the same worker) a third path is
// measured in the same rounds: one more gRPC hop that does nothing but relay (relay_* fields).
// With CHAT_TURNS=T in the environment (and MESSAGE_BYTES=B, default 600) requests are turns
// of chats rather than one-message probes: a path's n-th request is turn (n / 64) % T of one of
// 64 conversations, so it carries that chat's whole history (2 * turn earlier messages of B
// bytes each) as a chat client sends it, and routed turns name their conversation, which the
// ledger keeps once. Every path gets the same messages.
// TIMELINE=FILE writes every measured request's start and latencies (see the end of main).
// Usage: router_overhead_bench ROUTER_ADDR WORKER_ADDR TOKEN_FILE [REQUESTS] [CONCURRENCY] [RATE]
//        [RELAY_ADDR]
// (scripts/bench-serving and scripts/bench-router-ab start the processes and run it).
#include <grpcpp/create_channel.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
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

const Clock::time_point kBenchStart = Clock::now();

struct Times {
  std::vector<double> total, first_token;  // ms per request
  std::vector<double> at;                  // when each started, ms since the bench began
  void Add(const Times& other) {
    total.insert(total.end(), other.total.begin(), other.total.end());
    first_token.insert(first_token.end(), other.first_token.begin(), other.first_token.end());
    at.insert(at.end(), other.at.begin(), other.at.end());
  }
};

// Runs `requests` requests on `threads_n` client threads. `start(i)` returns the moment request
// i counts from, once it may be sent; `one(i, &first_token)` runs it, sets the moment its first
// token arrived, and says whether it succeeded.
template <typename Start, typename Fn>
Times Run(int requests, int threads_n, Start start, Fn one) {
  Times times;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(threads_n));
  for (int k = 0; k < threads_n; ++k) {
    threads.emplace_back([&] {
      for (int i; (i = next++) < requests;) {
        const Clock::time_point t0 = start(i);
        Clock::time_point first = t0;
        if (!one(i, &first)) continue;
        const auto end = Clock::now();
        std::lock_guard lock(mu);
        times.total.push_back(MsSince(t0, end));
        times.first_token.push_back(MsSince(t0, first));
        times.at.push_back(MsSince(kBenchStart, t0));
      }
    });
  }
  for (auto& t : threads) t.join();
  return times;
}

// Closed loop: each client thread sends its next request when the last one ended.
template <typename Fn>
Times Measure(int requests, int concurrency, Fn one) {
  return Run(
      requests, concurrency, [](int) { return Clock::now(); }, one);
}

// Open loop: request i is due at a fixed time (exponential gaps of mean 1/rate from a fixed
// seed, so every path's round sees the same arrivals) and is measured from then.
template <typename Fn>
Times MeasureOpen(int requests, int threads_n, double rate, std::uint64_t seed, Fn one) {
  std::vector<Clock::time_point> due(static_cast<std::size_t>(requests));
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  auto t = Clock::now() + std::chrono::milliseconds(5);
  for (auto& d : due) {
    t += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    d = t;
  }
  const auto when_due = [&](int i) {
    const auto t0 = due[static_cast<std::size_t>(i)];
    std::this_thread::sleep_until(t0);
    return t0;
  };
  return Run(requests, threads_n, when_due, one);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: %s ROUTER_ADDR WORKER_ADDR TOKEN_FILE [REQUESTS] [CONCURRENCY] [RATE] "
                 "[RELAY_ADDR]\n",
                 argv[0]);
    return 2;
  }
  const std::string token = auth::ReadTokenFile(argv[3]);
  const int requests = argc > 4 ? std::stoi(argv[4]) : 2000;
  const int concurrency = argc > 5 ? std::stoi(argv[5]) : 4;
  const double rate = argc > 6 ? std::stod(argv[6]) : 0;  // requests per second; 0: closed loop
  auto chat =
      v1::ChatService::NewStub(grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  auto worker =
      v1::WorkerService::NewStub(grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials()));
  auto relay = argc > 7 ? v1::ChatService::NewStub(
                              grpc::CreateChannel(argv[7], grpc::InsecureChannelCredentials()))
                        : nullptr;

  const char* turns_env = std::getenv("CHAT_TURNS");
  const char* bytes_env = std::getenv("MESSAGE_BYTES");
  const int chat_turns = turns_env ? std::max(1, std::atoi(turns_env)) : 0;
  const std::size_t message_bytes =
      bytes_env ? static_cast<std::size_t>(std::max(1, std::atoi(bytes_env))) : 600;
  constexpr int kChats = 64;

  // Every request has an id of its own, also across runs against the same router (the scripts
  // run several): a finished id sent again replaces its record in the ledger, which is not the
  // path a new request takes.
  const std::string run = std::to_string(getpid());
  std::atomic<int> sequence{0};
  std::atomic<int> direct_made{0}, routed_made{0}, relayed_made{0};
  const auto text = [&](const std::string& head) {
    std::string t = head;
    while (t.size() < message_bytes) t += " and the tide comes in";
    t.resize(message_bytes);
    return t;
  };
  // Fills `messages` for a path's n-th request (counted by `made`) or probe i; returns its
  // conversation's id ("" for a one-message probe).
  const auto conversation = [&](auto* messages, int i, std::atomic<int>& made) -> std::string {
    if (chat_turns == 0) {
      auto* m = messages->Add();
      m->set_role("user");
      m->set_content("latency probe " + std::to_string(i));
      return "";
    }
    const int n = made++;
    const int chat = n % kChats, turn = (n / kChats) % chat_turns;
    const int epoch = n / (kChats * chat_turns);
    std::string id = "chat-" + run + "-" + std::to_string(epoch) + "-" + std::to_string(chat);
    for (int k = 0; k <= turn; ++k) {
      auto* q = messages->Add();
      q->set_role("user");
      q->set_content(text(id + " question " + std::to_string(k)));
      if (k == turn) break;
      auto* a = messages->Add();
      a->set_role("assistant");
      a->set_content(text(id + " answer " + std::to_string(k)));
    }
    return id;
  };
  const auto direct = [&](int i, Clock::time_point* first) {
    v1::GenerateRequest r;
    r.set_request_id("direct-" + run + "-" + std::to_string(sequence++));
    conversation(r.mutable_messages(), i, direct_made);
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
  const auto chat_through = [&](v1::ChatService::Stub& stub, std::atomic<int>& made, int i,
                                Clock::time_point* first) {
    v1::ChatRequest r;
    r.set_request_id("routed-" + run + "-" + std::to_string(sequence++));
    r.set_conversation_id(conversation(r.mutable_messages(), i, made));
    r.mutable_sampling()->set_max_tokens(8);
    grpc::ClientContext c;
    auth::AttachBearer(c, token);
    auto reader = stub.Chat(&c, r);
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
  const auto routed = [&](int i, Clock::time_point* first) {
    return chat_through(*chat, routed_made, i, first);
  };
  const auto relayed = [&](int i, Clock::time_point* first) {
    return chat_through(*relay, relayed_made, i, first);
  };
  const auto measure = [&](int n, auto one, std::uint64_t seed) {
    return rate > 0 ? MeasureOpen(n, concurrency, rate, seed, one) : Measure(n, concurrency, one);
  };
  measure(200, direct, 0);  // warm every path
  measure(200, routed, 0);
  if (relay) measure(200, relayed, 0);
  // Interleave rounds so drift in the machine's load affects every path alike; in open loop
  // every path of a round sees the same arrival times. Each round starts with a few requests
  // that are not measured: a path idle while the others ran has let threads go cold (the
  // relay, with no other traffic, showed 25 ms at p99 in open loop without them).
  Times d, r, b;
  const auto round_of = [&](auto one, int round) {
    Measure(20, concurrency, one);
    return measure(requests / 4, one, 1 + round);
  };
  for (int round = 0; round < 4; ++round) {
    d.Add(round_of(direct, round));
    r.Add(round_of(routed, round));
    if (relay) b.Add(round_of(relayed, round));
  }
  const auto p = [](const std::vector<double>& v, double q) { return Percentile(v, q); };
  std::printf(
      "{\"requests_each\":%zu,\"concurrency\":%d,\"rate_per_s\":%g,\"max_tokens\":8,"
      "\"chat_turns\":%d,\"message_bytes\":%zu,"
      "\"direct_p50_ms\":%.3f,\"direct_p99_ms\":%.3f,\"routed_p50_ms\":%.3f,\"routed_p99_ms\":%.3f,"
      "\"added_p50_ms\":%.3f,\"added_p99_ms\":%.3f,"
      "\"direct_ttft_p50_ms\":%.3f,\"direct_ttft_p99_ms\":%.3f,"
      "\"routed_ttft_p50_ms\":%.3f,\"routed_ttft_p99_ms\":%.3f,"
      "\"added_ttft_p50_ms\":%.3f,\"added_ttft_p99_ms\":%.3f",
      d.total.size(), concurrency, rate, chat_turns, chat_turns ? message_bytes : 0, p(d.total, 50),
      p(d.total, 99), p(r.total, 50), p(r.total, 99), p(r.total, 50) - p(d.total, 50),
      p(r.total, 99) - p(d.total, 99), p(d.first_token, 50), p(d.first_token, 99),
      p(r.first_token, 50), p(r.first_token, 99), p(r.first_token, 50) - p(d.first_token, 50),
      p(r.first_token, 99) - p(d.first_token, 99));
  if (relay) {
    std::printf(
        ",\"relay_p50_ms\":%.3f,\"relay_p99_ms\":%.3f,\"relay_added_p50_ms\":%.3f,"
        "\"relay_added_p99_ms\":%.3f,\"relay_added_ttft_p50_ms\":%.3f,"
        "\"relay_added_ttft_p99_ms\":%.3f",
        p(b.total, 50), p(b.total, 99), p(b.total, 50) - p(d.total, 50),
        p(b.total, 99) - p(d.total, 99), p(b.first_token, 50) - p(d.first_token, 50),
        p(b.first_token, 99) - p(d.first_token, 99));
  }
  std::printf("}\n");
  // TIMELINE=FILE: every measured request as "path,start_ms,total_ms,first_token_ms", to see
  // whether the slow ones cluster in time (a periodic task) or not.
  if (const char* timeline = std::getenv("TIMELINE")) {
    if (FILE* f = std::fopen(timeline, "w")) {
      const auto dump = [f](const char* path, const Times& t) {
        for (std::size_t k = 0; k < t.total.size(); ++k)
          std::fprintf(f, "%s,%.3f,%.4f,%.4f\n", path, t.at[k], t.total[k], t.first_token[k]);
      };
      dump("direct", d);
      dump("routed", r);
      dump("relay", b);
      std::fclose(f);
    }
  }
  return 0;
}
