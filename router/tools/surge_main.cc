// tidelane-surge: N users, each holding a multi-turn conversation, arrive at a router within a
// ramp, over real gRPC streams or real HTTP/SSE connections to the OpenAI-compatible API (one
// process, asynchronous I/O, so thousands of streams need no thread each). It checks every
// stream: token indices contiguous from 0, no duplicates, a terminal event for every request;
// and reports what users saw.
#include <grpcpp/create_channel.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "router/core/random.h"
#include "router/proto/auth.h"
#include "router/sim/workload.h"
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
  bool http = false;
  std::string model = "tidelane-synthetic";
  std::string host, port;  // for HTTP
  boost::asio::io_context* io = nullptr;
  std::uint32_t turns = 2;
  std::uint32_t max_tokens = 32;
  std::uint32_t prompt_words = 40;
};

class Conversation;

// What one request's stream showed, whatever carried it: the checks and the tallies.
class TurnRecord {
 public:
  explicit TurnRecord(Conversation& c) : conversation_(c) {}
  void Heard();  // any event: the first one answers the user
  void Token(std::uint32_t index, const std::string& text);
  void Redirected();
  void Degraded() { degraded_ = true; }
  void Done() { terminal_ = true; }
  void Error(bool overloaded);
  // The stream ended (cleanly or not); tallies the request and starts the next turn.
  void End(bool ok);

 private:
  Conversation& conversation_;
  Clock::time_point started_ = Clock::now();
  bool answered_ = false;  // heard Accepted or a token
  bool terminal_ = false;
  bool degraded_ = false;
  bool rejected_ = false;
  std::uint32_t next_index_ = 0;
  std::string text_;
};

// One request over gRPC.
class Turn final : public grpc::ClientReadReactor<v1::ChatEvent> {
 public:
  Turn(Conversation& conversation, v1::ChatService::Stub& stub, const v1::ChatRequest& request,
       const std::string& token);
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  TurnRecord record_;
  grpc::ClientContext context_;
  v1::ChatRequest request_;
  v1::ChatEvent event_;
};

// One request over HTTP: POST /v1/chat/completions with stream=true, read as SSE.
class HttpTurn final : public std::enable_shared_from_this<HttpTurn> {
 public:
  HttpTurn(Conversation& conversation, const Options& o, const v1::ChatRequest& request);
  void Start();

 private:
  void Fail() { End(false); }
  void End(bool ok);
  void Parse(std::string_view chunk);
  void Line(std::string_view line);

  TurnRecord record_;
  const Options& o_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request<boost::beast::http::string_body> req_;
  boost::beast::http::response_parser<boost::beast::http::string_body> parser_;
  // Chunks of the SSE body are parsed as they come instead of being kept.
  std::function<std::size_t(std::uint64_t, boost::beast::string_view, boost::beast::error_code&)>
      on_chunk_;
  std::string pending_;  // SSE bytes not yet ending in a newline
  std::uint32_t next_token_index_ = 0;
  bool has_index_ = false;  // an index comment precedes the next data line
  bool ended_ = false;
};

class Conversation {
 public:
  Conversation(std::uint32_t user, v1::ChatService::Stub& stub, const Options& o, Totals& totals)
      : user_(user),
        stub_(stub),
        o_(o),
        totals_(totals),
        prompt_words_(o.prompt_words),
        max_tokens_(o.max_tokens) {}
  // A replayed trace gives each user its own prompt and answer lengths.
  void SetSizes(std::uint32_t prompt_words, std::uint32_t max_tokens) {
    prompt_words_ = prompt_words;
    max_tokens_ = max_tokens;
  }

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
    r.mutable_sampling()->set_max_tokens(max_tokens_);
    r.set_model(o_.model);
    totals_.requests++;
    if (o_.http) {
      std::make_shared<HttpTurn>(*this, o_, r)->Start();  // kept alive by its I/O
    } else {
      new Turn(*this, stub_, r, o_.token);  // deletes itself when done
    }
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
    for (std::uint32_t i = 0; i < prompt_words_; ++i)
      q += " word" + std::to_string((user_ * 7 + i) % 97);
    return q;
  }

  std::uint32_t user_;
  v1::ChatService::Stub& stub_;
  const Options& o_;
  Totals& totals_;
  std::uint32_t prompt_words_;
  std::uint32_t max_tokens_;
  std::uint32_t turn_ = 0;
  std::vector<std::pair<std::string, std::string>> history_;
};

void TurnRecord::Heard() {
  if (answered_) return;
  answered_ = true;
  Totals& t = conversation_.totals();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  if (ms <= 1000) t.accepted_within_1s++;
  std::lock_guard lock(t.mu);
  t.accept_ms.push_back(ms);
}

void TurnRecord::Token(std::uint32_t index, const std::string& text) {
  Totals& t = conversation_.totals();
  Heard();
  if (index < next_index_) {
    t.duplicate_tokens++;
    return;
  }
  if (index > next_index_) t.gaps++;
  if (next_index_ == 0) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    std::lock_guard lock(t.mu);
    t.ttft_ms.push_back(ms);
  }
  next_index_ = index + 1;
  text_ += text;
  t.tokens++;
}

void TurnRecord::Redirected() {
  conversation_.totals().redirects++;
}

void TurnRecord::Error(bool overloaded) {
  terminal_ = true;
  rejected_ = overloaded;
  if (!rejected_) conversation_.totals().failed++;
}

void TurnRecord::End(bool ok) {
  Totals& t = conversation_.totals();
  const bool completed = ok && terminal_ && !rejected_ && next_index_ > 0;
  if (completed) t.completed++;
  if (degraded_) t.degraded++;
  if (rejected_) t.rejected++;
  if (!terminal_) t.lost++;  // the stream ended without Done or Error: a lost request
  conversation_.TurnDone(completed, text_);
}

Turn::Turn(Conversation& conversation, v1::ChatService::Stub& stub, const v1::ChatRequest& request,
           const std::string& token)
    : record_(conversation), request_(request) {
  auth::AttachBearer(context_, token);
  stub.async()->Chat(&context_, &request_, this);
  StartRead(&event_);
  StartCall();
}

void Turn::OnReadDone(bool ok) {
  if (!ok) return;
  if (event_.has_accepted()) record_.Heard();
  if (event_.has_token()) record_.Token(event_.token().index(), event_.token().text());
  if (event_.has_redirected()) record_.Redirected();
  if (event_.has_degraded()) record_.Degraded();
  if (event_.has_done()) record_.Done();
  if (event_.has_error()) record_.Error(event_.error().code() == v1::ERROR_CODE_OVERLOADED);
  StartRead(&event_);
}

void Turn::OnDone(const grpc::Status& status) {
  TurnRecord record = record_;
  delete this;
  record.End(status.ok());
}

namespace http = boost::beast::http;

HttpTurn::HttpTurn(Conversation& conversation, const Options& o, const v1::ChatRequest& request)
    : record_(conversation), o_(o), resolver_(*o.io), stream_(*o.io) {
  nlohmann::json body = {{"model", request.model()},
                         {"stream", true},
                         {"max_tokens", request.sampling().max_tokens()},
                         {"user", request.user()},
                         {"messages", nlohmann::json::array()}};
  for (const auto& m : request.messages()) {
    body["messages"].push_back({{"role", m.role()}, {"content", m.content()}});
  }
  req_ = {http::verb::post, "/v1/chat/completions", 11};
  req_.set(http::field::host, o.host);
  req_.set(http::field::authorization, "Bearer " + o.token);
  req_.set(http::field::content_type, "application/json");
  req_.body() = body.dump();
  req_.prepare_payload();
  parser_.body_limit(1 << 20);
  on_chunk_ = [this](std::uint64_t, boost::beast::string_view data, boost::beast::error_code&) {
    Parse(std::string_view(data.data(), data.size()));
    return data.size();
  };
  parser_.on_chunk_body(on_chunk_);
}

void HttpTurn::Start() {
  auto self = shared_from_this();
  resolver_.async_resolve(o_.host, o_.port, [self](auto ec, auto results) {
    if (ec) return self->Fail();
    self->stream_.async_connect(results, [self](auto ec, auto) {
      if (ec) return self->Fail();
      http::async_write(self->stream_, self->req_, [self](auto ec, auto) {
        if (ec) return self->Fail();
        http::async_read_header(self->stream_, self->buffer_, self->parser_, [self](auto ec, auto) {
          if (ec) return self->Fail();
          const auto status = self->parser_.get().result_int();
          if (status != 200) {
            // An error object, not a stream: 429 is the router saying "at capacity".
            http::async_read(self->stream_, self->buffer_, self->parser_,
                             [self, status](auto, auto) {
                               self->record_.Heard();
                               self->record_.Error(status == 429 || status == 503);
                               self->End(true);
                             });
            return;
          }
          struct Reader {
            std::shared_ptr<HttpTurn> t;
            void operator()(boost::beast::error_code ec, std::size_t) const {
              if (ec) return t->End(false);
              if (t->parser_.is_done()) return t->End(true);
              http::async_read_some(t->stream_, t->buffer_, t->parser_, *this);
            }
          };
          Reader{self}({}, 0);
        });
      });
    });
  });
}

void HttpTurn::Parse(std::string_view chunk) {
  pending_.append(chunk);
  std::size_t start = 0;
  for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    Line(std::string_view(pending_).substr(start, nl - start));
  }
  pending_.erase(0, start);
}

// One SSE line: comments carry the router's events, data lines the OpenAI chunks.
void HttpTurn::Line(std::string_view line) {
  if (line.starts_with(": accepted")) record_.Heard();
  if (line.starts_with(": redirected")) record_.Redirected();
  if (line.starts_with(": degraded")) record_.Degraded();
  if (line.starts_with(": index=")) {
    next_token_index_ = static_cast<std::uint32_t>(std::stoul(std::string(line.substr(8))));
    has_index_ = true;
  }
  if (!line.starts_with("data: ")) return;
  const std::string_view payload = line.substr(6);
  if (payload == "[DONE]") return;
  const auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded()) return;
  if (j.contains("error")) {
    const auto& error = j["error"];
    record_.Error(error.is_object() &&
                  ((error.contains("code") && error["code"] == "overloaded") ||
                   (error.contains("type") && error["type"] == "rate_limit_exceeded")));
    return;
  }
  // The router is ours, but this tool checks it: a malformed chunk is skipped, never trusted.
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return;
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return;
  if (has_index_) {
    const auto delta = choice.find("delta");
    const bool has_text = delta != choice.end() && delta->is_object() &&
                          delta->contains("content") && (*delta)["content"].is_string();
    record_.Token(next_token_index_, has_text ? (*delta)["content"].get<std::string>() : "");
    has_index_ = false;
  }
  const auto finish = choice.find("finish_reason");
  if (finish != choice.end() && !finish->is_null()) record_.Done();
}

void HttpTurn::End(bool ok) {
  if (ended_) return;
  ended_ = true;
  boost::beast::error_code ignored;
  stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  record_.End(ok);
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
  cli.add_option(
         "--target", target,
         "grpc://HOST:PORT or grpc://unix:PATH (ChatService) or http://HOST:PORT (OpenAI API) "
         "of the router")
      ->required();
  cli.add_option("--auth-token-file", token_file, "The router's bearer token (mode 0600)")
      ->required();
  std::string arrival = "uniform";
  std::string trace_path;
  cli.add_option("--users", users, "Users in the surge")->capture_default_str();
  cli.add_option("--ramp-seconds", ramp, "Users arrive within this many seconds")
      ->capture_default_str();
  cli.add_option("--arrival", arrival,
                 "How arrivals spread over the ramp: uniform (a flash crowd when the ramp is "
                 "short), ramp (the arrival rate grows linearly from zero), or trace (the first "
                 "--users requests of --trace, their gaps scaled to fit the ramp, each with the "
                 "trace's prompt length and answer length capped by --max-tokens)")
      ->check(CLI::IsMember({"uniform", "ramp", "trace"}))
      ->capture_default_str();
  cli.add_option(
         "--trace", trace_path,
         "Azure LLM trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens) for --arrival trace")
      ->check(CLI::ExistingFile);
  cli.add_option("--turns", o.turns, "Turns per conversation (each waits for the previous answer)")
      ->capture_default_str();
  cli.add_option("--model", o.model, "Model the users ask for")->capture_default_str();
  cli.add_option("--max-tokens", o.max_tokens, "max_tokens of each request")->capture_default_str();
  cli.add_option("--prompt-words", o.prompt_words, "Words in each question")->capture_default_str();
  cli.add_option("--router-pid", router_pid,
                 "Report this process's peak RSS (VmHWM) as the router's");
  cli.add_option("--timeout", timeout_s, "Give up waiting after this many seconds")
      ->capture_default_str();
  cli.add_option("--json", json_out, "Write the report here (default: stdout)");
  CLI11_PARSE(cli, argc, argv);

  const bool grpc_target = target.rfind("grpc://", 0) == 0;
  o.http = target.rfind("http://", 0) == 0;
  if (!grpc_target && !o.http) {
    std::cerr << "tidelane-surge: --target must be grpc://HOST:PORT or http://HOST:PORT; got "
              << target << "\n";
    return 2;
  }
  const std::string address = target.substr(target.find("://") + 3);
  if (o.http) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) {
      std::cerr << "tidelane-surge: " << target << " has no port\n";
      return 2;
    }
    o.host = address.substr(0, colon);
    o.port = address.substr(colon + 1);
    // One socket per user: ten thousand users need more descriptors than the default.
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      setrlimit(RLIMIT_NOFILE, &files);
    }
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
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::ChatService::NewStub(channels.back()));
  }

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  if (o.http) {
    o.io = &io;
    for (int i = 0; i < 2; ++i) io_threads.emplace_back([&io] { io.run(); });
  }

  Totals totals;
  totals.conversations_left = users;
  std::vector<std::unique_ptr<Conversation>> conversations;
  for (std::uint32_t u = 0; u < users; ++u) {
    conversations.push_back(std::make_unique<Conversation>(u, *stubs[u % stubs.size()], o, totals));
  }
  // Seconds after the start at which each user arrives.
  std::vector<double> arrivals(users);
  const double n = std::max(1u, users);
  for (std::uint32_t u = 0; u < users; ++u) {
    // "ramp": the u-th of n arrives at ramp * sqrt(u / n), so the rate grows linearly.
    arrivals[u] = arrival == "ramp" ? ramp * std::sqrt(u / n) : ramp * u / n;
  }
  if (arrival == "trace") {
    if (trace_path.empty()) {
      std::cerr << "tidelane-surge: --arrival trace needs --trace PATH\n";
      return 2;
    }
    sim::Workload trace;
    try {
      trace = sim::LoadAzureTrace(trace_path, 0, 1);
    } catch (const std::exception& e) {
      std::cerr << "tidelane-surge: " << e.what() << "\n";
      return 2;
    }
    if (trace.requests.size() < users) {
      std::cerr << "tidelane-surge: " << trace_path << " has " << trace.requests.size()
                << " requests, fewer than --users " << users << "\n";
      return 2;
    }
    const double span = users > 1 ? trace.requests[users - 1].request.arrival_s -
                                        trace.requests[0].request.arrival_s
                                  : 0;
    for (std::uint32_t u = 0; u < users; ++u) {
      const auto& r = trace.requests[u];
      arrivals[u] =
          span > 0 ? (r.request.arrival_s - trace.requests[0].request.arrival_s) * ramp / span : 0;
      conversations[u]->SetSizes(std::clamp<std::uint32_t>(r.request.prompt_tokens, 1, 8192),
                                 std::clamp<std::uint32_t>(r.output_tokens, 1, o.max_tokens));
    }
  }
  const auto start = Clock::now();
  for (std::uint32_t u = 0; u < users; ++u) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(arrivals[u])));
    if (o.http) {
      boost::asio::post(io, [c = conversations[u].get()] { c->StartTurn(); });
    } else {
      conversations[u]->StartTurn();
    }
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
              {"arrival", arrival},
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
  if (!timed_out && o.http) {
    work.reset();
    io.stop();
    for (auto& t : io_threads) t.join();
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
