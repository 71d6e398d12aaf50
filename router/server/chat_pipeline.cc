#include "router/server/chat_pipeline.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string_view>
#include <utility>

#include "router/proto/auth.h"
#include "router/server/thread_name.h"

namespace tidelane::server {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The request as the client sent it, hashed as a worker without a tokenizer hashes it.
std::string MessagesSha256(const v1::ChatRequest& request) {
  std::vector<std::string_view> parts;
  parts.reserve(2 * static_cast<std::size_t>(request.messages_size()));
  for (const auto& m : request.messages()) {
    parts.push_back(m.role());
    parts.push_back(m.content());
  }
  return receipt::Sha256StringViews(parts);
}

// Ends a live record that a start or a Resume registered, when it returns (or throws) before
// a flight has taken the record on; a flight ends its record itself (CloseRecorded, Refused).
struct EndRecordUnlessTaken {
  LiveRequests& registry;
  const std::string& id;
  std::shared_ptr<LiveRequests::Live> record;
  bool taken = false;
  ~EndRecordUnlessTaken() {
    if (!taken) registry.End(id, record);
  }
};

std::string NewRequestId() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> d;
  char buf[40];
  std::snprintf(buf, sizeof buf, "req-%016llx", static_cast<unsigned long long>(d(rd)));
  return buf;
}

}  // namespace

std::string ValidateChatRequest(const v1::ChatRequest& r, const RouterConfig& config) {
  if (r.messages().empty()) return "messages must not be empty";
  std::size_t bytes = 0;
  bool has_user = false;
  for (const auto& m : r.messages()) {
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      return "message role must be system, user or assistant, not '" + m.role().substr(0, 32) + "'";
    }
    has_user = has_user || m.role() == "user";
    bytes += m.content().size();
  }
  if (!has_user) return "the conversation has no user message";
  if (bytes > config.max_prompt_bytes) {
    return "prompt is " + std::to_string(bytes) + " bytes; the limit is " +
           std::to_string(config.max_prompt_bytes);
  }
  if (r.sampling().max_tokens() > config.max_tokens_limit) {
    return "max_tokens may be at most " + std::to_string(config.max_tokens_limit);
  }
  return {};
}

RouterConfig::~RouterConfig() {
  const auto wipe = [](std::string& s) {
    if (!s.empty()) sodium_memzero(s.data(), s.size());
  };
  wipe(token);
  for (auto& t : client_tokens) wipe(t);
}

Caller Caller::ForClient(const RouterConfig& config, std::size_t index) {
  // client_tokens[0] is the router's own token (see RouterConfig): the operator.
  return {auth::CredentialDigest(config.client_tokens.at(index)), index == 0};
}

Caller Caller::Router(const RouterConfig& config) {
  return {auth::CredentialDigest(config.token), true};
}

bool Caller::MayRead(const std::optional<std::string>& request_owner) const {
  if (admin) return true;
  // Owners are digests, not secrets; a constant-time comparison costs nothing all the same.
  return request_owner && auth::ConstantTimeEquals(*request_owner, owner);
}

LiveRequests::Start LiveRequests::StartNew(const std::string& id, std::optional<std::string> owner,
                                           bool recorded) {
  const auto refusal = [&](const Live& other) {
    return other.owner == owner ? Refusal::kOwn : Refusal::kInUse;
  };
  std::lock_guard lock(mu_);
  if (const auto it = live_.find(id); it != live_.end()) {
    std::lock_guard running(it->second->mu);
    if (!it->second->terminal) return {nullptr, refusal(*it->second)};
  }
  const auto pending = recording_.find(id);
  if (pending != recording_.end() && pending->second->owner == owner) {
    return {nullptr, Refusal::kOwn};
  }
  auto live = std::make_shared<Live>();
  live->owner = std::move(owner);
  if (recorded) {
    live_[id] = live;
  } else if (pending == recording_.end()) {
    // Only the first start is noted: a second owner's start while it is being recorded goes
    // on to the ledger, which refuses whichever is not the id's owner.
    recording_.emplace(id, live);
  }
  return {live, Refusal::kNone};
}

void LiveRequests::Recorded(const std::string& id, const std::shared_ptr<Live>& live) {
  std::lock_guard lock(mu_);
  if (const auto it = recording_.find(id); it != recording_.end() && it->second == live) {
    recording_.erase(it);
  }
  live_[id] = live;
}

std::pair<std::shared_ptr<LiveRequests::Live>, bool> LiveRequests::Claim(
    const std::string& id, std::optional<std::string> owner) {
  std::lock_guard lock(mu_);
  if (const auto it = live_.find(id); it != live_.end()) return {it->second, false};
  auto live = std::make_shared<Live>();
  live->owner = std::move(owner);
  live_[id] = live;
  return {live, true};
}

void LiveRequests::End(const std::string& id, const std::shared_ptr<Live>& live) {
  {
    std::lock_guard lock(mu_);
    if (const auto it = live_.find(id); it != live_.end() && it->second == live) live_.erase(it);
    if (const auto it = recording_.find(id); it != recording_.end() && it->second == live) {
      recording_.erase(it);
    }
  }
  std::lock_guard lock(live->mu);
  if (!live->terminal) {
    v1::ChatEvent e;
    e.set_request_id(id);
    e.mutable_error()->set_code(v1::ERROR_CODE_UNSPECIFIED);
    e.mutable_error()->set_message("the request was interrupted; Resume it to continue");
    live->terminal = e;
  }
  live->cv.notify_all();
}

bool PublishingSink::Send(const v1::ChatEvent& e) {
  if (ledger_) {
    bool ok = true;
    if (e.has_routed()) ok = ledger_->Route(id_, e.routed().node());
    if (e.has_redirected()) ok = ledger_->Route(id_, e.redirected().to_node());
    if (e.has_token()) ok = ledger_->AppendToken(id_, e.token().index(), e.token().text());
    if (e.has_done() && e.done().has_receipt()) ok = ledger_->StoreReceipt(id_, e.done().receipt());
    if (e.has_done()) {
      ok = ledger_->Finish(id_, Ledger::State::kDone, e.done().finish_reason(), "") && ok;
    }
    if (e.has_error()) ok = ledger_->Finish(id_, Ledger::State::kFailed, "", e.error().message());
    if (!ok && !warned_) {
      warned_ = true;
      spdlog::error("ledger write failed for request {}: {}", id_, ledger_->LastError());
    }
  }
  {
    std::lock_guard lock(live_.mu);
    if (e.has_token() && e.token().index() == live_.tokens.size())
      live_.tokens.push_back(e.token().text());
    if (e.has_done() || e.has_error()) live_.terminal = e;
  }
  live_.cv.notify_all();
  return client_.Send(e);
}

grpc::Status PublishingSink::Cancel() {
  if (ledger_) ledger_->Finish(id_, Ledger::State::kCancelled, "cancelled", "");
  return {grpc::StatusCode::CANCELLED, "client went away"};
}

// One request between its start and its end: what it asked, what it has said so far, and
// where its events go. Shared by the admission callbacks and the thread that serves it.
struct ChatPipeline::Flight {
  std::string id;
  std::optional<std::string> owner;  // Caller::owner of the credential it belongs to
  v1::ChatRequest request;
  std::vector<std::string> generated;
  std::shared_ptr<StreamSink> client;
  std::unique_ptr<ReplaySink> replay;  // resumed: drops tokens the client already has
  std::shared_ptr<LiveRequests::Live> live;
  std::unique_ptr<PublishingSink> sink;
  core::Request view;
  Clock::time_point accepted_at = Clock::now();
  std::int64_t accepted_unix_ms = UnixMs();
  // Every node that produced tokens, with its index range: what the receipt's route states.
  std::vector<receipt::RouteHop> route;
  // What the receipt states the prompt was. A long chat's history takes a while to hash
  // (~50 us at 40 turns), so the request's first thread does it while the worker answers,
  // not the thread that ends the answer; whichever comes first hashes, the other waits.
  const std::string& PromptSha256() {
    std::call_once(prompt_hashed, [this] { prompt_sha256 = MessagesSha256(request); });
    return prompt_sha256;
  }
  std::once_flag prompt_hashed;
  std::string prompt_sha256;
  // Events of one request are sent one at a time, and a place-in-line message that lost a
  // race with the release is dropped rather than sent after Routed.
  std::mutex send_mu;
  bool admitted = false;
  // Finish ran (an answer is ended as soon as its Done is read, before the worker call ends).
  bool closed = false;

  // The ledger's answer to a new request's accept (ChatPipeline::Recorded, Refused). Until it
  // comes, events wait in `held`, the stream's end in `held_close`, and a cancel in
  // `cancel_held`; `sink` exists once recorded. All under send_mu (`record` is also read
  // without it, by Cancelled).
  enum class Record { kAwaited, kRecorded, kRefused };
  std::atomic<Record> record{Record::kRecorded};
  std::vector<v1::ChatEvent> held;
  std::optional<grpc::Status> held_close;
  bool cancel_held = false;
  grpc::Status refusal;  // how the client's stream ends once refused
  // How it ended (served, failed) and, when served, its TTFT and TPOT in seconds: counted
  // when the client's stream closes on a recorded request (CloseRecorded), so a refused one counts
  // as failed once, whatever its worker had answered, and adds nothing to the latencies.
  std::optional<NodeTable::Outcome> outcome;
  std::optional<std::pair<double, double>> latency;

  bool Send(v1::ChatEvent& e) {
    e.set_request_id(id);
    std::lock_guard lock(send_mu);
    return SendLocked(e);
  }
  bool SendLocked(const v1::ChatEvent& e) {
    switch (record.load()) {
      case Record::kAwaited:
        held.push_back(e);
        return !client->Cancelled();
      case Record::kRefused:
        return false;
      case Record::kRecorded:
        break;
    }
    return sink->Send(e);
  }
  // The client left, or the ledger refused the request.
  bool Cancelled() const { return record.load() == Record::kRefused || client->Cancelled(); }
  // The request stops because its client left (or it was refused): the ledger records it
  // cancelled once it has recorded it; the status that ends the client's stream.
  grpc::Status Cancel() {
    std::lock_guard lock(send_mu);
    switch (record.load()) {
      case Record::kAwaited:
        cancel_held = true;
        return {grpc::StatusCode::CANCELLED, "client went away"};
      case Record::kRefused:
        return refusal;
      case Record::kRecorded:
        break;
    }
    return sink->Cancel();
  }

  // Serving: what one attempt leaves for the next, whichever thread runs it. An attempt's
  // callbacks run one at a time, and a hand-over to a pool thread orders them (Spawn's lock).
  v1::SamplingParams sampling;
  std::set<std::uint64_t> failed_connections;  // nodes this request failed on
  std::optional<Lease> previous;               // the node the last attempt failed on
  std::string last_failure;
  int attempts = 0;  // placements made
  double queue_ms = -1;
  double ttft_ms = -1;
  Clock::time_point serving_since;
};

// A running worker call, registered so Shutdown can cut it short and Housekeeping can cancel
// it when its worker falls silent.
struct ChatPipeline::Upstream {
  Upstream(grpc::ClientContext* c, std::uint64_t conn, const Flight* f)
      : context(c), connection(conn), flight(f) {}
  grpc::ClientContext* context;
  std::uint64_t connection;  // the worker's registration (NodeTable)
  // The request the call serves (it outlives the call): a call whose client left, or whose
  // record the ledger refused, is cancelled without waiting for its next event.
  const Flight* flight;
  std::atomic<Clock::rep> last_heard{Clock::now().time_since_epoch().count()};
  std::atomic<bool> streaming{false};  // the worker has said something on this call
  std::atomic<Stall> stalled{Stall::kNone};
  // The worker said something (a token, a KV chunk, Done, or took a write).
  void Heard() {
    last_heard = Clock::now().time_since_epoch().count();
    streaming = true;
  }
};

// Registers a blocking call's Upstream for the scope (the split path).
struct ChatPipeline::Track {
  ChatPipeline& p;
  Upstream up;
  bool registered = true;
  Track(ChatPipeline& pipeline, grpc::ClientContext* context, std::uint64_t connection,
        const Flight& flight)
      : p(pipeline), up(context, connection, &flight) {
    std::lock_guard lock(p.mu_);
    p.upstreams_.insert(&up);
    if (p.stopping_) context->TryCancel();
  }
  // The call is over: no longer watched for silence.
  void End() {
    if (!std::exchange(registered, false)) return;
    std::lock_guard lock(p.mu_);
    p.upstreams_.erase(&up);
  }
  ~Track() { End(); }
  Track(const Track&) = delete;
  Track& operator=(const Track&) = delete;
};

ChatPipeline::ChatPipeline(const RouterConfig& config, NodeTable& nodes, Ledger* ledger)
    : config_(config), nodes_(nodes), ledger_(ledger), rate_limiter_(config.rate_limit) {
  housekeeping_ = std::thread([this] {
    NameThisThread("tl-housekeeping");
    Housekeeping();
  });
}

ChatPipeline::~ChatPipeline() {
  Shutdown();
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return running_ == 0; });
  lock.unlock();
  housekeeping_.join();
}

void ChatPipeline::Shutdown() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  for (auto* u : upstreams_) u->context->TryCancel();
  changed_.notify_all();
  task_ready_.notify_all();
}

// An elastic pool: a task takes an idle thread when there is one, else a new thread; threads
// idle for a while leave. Admission bounds how many run at once, and reusing threads keeps
// thread creation off each request's path.
void ChatPipeline::Spawn(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  tasks_.push_back(std::move(fn));
  // Enough idle threads for every queued task: wake one. Otherwise start one, so a task never
  // waits behind another request's whole life.
  if (static_cast<std::size_t>(idle_) >= tasks_.size()) {
    task_ready_.notify_one();
    return;
  }
  ++running_;
  std::thread([this] {
    NameThisThread("tl-pipeline");
    PoolThread();
  }).detach();
}

void ChatPipeline::PoolThread() {
  std::unique_lock lock(mu_);
  for (;;) {
    while (!tasks_.empty()) {
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
    if (stopping_) break;
    ++idle_;
    const bool woken = task_ready_.wait_for(lock, std::chrono::seconds(30),
                                            [&] { return !tasks_.empty() || stopping_; });
    --idle_;
    if (!woken) break;  // idle long enough: leave
  }
  if (--running_ == 0) changed_.notify_all();
}

void ChatPipeline::Housekeeping() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    changed_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) break;
    // Queued clients that left are taken out of line (no thread waits on them to notice).
    std::vector<std::uint64_t> gone;
    for (auto it = queued_.begin(); it != queued_.end();) {
      auto flight = it->second.lock();
      if (!flight) {
        it = queued_.erase(it);
        continue;
      }
      if (flight->Cancelled()) gone.push_back(it->first);
      ++it;
    }
    lock.unlock();
    for (auto id : gone) nodes_.Withdraw(id);
    nodes_.TellPositions();
    nodes_.MoveLanes();
    const auto silent_nodes = nodes_.Silent(config_.stall_timeout);
    lock.lock();
    // A worker gone silent (frozen, or cut off without its connections noticing) is cancelled
    // out of its calls, and each request continues elsewhere at its next token. Silent means
    // no telemetry for the stall bound, which a busy worker still sends (a long prefill says
    // nothing on the call itself), or, once a call has streamed, nothing on it for as long.
    const auto now = Clock::now().time_since_epoch().count();
    const auto bound = std::chrono::duration_cast<Clock::duration>(config_.stall_timeout).count();
    for (auto* u : upstreams_) {
      Stall why = Stall::kNone;
      if (std::find(silent_nodes.begin(), silent_nodes.end(), u->connection) !=
          silent_nodes.end()) {
        why = Stall::kNoTelemetry;
      } else if (u->streaming && now - u->last_heard.load() > bound) {
        why = Stall::kCallSilent;
      }
      auto none = Stall::kNone;
      const bool stalled = why != none && u->stalled.compare_exchange_strong(none, why);
      // Or the client left (or the ledger refused the request) while its worker was busy on
      // it, a long prefill say: the worker hears so now rather than at its next token, and
      // the attempt ends as any whose client left (the ledger keeps what was said).
      const bool unwanted = why == Stall::kNone && u->flight->Cancelled();
      if (stalled || unwanted) u->context->TryCancel();
    }
  }
}

RateLimiter::Decision ChatPipeline::ChargeRate(std::string_view credential) {
  if (!rate_limiter_.enabled()) return {};
  return rate_limiter_.Take(RateLimiter::KeyFor(credential), RateLimiter::Clock::now());
}

std::string ChatPipeline::Problem(const v1::ChatRequest& request) const {
  return ValidateChatRequest(request, config_);
}

void ChatPipeline::Start(const v1::ChatRequest& request, std::shared_ptr<StreamSink> sink,
                         const Caller& caller) {
  if (const auto problem = ValidateChatRequest(request, config_); !problem.empty()) {
    sink->Close({grpc::StatusCode::INVALID_ARGUMENT, problem});
    return;
  }
  const std::string id = request.request_id().empty() ? NewRequestId() : request.request_id();
  // An id whose request still runs here is not started again, nor its owner's while it is
  // being recorded. Its owner retrying it would stream a second answer into the first one's
  // record (Resume follows the running one); anyone else finds the id taken, as the ledger
  // would say.
  auto start = live_.StartNew(id, caller.owner, /*recorded=*/ledger_ == nullptr);
  if (start.refusal != LiveRequests::Refusal::kNone) {
    sink->Close({grpc::StatusCode::ALREADY_EXISTS,
                 start.refusal == LiveRequests::Refusal::kOwn
                     ? "request " + id + " is still running; Resume it to follow its answer"
                     : "request id " + id + " is already in use; choose another"});
    return;
  }
  // Until the flight owns the record, an exception here must not leave the id refused.
  EndRecordUnlessTaken guard{live_, id, start.record};
  auto flight = std::make_shared<Flight>();
  flight->id = id;
  flight->owner = caller.owner;
  flight->request = request;
  flight->client = std::move(sink);
  flight->live = start.record;
  if (!ledger_) {
    nodes_.Count(NodeTable::Outcome::kAccepted);
    Begin(flight);
    guard.taken = true;                            // its end Ends the record
    if (config_.identity) flight->PromptSha256();  // while the worker answers
    return;
  }
  // Nothing may reach the client that the ledger cannot keep, but the request need not wait
  // for the commit to be admitted, placed and its worker call started: what it says waits in
  // the flight until the ledger answers (Recorded, Refused). The commit (~40 us on the calling
  // thread at moderate load, longer behind the writer's group commit) then overlaps the worker
  // call instead of delaying it.
  flight->record = Flight::Record::kAwaited;
  Begin(flight);
  ledger_->AcceptAsync(id, request, flight->owner, [this, flight](Ledger::AcceptOutcome outcome) {
    if (outcome == Ledger::AcceptOutcome::kRecorded) return Recorded(flight);
    if (outcome == Ledger::AcceptOutcome::kIdTaken) {
      // Another credential's request has this id: taking it over would hand that client's
      // answer to this one. Saying "in use" tells that the id exists, which cannot be helped
      // when clients choose ids; Resume and receipts never tell it.
      spdlog::warn("request {}: refused, its id belongs to another client", flight->id);
      return Refused(flight,
                     {grpc::StatusCode::ALREADY_EXISTS,
                      "request id " + flight->id + " is already in use; choose another"},
                     std::nullopt);
    }
    v1::ChatEvent e;
    e.set_request_id(flight->id);
    e.mutable_error()->set_code(v1::ERROR_CODE_INTERNAL);
    e.mutable_error()->set_message("the router cannot record requests (" + ledger_->LastError() +
                                   "); is its disk full?");
    e.mutable_error()->set_retry_after_ms(10000);
    spdlog::error("ledger refused request {}: {}", flight->id, ledger_->LastError());
    Refused(flight, grpc::Status::OK, std::move(e));
  });
  guard.taken = true;  // Recorded or Refused takes the record on
  // The receipt's prompt hash, while the worker answers rather than after (PromptSha256).
  if (config_.identity) flight->PromptSha256();
}

void ChatPipeline::Recorded(const std::shared_ptr<Flight>& flight) {
  Flight& f = *flight;
  nodes_.Count(NodeTable::Outcome::kAccepted);
  std::optional<grpc::Status> close;
  {
    std::lock_guard lock(f.send_mu);
    live_.Recorded(f.id, f.live);
    f.sink = std::make_unique<PublishingSink>(*f.client, *f.live, ledger_, f.id);
    f.record = Flight::Record::kRecorded;
    for (const auto& e : f.held) f.sink->Send(e);
    f.held = {};
    if (f.cancel_held) f.sink->Cancel();  // not f.Cancel(): send_mu is held
    close = f.held_close;
  }
  if (close) CloseRecorded(f, *close);  // the request ended before the ledger answered
}

void ChatPipeline::Refused(const std::shared_ptr<Flight>& flight, const grpc::Status& status,
                           std::optional<v1::ChatEvent> error) {
  Flight& f = *flight;
  nodes_.Count(NodeTable::Outcome::kFailed);
  live_.End(f.id, f.live);  // nothing of it was kept: the id is free again
  bool ended;
  {
    std::lock_guard lock(f.send_mu);
    f.record = Flight::Record::kRefused;
    f.refusal = status;
    f.held = {};
    if (error) f.client->Send(*error);
    ended = f.held_close.has_value();
  }
  if (ended) return f.client->Close(status);
  // Still running: out of line if it waits at the front door; a worker call stops at its next
  // event (Send fails), and Finish then closes the stream with the refusal.
  nodes_.Withdraw(f.view.id);
}

// Blocks the caller until the request ends, for callers that own a thread anyway. Events are
// handed over through a queue, so the caller's sink is only ever used on the caller's thread
// and a slow socket never stalls the thread that produced an event.
grpc::Status ChatPipeline::Run(const v1::ChatRequest& request, EventSink& sink,
                               const Caller& caller) {
  struct Handover final : StreamSink {
    bool Send(const v1::ChatEvent& e) override {
      std::lock_guard lock(mu);
      if (gone) return false;
      events.push_back(e);
      cv.notify_all();
      return true;
    }
    bool Cancelled() const override { return gone || cancelled_probe; }
    void Close(const grpc::Status& s) override {
      std::lock_guard lock(mu);
      status = s;
      cv.notify_all();
    }
    std::mutex mu;
    std::condition_variable cv;
    std::deque<v1::ChatEvent> events;
    std::optional<grpc::Status> status;
    std::atomic<bool> gone{false};
    std::atomic<bool> cancelled_probe{false};
  };
  auto handover = std::make_shared<Handover>();
  Start(request, handover, caller);
  std::unique_lock lock(handover->mu);
  for (;;) {
    handover->cv.wait_for(lock, std::chrono::milliseconds(500), [&] {
      return !handover->events.empty() || handover->status.has_value();
    });
    while (!handover->events.empty()) {
      const v1::ChatEvent e = std::move(handover->events.front());
      handover->events.pop_front();
      lock.unlock();
      const bool delivered = handover->gone ? false : sink.Send(e);
      if (!delivered) handover->gone = true;
      lock.lock();
    }
    if (handover->status) return *handover->status;
    // The caller's sink knows whether its client left (it may peek at a socket): ask it
    // here, on its own thread, for the pipeline's Cancelled().
    lock.unlock();
    handover->cancelled_probe = sink.Cancelled();
    lock.lock();
  }
}

void ChatPipeline::StartResume(const std::string& id, std::uint32_t from_index,
                               const std::shared_ptr<StreamSink>& sink, const Caller& caller) {
  Spawn([this, id, from_index, sink, caller] {
    bool started = false;
    const auto status = Resume(id, from_index, sink, caller, &started);
    if (!started) sink->Close(status);  // else the resumed request closes it when it ends
  });
}

grpc::Status ChatPipeline::NotFound(const std::string& id) const {
  if (!ledger_)
    return {grpc::StatusCode::NOT_FOUND, "no request " + id + " (this router keeps no ledger)"};
  return {grpc::StatusCode::NOT_FOUND, "no request " + id + " in the ledger"};
}

grpc::Status ChatPipeline::Resume(const std::string& id, std::uint32_t from_index,
                                  const std::shared_ptr<StreamSink>& sink, const Caller& caller,
                                  bool* started) {
  // Whose request it is, before anything is claimed: a stranger must not register (and then
  // end) a record that the owner's own Resume would follow. With a ledger every request is
  // there before it runs (Start records it first), so an id it lacks is unknown.
  std::optional<std::string> owner;
  if (ledger_) {
    switch (ledger_->LoadOwner(id, &owner)) {
      case Ledger::Lookup::kFound:
        if (!caller.MayRead(owner)) return NotFound(id);
        break;
      case Ledger::Lookup::kNotFound:
        return NotFound(id);
      case Ledger::Lookup::kError:
        spdlog::error("resume {}: cannot read the ledger: {}", id, ledger_->LastError());
        return {grpc::StatusCode::INTERNAL, "the router cannot read its ledger"};
    }
  }
  // A request still running here: replay what it said and follow it live. Its record says
  // whose it is (the only check without a ledger).
  auto [live, mine] = live_.Claim(id, owner);
  if (!mine) {
    if (!caller.MayRead(live->owner)) return NotFound(id);
    return Follow(*live, id, from_index, *sink);
  }
  // From here this call owns the record: it continues the request or ends the record.
  EndRecordUnlessTaken end{live_, id, live};
  if (!ledger_) return NotFound(id);
  // An interrupted request taken up again is this router's now: the retention must not let
  // it go as one a stopped router left (a finished one is not touched).
  if (!ledger_->Touch(id)) {
    spdlog::error("request {}: cannot mark it resumed: {}", id, ledger_->LastError());
  }
  auto entry = ledger_->Load(id);
  // Checked again on the row read: the answer must come from the row that is served.
  if (!entry || !caller.MayRead(entry->owner)) return NotFound(id);
  const auto replay = [&]() -> bool {
    for (std::uint32_t i = from_index; i < entry->tokens.size(); ++i) {
      v1::ChatEvent e;
      e.set_request_id(id);
      e.mutable_token()->set_index(i);
      e.mutable_token()->set_text(entry->tokens[i]);
      if (!sink->Send(e)) return false;
    }
    return true;
  };
  if (entry->state == Ledger::State::kDone || entry->state == Ledger::State::kFailed) {
    v1::ChatEvent e;
    e.set_request_id(id);
    if (entry->state == Ledger::State::kDone) {
      e.mutable_done()->set_finish_reason(entry->finish_reason);
      e.mutable_done()->mutable_usage()->set_completion_tokens(
          static_cast<std::uint32_t>(entry->tokens.size()));
      if (ledger_->LoadReceipt(id, e.mutable_done()->mutable_receipt()) == Ledger::Lookup::kError) {
        spdlog::error("request {}: cannot read its receipt: {}", id, ledger_->LastError());
        e.mutable_done()->clear_receipt();
      }
    } else {
      e.mutable_error()->set_code(v1::ERROR_CODE_WORKER_FAILED);
      e.mutable_error()->set_message(entry->error);
    }
    // A second Resume arriving meanwhile follows this record: it gets the stored answer too,
    // not the interruption that ending an empty record would tell it.
    {
      std::lock_guard lock(live->mu);
      live->tokens = entry->tokens;
      live->terminal = e;
    }
    live->cv.notify_all();
    if (!replay()) return {grpc::StatusCode::CANCELLED, "client went away"};
    sink->Send(e);
    return grpc::Status::OK;
  }
  if (!replay()) return {grpc::StatusCode::CANCELLED, "client went away"};
  // Interrupted (router restart, client gone): continue at the next token index.
  spdlog::info("resuming request {} at token {}", id, entry->tokens.size());
  {
    std::lock_guard lock(live->mu);
    live->tokens = entry->tokens;
  }
  auto flight = std::make_shared<Flight>();
  flight->id = id;
  flight->owner = entry->owner;  // it stays its creator's, whoever resumes it
  flight->request = entry->request;
  if (!entry->tokens.empty()) {
    // What was said before the interruption is known from the ledger, not who said each part
    // (only the last node is kept): the receipt states it as one hop, honestly labelled.
    flight->route.push_back({entry->node.empty() ? "unknown" : entry->node, 0, entry->tokens.size(),
                             "failed", "interrupted; resumed from the router's ledger"});
  }
  flight->generated = std::move(entry->tokens);
  flight->client = sink;
  flight->replay = std::make_unique<ReplaySink>(*sink, from_index);
  flight->live = live;
  end.taken = true;  // the flight ends the record
  *started = true;
  Begin(flight);
  if (config_.identity) flight->PromptSha256();  // while the worker answers
  return grpc::Status::OK;
}

grpc::Status ChatPipeline::Follow(LiveRequests::Live& live, const std::string& id,
                                  std::uint32_t from_index, EventSink& sink) {
  std::uint32_t next = from_index;
  for (;;) {
    std::unique_lock lock(live.mu);
    live.cv.wait_for(lock, std::chrono::milliseconds(200),
                     [&] { return live.tokens.size() > next || live.terminal.has_value(); });
    while (next < live.tokens.size()) {
      v1::ChatEvent e;
      e.set_request_id(id);
      e.mutable_token()->set_index(next);
      e.mutable_token()->set_text(live.tokens[next++]);
      lock.unlock();
      if (!sink.Send(e)) return {grpc::StatusCode::CANCELLED, "client went away"};
      lock.lock();
    }
    if (live.terminal) {
      const v1::ChatEvent terminal = *live.terminal;
      lock.unlock();
      sink.Send(terminal);
      return grpc::Status::OK;
    }
    lock.unlock();
    if (sink.Cancelled()) return {grpc::StatusCode::CANCELLED, "client went away"};
  }
}

void ChatPipeline::CloseRecorded(Flight& flight, const grpc::Status& status) {
  if (flight.outcome) nodes_.Count(*flight.outcome);
  if (flight.latency) nodes_.RecordLatency(flight.latency->first, flight.latency->second);
  live_.End(flight.id, flight.live);
  flight.client->Close(status);
}

void ChatPipeline::Finish(Flight& flight, const grpc::Status& status) {
  if (std::exchange(flight.closed, true)) return;
  std::optional<grpc::Status> refusal;
  {
    std::lock_guard lock(flight.send_mu);
    switch (flight.record.load()) {
      case Flight::Record::kAwaited:
        flight.held_close = status;  // Recorded or Refused closes the stream
        return;
      case Flight::Record::kRefused:
        refusal = flight.refusal;
        break;
      case Flight::Record::kRecorded:
        break;
    }
  }
  if (refusal) return flight.client->Close(*refusal);
  CloseRecorded(flight, status);
}

void ChatPipeline::Begin(const std::shared_ptr<Flight>& flight) {
  Flight& f = *flight;
  // Every event goes to the client, to the ledger and to anyone following with Resume (for a
  // new request, once the ledger has recorded it: Recorded).
  if (f.record == Flight::Record::kRecorded) {
    f.sink = std::make_unique<PublishingSink>(
        f.replay ? static_cast<EventSink&>(*f.replay) : static_cast<EventSink&>(*f.client), *f.live,
        ledger_, f.id);
  }
  const v1::ChatRequest& request = f.request;
  std::uint32_t prompt_bytes = 0;
  for (const auto& m : request.messages()) prompt_bytes += m.content().size();
  core::Request& view = f.view;
  view.id = next_core_id_++;
  view.user = static_cast<std::uint32_t>(std::hash<std::string>{}(request.user()));
  view.priority = request.priority() == v1::PRIORITY_BATCH ? core::Priority::kBatch
                                                           : core::Priority::kInteractive;
  view.prompt_tokens = prompt_bytes / 4 + 1;  // ~4 bytes per token until the engine tokenizes
  view.max_tokens =
      request.sampling().max_tokens() ? request.sampling().max_tokens() : config_.max_tokens_limit;
  view.expected_output_tokens = std::min<std::uint32_t>(view.max_tokens, 256);
  view.session = std::hash<std::string>{}(request.conversation_id());
  {
    std::lock_guard lock(mu_);
    queued_[view.id] = flight;
  }

  NodeTable::AdmissionCallbacks callbacks;
  std::weak_ptr<Flight> weak = flight;
  callbacks.on_wait = [weak](WaitUpdate u) {
    auto f = weak.lock();
    if (!f) return;
    v1::ChatEvent e;
    e.mutable_accepted()->set_queue_position(u.position);
    e.mutable_accepted()->set_eta_ms(u.eta_ms);
    e.set_request_id(f->id);
    std::lock_guard lock(f->send_mu);
    if (!f->admitted) f->SendLocked(e);
  };
  // The flight lives in this callback until admission ends, however that happens.
  callbacks.on_done = [this, flight](AdmitResult admitted) {
    {
      std::lock_guard lock(mu_);
      queued_.erase(flight->view.id);
    }
    {
      std::lock_guard lock(flight->send_mu);
      flight->admitted = true;
    }
    if (!admitted.admitted) {
      if (flight->Cancelled() || admitted.error == v1::ERROR_CODE_UNSPECIFIED) {
        return Finish(*flight, flight->Cancel());
      }
      v1::ChatEvent e;
      e.mutable_error()->set_code(admitted.error);
      e.mutable_error()->set_message(admitted.message);
      e.mutable_error()->set_retry_after_ms(admitted.retry_after_ms);
      flight->Send(e);
      return Finish(*flight, grpc::Status::OK);
    }
    StartServing(flight, admitted);
  };
  nodes_.AdmitAsync(view, std::move(callbacks));
}

void ChatPipeline::AttachReceipt(Flight& flight, const v1::GenerateDone& worker, v1::Done* done) {
  if (!config_.identity) return;
  if (worker.statement().empty()) {
    spdlog::warn("request {}: worker {} signed no statement; its answer has no receipt", flight.id,
                 flight.route.back().node);
    return;
  }
  receipt::RouterStatement statement;
  statement.request_id = flight.id;
  statement.prompt_messages_sha256 = flight.PromptSha256();
  statement.prompt_tokens = done->usage().prompt_tokens();
  statement.finish_reason = done->finish_reason();
  statement.route = flight.route;
  statement.accepted_at_ms = flight.accepted_unix_ms;
  statement.done_at_ms = UnixMs();
  std::string problem;
  const auto envelope = receipt::Countersign(
      statement, {worker.statement(), worker.statement_signature(), worker.worker_public_key()},
      flight.generated, *config_.identity, &problem);
  if (!envelope) {
    // Not countersigned: the answer still goes out (it is the answer), without a receipt.
    spdlog::error("request {}: not countersigning worker {}'s statement: {}", flight.id,
                  flight.route.back().node, problem);
    return;
  }
  auto* r = done->mutable_receipt();
  r->set_payload(envelope->payload);
  r->set_worker_signature(envelope->worker_signature);
  r->set_worker_public_key(envelope->worker_public_key);
  r->set_router_signature(envelope->router_signature);
  r->set_router_public_key(envelope->router_public_key);
}

// One whole attempt on a worker, with no thread of its own: gRPC's callback threads stream
// its tokens to the client, end the answer when the worker's Done is read, and place the next
// attempt when the call fails. Deletes itself when the call is over.
class ChatPipeline::Attempt final : public grpc::ClientReadReactor<v1::GenerateEvent> {
 public:
  Attempt(ChatPipeline& p, std::shared_ptr<Flight> flight, Lease lease)
      : p_(p),
        flight_(std::move(flight)),
        lease_(std::move(lease)),
        upstream_(&context_, lease_.connection, flight_.get()) {
    request_ = p_.WorkFor(*flight_);
    auth::AttachBearer(context_, p_.config_.token);
    lease_.stub->async()->Generate(&context_, &request_, this);
  }
  void Start() {
    p_.Watch(upstream_);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    upstream_.Heard();
    if (event_.has_token()) {
      if (!client_gone_ && !p_.TakeToken(*flight_, lease_, event_.token())) {
        client_gone_ = true;
        context_.TryCancel();
      }
    } else if (event_.has_done() && !answered_ && !client_gone_) {
      // The answer is complete once the worker's signed Done is read: it is countersigned and
      // delivered, and the client's stream closed, without waiting for the call's trailers.
      answered_ = true;
      p_.nodes_.Release(lease_, true);
      p_.Deliver(flight_, event_.done());
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    p_.AttemptEnded(flight_, lease_, answered_, client_gone_, upstream_.stalled, status);
    ChatPipeline& p = p_;
    p.Unwatch(upstream_);
    delete this;
    p.AttemptOver();  // last: the pipeline may be destroyed once nothing runs
  }

 private:
  ChatPipeline& p_;
  std::shared_ptr<Flight> flight_;
  Lease lease_;
  grpc::ClientContext context_;
  Upstream upstream_;
  v1::GenerateRequest request_;
  v1::GenerateEvent event_;
  bool client_gone_ = false;
  bool answered_ = false;  // the worker's Done arrived while the client was there
};

void ChatPipeline::Watch(Upstream& up) {
  std::lock_guard lock(mu_);
  ++running_;
  upstreams_.insert(&up);
  if (stopping_) up.context->TryCancel();
}

void ChatPipeline::Unwatch(Upstream& up) {
  std::lock_guard lock(mu_);
  upstreams_.erase(&up);
}

void ChatPipeline::AttemptOver() {
  std::lock_guard lock(mu_);
  if (--running_ == 0) changed_.notify_all();
}

void ChatPipeline::StartServing(const std::shared_ptr<Flight>& flight,
                                const AdmitResult& admitted) {
  Flight& f = *flight;
  f.serving_since = Clock::now();
  f.sampling = f.request.sampling();
  if (admitted.degraded) {
    f.sampling.set_max_tokens(admitted.max_tokens);
    v1::ChatEvent e;
    e.mutable_degraded()->set_reason("waited long in a surge: answering with at most " +
                                     std::to_string(admitted.max_tokens) + " tokens");
    e.mutable_degraded()->set_max_tokens(admitted.max_tokens);
    e.mutable_degraded()->set_model(f.request.model());
    f.Send(e);
  }
  Place(flight);
}

// The common case, a free slot and a whole placement, starts the worker call right here (on
// the thread that admitted the request or saw the last attempt fail): no thread hand-off.
// Waiting for a slot, and split placements (blocking calls), go to a pool thread.
void ChatPipeline::Place(const std::shared_ptr<Flight>& flight) {
  Flight& f = *flight;
  if (f.attempts > config_.max_redirects) return GiveUp(f);
  auto placed = nodes_.TryAcquire(f.view, f.failed_connections);
  if (placed && !placed->decode) return Launch(flight, std::move(*placed->lease));
  Spawn([this, flight, placed]() mutable { PlaceWaiting(flight, std::move(placed)); });
}

void ChatPipeline::PlaceWaiting(const std::shared_ptr<Flight>& flight,
                                std::optional<AcquireResult> placed) {
  Flight& f = *flight;
  const auto cancelled = [&] { return f.Cancelled(); };
  // After the front door, a request waits for a free slot only in a brief race; say so only
  // when it really queues.
  const auto on_slot_wait = [&](WaitUpdate u) {
    if (u.position == 0) return;
    v1::ChatEvent e;
    e.mutable_accepted()->set_queue_position(u.position);
    e.mutable_accepted()->set_eta_ms(u.eta_ms);
    f.Send(e);
  };
  for (; f.attempts <= config_.max_redirects; ++f.attempts) {
    AcquireResult acquired = placed ? std::move(*std::exchange(placed, std::nullopt))
                                    : nodes_.Acquire(f.view, f.failed_connections, cancelled,
                                                     on_slot_wait, config_.no_worker_timeout);
    if (!acquired.lease) {
      if (f.Cancelled()) return EndServing(f, f.Cancel());
      return EndServing(f, SendError(f, acquired.error, acquired.message));
    }
    Lease& lease = *acquired.lease;
    if (!acquired.decode) return Launch(flight, std::move(lease));
    Lease& decode = *acquired.decode;
    if (f.queue_ms < 0) f.queue_ms = MsSince(f.accepted_at);
    if (!SendPlacement(f, lease)) {
      nodes_.Release(lease, false);
      nodes_.Release(decode, false);
      return EndServing(f, f.Cancel());
    }
    SplitEnd end = ServeSplit(f, lease, decode, WorkFor(f));
    switch (end.kind) {
      case SplitEnd::Kind::kDone:
        return EndServing(f, FinishDone(f, *end.done));
      case SplitEnd::Kind::kClientGone:
        return EndServing(f, f.Cancel());
      case SplitEnd::Kind::kInvalid:
        return EndServing(f,
                          SendError(f, v1::ERROR_CODE_INVALID_REQUEST, end.status.error_message()));
      case SplitEnd::Kind::kFailed:
        break;
    }
    NoteFailure(f, *end.failed, end.failure);
  }
  GiveUp(f);
}

void ChatPipeline::GiveUp(Flight& f) {
  EndServing(f, SendError(f, v1::ERROR_CODE_WORKER_FAILED,
                          "gave up after " + std::to_string(config_.max_redirects) +
                              " redirects; last: " + f.last_failure));
}

void ChatPipeline::Launch(const std::shared_ptr<Flight>& flight, Lease lease) {
  Flight& f = *flight;
  if (f.queue_ms < 0) f.queue_ms = MsSince(f.accepted_at);
  if (!SendPlacement(f, lease)) {
    nodes_.Release(lease, false);
    return EndServing(f, f.Cancel());
  }
  (new Attempt(*this, flight, std::move(lease)))->Start();
}

// Countersigning takes ~0.1 ms. On gRPC's callback thread that read the Done it saves two
// thread hand-offs on every answer's critical path; but those few threads are also the front
// door's, so while requests wait to be admitted (a surge) a pool thread does it.
void ChatPipeline::Deliver(const std::shared_ptr<Flight>& flight, const v1::GenerateDone& done) {
  if (nodes_.WaitingToBeAdmitted() == 0) return Finish(*flight, FinishDone(*flight, done));
  Spawn([this, flight, done] { Finish(*flight, FinishDone(*flight, done)); });
}

void ChatPipeline::AttemptEnded(const std::shared_ptr<Flight>& flight, const Lease& lease,
                                bool answered, bool client_gone, Stall stalled,
                                const grpc::Status& status) {
  Flight& f = *flight;
  if (answered) return LeaveServing(f);  // Deliver ends it
  nodes_.Release(lease, false);
  if (client_gone || f.Cancelled()) return EndServing(f, f.Cancel());
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT && stalled == Stall::kNone) {
    return EndServing(f, SendError(f, v1::ERROR_CODE_INVALID_REQUEST, status.error_message()));
  }
  NoteFailure(f, lease,
              stalled != Stall::kNone ? StallMessage(stalled)
              : status.ok()           ? "worker ended the stream without finishing"
                                      : "worker failed: " + status.error_message());
  ++f.attempts;
  Place(flight);
}

std::string ChatPipeline::StallMessage(Stall why) const {
  const auto ms = std::to_string(config_.stall_timeout.count());
  return why == Stall::kNoTelemetry ? "worker went silent (no telemetry for " + ms + " ms)"
                                    : "worker went silent (nothing on the call for " + ms + " ms)";
}

void ChatPipeline::NoteFailure(Flight& f, const Lease& lease, std::string why) {
  spdlog::warn("request {} on {}: {}; redirecting at token {}", f.id, lease.node, why,
               f.generated.size());
  f.route.back().to_index = f.generated.size();
  f.route.back().outcome = "failed";
  f.route.back().reason = why;
  f.last_failure = std::move(why);
  f.failed_connections.insert(lease.connection);
  f.previous = lease;
}

void ChatPipeline::EndServing(Flight& f, const grpc::Status& status) {
  Finish(f, status);
  LeaveServing(f);
}

void ChatPipeline::LeaveServing(Flight& f) {
  nodes_.Leave(std::chrono::duration<double>(Clock::now() - f.serving_since).count());
}

bool ChatPipeline::SendPlacement(Flight& f, const Lease& lease) {
  v1::ChatEvent e;
  if (f.previous) {
    auto* r = e.mutable_redirected();
    r->set_from_node(f.previous->node);
    r->set_to_node(lease.node);
    r->set_reason(f.last_failure);
    r->set_resume_index(static_cast<std::uint32_t>(f.generated.size()));
    v1::RedirectRecord record;
    record.set_request_id(f.id);
    record.set_from_node(f.previous->node);
    record.set_to_node(lease.node);
    record.set_reason(f.last_failure);
    nodes_.RecordRedirect(record);
  } else {
    auto* r = e.mutable_routed();
    r->set_node(lease.node);
    r->set_lane(lease.lane);
    r->set_stage(lease.stage);
  }
  if (!f.Send(e)) return false;
  f.route.push_back({lease.node, f.generated.size(), f.generated.size(), "failed", ""});
  return true;
}

v1::GenerateRequest ChatPipeline::WorkFor(const Flight& f) const {
  v1::GenerateRequest work;
  work.set_request_id(f.id);
  work.set_model(f.request.model());
  *work.mutable_messages() = f.request.messages();
  *work.mutable_sampling() = f.sampling;
  for (const auto& t : f.generated) work.add_generated(t);
  return work;
}

// Tokens carry their index, so a resumed stream can never repeat or skip one.
bool ChatPipeline::TakeToken(Flight& f, Lease& from, const v1::Token& token) {
  if (token.index() != f.generated.size()) return true;
  if (f.ttft_ms < 0) f.ttft_ms = MsSince(f.accepted_at);
  nodes_.MarkPrefilled(from);
  f.generated.push_back(token.text());
  v1::ChatEvent e;
  *e.mutable_token() = token;
  return f.Send(e);
}

grpc::Status ChatPipeline::SendError(Flight& f, v1::ErrorCode code, const std::string& message) {
  v1::ChatEvent e;
  e.mutable_error()->set_code(code);
  e.mutable_error()->set_message(message);
  if (code == v1::ERROR_CODE_NO_WORKER) e.mutable_error()->set_retry_after_ms(5000);
  f.Send(e);
  f.outcome = NodeTable::Outcome::kFailed;
  return grpc::Status::OK;
}

grpc::Status ChatPipeline::FinishDone(Flight& f, const v1::GenerateDone& done) {
  f.outcome = NodeTable::Outcome::kServed;
  v1::ChatEvent e;
  auto* d = e.mutable_done();
  *d->mutable_usage() = done.usage();
  d->set_finish_reason(done.finish_reason());
  const double total = MsSince(f.accepted_at);
  d->mutable_timings()->set_queue_ms(f.queue_ms);
  d->mutable_timings()->set_ttft_ms(f.ttft_ms < 0 ? total : f.ttft_ms);
  d->mutable_timings()->set_total_ms(total);
  double tpot_s = 0;
  if (f.generated.size() > 1 && total > f.ttft_ms) {
    d->mutable_timings()->set_decode_tok_s((f.generated.size() - 1) * 1000.0 / (total - f.ttft_ms));
    tpot_s = (total - f.ttft_ms) / 1000.0 / (f.generated.size() - 1);
  }
  f.latency = {d->timings().ttft_ms() / 1000.0, tpot_s};
  f.route.back().to_index = f.generated.size();
  f.route.back().outcome = "done";
  AttachReceipt(f, done, d);
  f.Send(e);
  return grpc::Status::OK;
}

ChatPipeline::SplitEnd ChatPipeline::ServeSplit(Flight& flight, Lease& p, Lease& d,
                                                const v1::GenerateRequest& work) {
  const auto on_token = [&](Lease& from, const v1::Token& token) {
    return TakeToken(flight, from, token);
  };
  std::vector<std::string>& generated = flight.generated;
  auto& route = flight.route;  // its last hop is the prefill node's
  // Each slot is given back exactly once, whichever way this ends.
  struct Slot {
    NodeTable& nodes;
    const Lease& lease;
    bool released = false;
    void Release(bool served) {
      if (!std::exchange(released, true)) nodes.Release(lease, served);
    }
    ~Slot() { Release(false); }
  } p_slot{nodes_, p}, d_slot{nodes_, d};
  const auto failed = [&](const Lease& node, std::string why) {
    SplitEnd end;
    end.kind = SplitEnd::Kind::kFailed;
    end.failed = node;
    end.failure = std::move(why);  // NoteFailure writes it on the route's last hop
    return end;
  };
  const auto client_gone = [] { return SplitEnd{SplitEnd::Kind::kClientGone, {}, {}, {}, {}}; };

  // 1. Prefill: the first token goes to the client as soon as it arrives.
  grpc::ClientContext pctx;
  auth::AttachBearer(pctx, config_.token);
  Track p_track(*this, &pctx, p.connection, flight);
  auto reader = p.stub->PrefillKv(&pctx, work);
  v1::PrefillEvent event;
  std::optional<v1::KvHead> head;
  std::optional<v1::GenerateDone> done;
  // Why a call failed: silence past the stall bound (Housekeeping cancelled it) or its status.
  const auto why = [&](const Track& t, const char* what, const grpc::Status& status) {
    return t.up.stalled != Stall::kNone ? StallMessage(t.up.stalled)
                                        : what + status.error_message();
  };
  while (!head && !done && reader->Read(&event)) {
    p_track.up.Heard();
    if (event.has_token()) {
      if (!on_token(p, event.token())) {
        pctx.TryCancel();
        reader->Finish();
        return client_gone();
      }
    } else if (event.has_head()) {
      head = event.head();
    } else if (event.has_done()) {
      done = event.done();
    } else {
      pctx.TryCancel();  // a KV chunk before its head: nothing sensible follows
      break;
    }
  }
  if (flight.Cancelled()) {
    pctx.TryCancel();
    reader->Finish();
    return client_gone();
  }
  if (done) {
    // The answer ended in prefill (end of text, max_tokens): the prefill node finished it.
    const grpc::Status status = reader->Finish();
    if (status.ok()) {
      p_slot.Release(true);
      return {SplitEnd::Kind::kDone, done, {}, {}, {}};
    }
    return failed(p, why(p_track, "prefill failed: ", status));
  }
  if (!head) {
    const grpc::Status status = reader->Finish();
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return {SplitEnd::Kind::kInvalid, {}, status, {}, {}};
    }
    return failed(p, status.ok() ? "prefill ended without a KV cache"
                                 : why(p_track, "prefill failed: ", status));
  }

  // 2. The KV cache moves, one chunk at a time: the router never holds more than one chunk of
  // it, however large it is (gRPC's flow control paces the prefill node to the decode node).
  route.back().to_index = generated.size();
  route.back().outcome = "handoff";
  route.back().reason = "prefilled; KV cache handed to " + d.node;
  route.push_back({d.node, generated.size(), generated.size(), "failed", ""});
  {
    v1::ChatEvent routed;
    routed.mutable_routed()->set_node(d.node);
    routed.mutable_routed()->set_lane(d.lane);
    routed.mutable_routed()->set_stage(v1::STAGE_DECODE);
    if (!flight.Send(routed)) {
      pctx.TryCancel();
      reader->Finish();
      return client_gone();
    }
  }
  grpc::ClientContext dctx;
  auth::AttachBearer(dctx, config_.token);
  Track d_track(*this, &dctx, d.connection, flight);
  auto stream = d.stub->DecodeKv(&dctx);
  v1::DecodeInput input;
  auto* start = input.mutable_start();
  *start->mutable_request() = work;
  start->mutable_request()->clear_generated();
  for (const auto& t : generated) start->mutable_request()->add_generated(t);
  *start->mutable_head() = *head;
  start->set_prefill_node(p.node);
  bool decode_ok = stream->Write(input);
  bool in_order = true;
  std::uint64_t moved = 0;
  while (decode_ok && moved < head->kv_bytes() && reader->Read(&event)) {
    p_track.up.Heard();
    if (!event.has_kv() || event.kv().offset() != moved) {
      in_order = false;
      break;
    }
    moved += event.kv().data().size();
    input.Clear();
    input.mutable_kv()->Swap(event.mutable_kv());
    decode_ok = stream->Write(input);
    if (decode_ok) d_track.up.Heard();  // it took the chunk
    if (flight.Cancelled()) {
      pctx.TryCancel();
      dctx.TryCancel();
      reader->Finish();
      stream->Finish();
      return client_gone();
    }
  }
  // The prefill stream must end right after the announced bytes (Finish needs it drained).
  if (decode_ok && in_order && moved == head->kv_bytes() && reader->Read(&event)) {
    in_order = false;
  }
  if (!decode_ok || !in_order) pctx.TryCancel();
  const grpc::Status p_status = reader->Finish();
  p_track.End();
  if (decode_ok && (!in_order || !p_status.ok() || moved != head->kv_bytes())) {
    // The prefill node failed mid-transfer: the decode node has nothing to go on.
    dctx.TryCancel();
    stream->Finish();
    route.pop_back();
    return failed(p, !in_order       ? "the KV cache arrived out of order"
                     : p_status.ok() ? "the KV transfer ended at byte " + std::to_string(moved) +
                                           " of " + std::to_string(head->kv_bytes())
                                     : why(p_track, "KV transfer failed: ", p_status));
  }
  if (decode_ok) {
    // The prefill node's part is done: its slot frees for the next prompt now.
    p_slot.Release(true);
    nodes_.RecordHandoff(flight.view.id, p, d, moved);
    stream->WritesDone();
  }

  // 3. Decode: tokens continue at the next index, from the decode node.
  v1::GenerateEvent out;
  while (decode_ok && stream->Read(&out)) {
    d_track.up.Heard();
    if (out.has_token()) {
      if (!on_token(d, out.token())) {
        dctx.TryCancel();
        stream->Finish();
        return client_gone();
      }
    } else if (out.has_done()) {
      done = out.done();
    }
  }
  const grpc::Status d_status = stream->Finish();
  if (flight.Cancelled()) return client_gone();
  if (decode_ok && d_status.ok() && done) {
    d_slot.Release(true);
    return {SplitEnd::Kind::kDone, done, {}, {}, {}};
  }
  // The decode node refused the cache or failed; the request continues elsewhere from the
  // next token (the ledger has every token so far), re-prefilling there.
  return failed(d, d_status.ok() ? "decode node ended its stream without finishing"
                                 : why(d_track, "decode failed: ", d_status));
}

}  // namespace tidelane::server
