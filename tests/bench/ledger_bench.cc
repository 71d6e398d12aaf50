// What the ledger's retention costs on the accept path: the same stream of requests (accept,
// 16 tokens, done), one after the other as fast as the ledger takes them, written to an
// unbounded ledger (the baseline) and to one bounded by --ledger-max-mb, which has to make
// room from its oldest answers once it is 90% full. Per ledger: accept latency (AcceptAsync to
// its outcome: the commit a request waits for before anything reaches its client), wall time,
// the files' size at the end, and how many requests were deleted or refused.
// A second workload, chats: CHATS conversations of TURNS turns, each turn sending the whole
// conversation so far (as chat clients do), one turn of each chat after the other; the accept
// latency of the first and of the last five turns, and at the end the database's size beside
// the bytes of every request as sent (what a ledger storing each request whole, as schema 3
// did, writes into its request rows).
// Usage: ledger_bench [REQUESTS=20000] [BOUND_MIB=8] [PROMPT_BYTES=1000] [CHATS=100] [TURNS=40]
// (scripts/bench-ledger runs it; not part of CI).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "router/server/ledger.h"

using tidelane::server::Ledger;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Result {
  std::vector<double> accept_us;
  double wall_s = 0;
  int refused = 0;
  std::uint64_t db_bytes = 0, wal_bytes = 0;
  Ledger::PruneCounts pruned;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p / 100 * static_cast<double>(v.size() - 1))];
}

std::uint64_t FileBytes(const fs::path& file) {
  std::error_code ec;
  const auto n = fs::file_size(file, ec);
  return ec ? 0 : n;
}

// Opens a fresh ledger in `dir`, or ends the run saying why.
std::unique_ptr<Ledger> OpenFresh(const fs::path& dir, std::uint64_t max_bytes) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string error;
  auto ledger = Ledger::Open(dir, &error, max_bytes);
  if (!ledger) {
    std::fprintf(stderr, "ledger_bench: %s\n", error.c_str());
    std::exit(1);
  }
  return ledger;
}

// Accepts `request` as `id` and waits for its outcome: the outcome and how long it took, µs.
std::pair<Ledger::AcceptOutcome, double> TimedAccept(Ledger& ledger, const std::string& id,
                                                     const tidelane::v1::ChatRequest& request) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Ledger::AcceptOutcome> outcome;
  const auto t0 = Clock::now();
  ledger.AcceptAsync(id, request, std::nullopt, [&](Ledger::AcceptOutcome o) {
    std::lock_guard lock(mu);
    outcome = o;
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return outcome.has_value(); });
  return {*outcome, std::chrono::duration<double, std::micro>(Clock::now() - t0).count()};
}

// What the rest of an answer writes: 16 tokens and its end.
void Answer(Ledger& ledger, const std::string& id) {
  for (std::uint32_t t = 0; t < 16; ++t) ledger.AppendToken(id, t, " token");
  ledger.Finish(id, Ledger::State::kDone, "stop", "");
}

Result Run(const fs::path& dir, int requests, std::uint64_t max_bytes, std::size_t prompt_bytes) {
  Result r;
  {
    auto ledger = OpenFresh(dir, max_bytes);
    tidelane::v1::ChatRequest request;

    auto* m = request.add_messages();
    m->set_role("user");
    m->set_content(std::string(prompt_bytes, 'p'));
    const auto start = Clock::now();
    for (int i = 0; i < requests; ++i) {
      const std::string id = "r" + std::to_string(i);
      request.set_conversation_id("conversation-" + std::to_string(i));  // one turn each
      const auto [outcome, us] = TimedAccept(*ledger, id, request);
      r.accept_us.push_back(us);
      if (outcome != Ledger::AcceptOutcome::kRecorded) {
        ++r.refused;
        continue;
      }
      Answer(*ledger, id);
    }
    ledger->Unfinished();  // commits what is queued
    r.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    r.db_bytes = FileBytes(dir / "ledger.sqlite3");
    r.wal_bytes = FileBytes(dir / "ledger.sqlite3-wal");
    r.pruned = ledger->Pruned();
  }
  fs::remove_all(dir);
  return r;
}

// The chat workload on an unbounded ledger.
void RunChats(const fs::path& dir, int chats, int turns) {
  auto ledger = OpenFresh(dir, 0);
  std::vector<tidelane::v1::ChatRequest> conversations(static_cast<std::size_t>(chats));
  std::vector<double> first_turns, last_turns;  // accept latency, µs
  std::uint64_t sent_bytes = 0;
  const auto start = Clock::now();
  for (int turn = 0; turn < turns; ++turn) {
    for (int c = 0; c < chats; ++c) {
      auto& chat = conversations[static_cast<std::size_t>(c)];
      const std::string tag = std::to_string(c) + "/" + std::to_string(turn);
      chat.set_conversation_id("chat-" + std::to_string(c));
      if (turn > 0) {
        auto* answer = chat.add_messages();
        answer->set_role("assistant");
        answer->set_content(tag + std::string(1000, 'a'));
      }
      auto* question = chat.add_messages();
      question->set_role("user");
      question->set_content(tag + std::string(300, 'q'));
      sent_bytes += chat.ByteSizeLong();
      const std::string id = "chat-" + tag;
      const double us = TimedAccept(*ledger, id, chat).second;
      if (turn < 5) first_turns.push_back(us);
      if (turn >= turns - 5) last_turns.push_back(us);
      Answer(*ledger, id);
    }
  }
  ledger->Unfinished();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const auto db = FileBytes(dir / "ledger.sqlite3");
  ledger.reset();
  fs::remove_all(dir);
  std::printf(
      "{\"workload\":\"chats\",\"chats\":%d,\"turns\":%d,\"requests_as_sent_mib\":%.2f,"
      "\"db_mib\":%.2f,\"accept_first5_turns_p50_us\":%.1f,\"accept_first5_turns_p99_us\":%.1f,"
      "\"accept_last5_turns_p50_us\":%.1f,\"accept_last5_turns_p99_us\":%.1f,\"wall_s\":%.2f}\n",
      chats, turns, static_cast<double>(sent_bytes) / (1024.0 * 1024.0),
      static_cast<double>(db) / (1024.0 * 1024.0), Percentile(first_turns, 50),
      Percentile(first_turns, 99), Percentile(last_turns, 50), Percentile(last_turns, 99), wall);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

void Print(const char* ledger, const Result& r, int requests, double bound_mib) {
  std::printf(
      "{\"ledger\":\"%s\",\"bound_mib\":%.1f,\"requests\":%d,\"refused\":%d,"
      "\"accept_p50_us\":%.1f,\"accept_p99_us\":%.1f,\"accept_max_us\":%.1f,"
      "\"wall_s\":%.2f,\"db_mib\":%.2f,\"wal_mib\":%.2f,\"pruned_for_room\":%llu,"
      "\"pruned_expired\":%llu,"
      "\"cpu\":\"%s\",\"cores\":%u}\n",
      ledger, bound_mib, requests, r.refused, Percentile(r.accept_us, 50),
      Percentile(r.accept_us, 99), Percentile(r.accept_us, 100), r.wall_s,
      static_cast<double>(r.db_bytes) / (1024.0 * 1024.0),
      static_cast<double>(r.wal_bytes) / (1024.0 * 1024.0),
      static_cast<unsigned long long>(r.pruned.for_room),
      static_cast<unsigned long long>(r.pruned.expired), CpuModel().c_str(),
      std::thread::hardware_concurrency());
}

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::stoi(argv[1]) : 20000;
  const double bound_mib = argc > 2 ? std::stod(argv[2]) : 8;
  const std::size_t prompt = argc > 3 ? std::stoul(argv[3]) : 1000;
  const int chats = argc > 4 ? std::stoi(argv[4]) : 100;
  const int turns = argc > 5 ? std::stoi(argv[5]) : 40;
  const fs::path dir =
      fs::temp_directory_path() / ("tidelane-ledger-bench-" + std::to_string(::getpid()));
  // Alternated, twice each, so that drift in the machine's load falls on both alike.
  for (int round = 0; round < 2; ++round) {
    Print("unbounded", Run(dir, requests, 0, prompt), requests, 0);
    Print("bounded",
          Run(dir, requests, static_cast<std::uint64_t>(bound_mib * 1024 * 1024), prompt), requests,
          bound_mib);
  }
  if (chats > 0 && turns > 0) RunChats(dir, chats, turns);
}
