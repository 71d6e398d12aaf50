// tidelane-surge: N users, each holding a multi-turn conversation, arrive at a router within a
// ramp, over real gRPC streams (one process, asynchronous callbacks, so thousands of streams
// need no thread each). It checks every stream: token indices contiguous from 0, no
// duplicates, a terminal event for every request; and reports what users saw.
#include <grpcpp/create_channel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "router/core/random.h"
#include "router/proto/auth.h"
#include "tidelane/v1/chat.grpc.pb.h"

using namespace tidelane;
using Clock = std::chrono::steady_clock;

namespace {

struct Totals {
  std::atomic<std::uint64_t> requests{0}, accepted_within_1s{0}, completed{0}, degraded{0},
      rejected{0}, failed{0}, lost{0}, duplicate_tokens{0}, gaps{0}, redirects{0}, tokens{0};
  std::mutex mu;
  std::vector<double> ttft_ms, accept_ms;
  std::atomic<std::uint32_t> conversations_left{0};
  std::condition_variable all_done;
  std::mutex done_mu;
};

struct Options {
  std::string token;
  std::uint32_t turns = 2;
  std::uint32_t max_tokens = 32;
  std::uint32_t prompt_words = 40;
};

class Conversation;

// One request's stream.
class Turn final : public grpc::ClientReadReactor<v1::ChatEvent> {
 public:
  Turn(Conversation& conversation, v1::ChatService::Stub& stub, const v1::ChatRequest& request,
       const std::string& token);
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  Conversation& conversation_;
  grpc::ClientContext context_;
  v1::ChatRequest request_;
  v1::ChatEvent event_;
  Clock::time_point started_ = Clock::now();
  bool answered_ = false;  // heard Accepted or a token
  bool terminal_ = false;
  bool degraded_ = false;
  bool rejected_ = false;
  std::uint32_t next_index_ = 0;
  std::string text_;
};

class Conversation {
 public:
  Conversation(std::uint32_t user, v1::ChatService::Stub& stub, const Options& o, Totals& totals)
      : user_(user), stub_(stub), o_(o), totals_(totals) {}

  void StartTurn() {
    v1::ChatRequest r;
    r.set_request_id("surge-u" + std::to_string(user_) + "-t" + std::to_string(turn_));
    r.set_conversation_id("surge-u" + std::to_string(user_));
    r.set_user("user-" + std::to_string(user_));
    history_.push_back({"user", Question()});
    for (const auto& [role, text] : history_) {
      auto* m = r.add_messages();
      m->set_role(role);
      m->set_content(text);
    }
    r.mutable_sampling()->set_max_tokens(o_.max_tokens);
    totals_.requests++;
    new Turn(*this, stub_, r, o_.token);  // deletes itself when done
  }

  // A turn ended; `answer` is what came back (empty if it failed).
  void TurnDone(bool ok, const std::string& answer) {
    if (ok && ++turn_ < o_.turns) {
      history_.push_back({"assistant", answer});
      StartTurn();
      return;
    }
    if (--totals_.conversations_left == 0) {
      std::lock_guard lock(totals_.done_mu);
      totals_.all_done.notify_all();
    }
  }
  Totals& totals() { return totals_; }

 private:
  std::string Question() const {
    std::string q =
        "User " + std::to_string(user_) + " asks question " + std::to_string(turn_) + ":";
    for (std::uint32_t i = 0; i < o_.prompt_words; ++i)
      q += " word" + std::to_string((user_ * 7 + i) % 97);
    return q;
  }

  std::uint32_t user_;
  v1::ChatService::Stub& stub_;
  const Options& o_;
  Totals& totals_;
  std::uint32_t turn_ = 0;
  std::vector<std::pair<std::string, std::string>> history_;
};

Turn::Turn(Conversation& conversation, v1::ChatService::Stub& stub, const v1::ChatRequest& request,
           const std::string& token)
    : conversation_(conversation), request_(request) {
  auth::AttachBearer(context_, token);
  stub.async()->Chat(&context_, &request_, this);
  StartRead(&event_);
  StartCall();
}

void Turn::OnReadDone(bool ok) {
  if (!ok) return;
  Totals& t = conversation_.totals();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  if (!answered_ && (event_.has_accepted() || event_.has_token())) {
    answered_ = true;
    if (ms <= 1000) t.accepted_within_1s++;
    std::lock_guard lock(t.mu);
    t.accept_ms.push_back(ms);
  }
  if (event_.has_token()) {
    const auto index = event_.token().index();
    if (index < next_index_) {
      t.duplicate_tokens++;
    } else {
      if (index > next_index_) t.gaps++;
      if (next_index_ == 0) {
        std::lock_guard lock(t.mu);
        t.ttft_ms.push_back(ms);
      }
      next_index_ = index + 1;
      text_ += event_.token().text();
      t.tokens++;
    }
  }
  if (event_.has_redirected()) t.redirects++;
  if (event_.has_degraded()) degraded_ = true;
  if (event_.has_done()) terminal_ = true;
  if (event_.has_error()) {
    terminal_ = true;
    rejected_ = event_.error().code() == v1::ERROR_CODE_OVERLOADED;
    if (!rejected_) t.failed++;
  }
  StartRead(&event_);
}

void Turn::OnDone(const grpc::Status& status) {
  Totals& t = conversation_.totals();
  const bool completed = status.ok() && terminal_ && !rejected_ && next_index_ > 0;
  if (completed) t.completed++;
  if (degraded_) t.degraded++;
  if (rejected_) t.rejected++;
  if (!terminal_) t.lost++;  // the stream ended without Done or Error: a lost request
  Conversation& c = conversation_;
  const std::string answer = text_;
  delete this;
  c.TurnDone(completed, answer);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p / 100.0 * (v.size() - 1))];
}

double PeakRssMb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

}  // namespace

namespace {

int Run(int argc, char** argv) {
  CLI::App cli{
      "tidelane-surge: a surge of users, each with a conversation, against a Tidelane router"};
  std::string target, token_file, json_out;
  std::uint32_t users = 1000;
  double ramp = 10;
  int router_pid = 0;
  double timeout_s = 600;
  Options o;
  cli.add_option("--target", target, "grpc://HOST:PORT of the router")->required();
  cli.add_option("--auth-token-file", token_file, "The router's bearer token (mode 0600)")
      ->required();
  cli.add_option("--users", users, "Users in the surge")->capture_default_str();
  cli.add_option("--ramp-seconds", ramp, "Users arrive uniformly within this many seconds")
      ->capture_default_str();
  cli.add_option("--turns", o.turns, "Turns per conversation (each waits for the previous answer)")
      ->capture_default_str();
  cli.add_option("--max-tokens", o.max_tokens, "max_tokens of each request")->capture_default_str();
  cli.add_option("--prompt-words", o.prompt_words, "Words in each question")->capture_default_str();
  cli.add_option("--router-pid", router_pid,
                 "Report this process's peak RSS (VmHWM) as the router's");
  cli.add_option("--timeout", timeout_s, "Give up waiting after this many seconds")
      ->capture_default_str();
  cli.add_option("--json", json_out, "Write the report here (default: stdout)");
  CLI11_PARSE(cli, argc, argv);

  if (target.rfind("grpc://", 0) != 0) {
    std::cerr << "tidelane-surge: only grpc:// targets are supported (the HTTP API can be driven "
                 "with any\n"
                 "OpenAI client); got "
              << target << "\n";
    return 2;
  }
  try {
    o.token = auth::ReadTokenFile(token_file);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-surge: " << e.what() << "\n";
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  // Several channels, so streams spread over connections as they would from many clients.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::ChatService::Stub>> stubs;
  for (int i = 0; i < 8; ++i) {
    args.SetInt("tidelane.channel", i);  // distinct args: distinct subchannels
    channels.push_back(
        grpc::CreateCustomChannel(target.substr(7), grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::ChatService::NewStub(channels.back()));
  }

  Totals totals;
  totals.conversations_left = users;
  std::vector<std::unique_ptr<Conversation>> conversations;
  for (std::uint32_t u = 0; u < users; ++u) {
    conversations.push_back(std::make_unique<Conversation>(u, *stubs[u % stubs.size()], o, totals));
  }
  const auto start = Clock::now();
  for (std::uint32_t u = 0; u < users; ++u) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(ramp * u / std::max(1u, users))));
    conversations[u]->StartTurn();
  }
  {
    std::unique_lock lock(totals.done_mu);
    totals.all_done.wait_for(lock, std::chrono::duration<double>(timeout_s),
                             [&] { return totals.conversations_left.load() == 0; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const bool timed_out = totals.conversations_left.load() != 0;

  nlohmann::json report;
  {
    std::lock_guard lock(totals.mu);
    report = {{"target", target},
              {"users", users},
              {"ramp_seconds", ramp},
              {"turns", o.turns},
              {"max_tokens", o.max_tokens},
              {"requests", totals.requests.load()},
              {"accepted_within_1s",
               totals.requests ? double(totals.accepted_within_1s) / totals.requests : 0.0},
              {"completed", totals.completed.load()},
              {"degraded", totals.degraded.load()},
              {"rejected", totals.rejected.load()},
              {"failed", totals.failed.load()},
              {"lost", totals.lost.load()},
              {"duplicate_tokens", totals.duplicate_tokens.load()},
              {"token_gaps", totals.gaps.load()},
              {"redirects", totals.redirects.load()},
              {"tokens", totals.tokens.load()},
              {"accept_p50_ms", Percentile(totals.accept_ms, 50)},
              {"accept_p99_ms", Percentile(totals.accept_ms, 99)},
              {"ttft_p50_ms", Percentile(totals.ttft_ms, 50)},
              {"ttft_p99_ms", Percentile(totals.ttft_ms, 99)},
              {"seconds", seconds},
              {"timed_out", timed_out},
              {"router_rss_mb_peak", router_pid > 0 ? PeakRssMb(router_pid) : 0.0}};
  }
  if (json_out.empty()) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::ofstream(json_out) << report.dump(2) << "\n";
  }
  if (timed_out) {
    std::cerr << "tidelane-surge: " << totals.conversations_left.load()
              << " conversations unfinished after " << timeout_s << " s\n";
    // Streams still open are abandoned here; the process exit closes them.
    std::_Exit(3);
  }
  return 0;
}

}  // namespace

// Errors are reported where they happen; anything escaping is a bug, said plainly.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "fatal: " << e.what() << "\n";
    return 1;
  }
}
