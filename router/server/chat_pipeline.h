// ChatPipeline: one chat request's life in the router, whatever protocol carried it (gRPC
// ChatService, the OpenAI-compatible HTTP API): validate, admit (Accepted with place in line
// at once), route, stream the worker's tokens with their indices, redirect to another worker
// at the next token index if one fails, and finish with Done or Error.
//
// Threading: Start returns at once. A request waiting at the front door holds no thread (it
// is a record with callbacks in the NodeTable), so ten thousand queued users cost memory, not
// threads. Once admitted, a request placed whole on a node with a free slot holds no thread
// either: the thread that admitted it starts the worker call, and gRPC's callback threads
// carry the rest (each token on to the client, the answer ended as soon as the worker's Done
// is read, the next attempt placed when a worker fails). Only waiting for a slot and split
// placements (prefill on one node, decode on another) run on a pool thread; admission bounds
// how many. Run is the blocking form, for protocols served a thread per connection.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "router/proto/tls.h"
#include "router/receipt/receipt.h"
#include "router/server/ledger.h"
#include "router/server/node_table.h"
#include "router/server/rate_limiter.h"
#include "tidelane/v1/chat.pb.h"
#include "tidelane/v1/worker.pb.h"

namespace tidelane::server {

struct RouterConfig {
  RouterConfig() = default;
  RouterConfig(const RouterConfig&) = default;
  RouterConfig(RouterConfig&&) = default;
  RouterConfig& operator=(const RouterConfig&) = default;
  RouterConfig& operator=(RouterConfig&&) = default;
  // Overwrites the tokens' bytes (sodium_memzero) before their memory goes back, so a later
  // allocation or a core dump of a long-lived process does not find them. Destroy the config
  // last: everything that serves requests reads it.
  ~RouterConfig();

  std::string token;
  // How long a request waits for the first worker to join before it gets NO_WORKER.
  std::chrono::milliseconds no_worker_timeout{15000};
  std::uint32_t telemetry_interval_ms = 250;
  std::uint32_t max_prompt_bytes = 1 << 20;
  std::uint32_t max_tokens_limit = 4096;
  int max_redirects = 3;
  // A worker that sends no telemetry for this long (frozen, or cut off while its connections
  // look open), or says nothing for this long on a call that has streamed, is taken for
  // stalled: its calls are cancelled and each request continues on another worker at its next
  // token. A long prefill is not silence (telemetry keeps coming). Checked about every 0.5 s.
  std::chrono::milliseconds stall_timeout{30000};
  // Countersigns the workers' statements into each Done's receipt; none when absent.
  std::optional<receipt::Identity> identity;
  // Tokens chat clients may present: `token` first, then one per client (--client-tokens-file).
  // Chat, Resume, ListModels, Watch and the HTTP API accept any of them; worker registration
  // and the admin calls (SetPolicy, SetNodeState) accept only `token`. Set once at start.
  std::vector<std::string> client_tokens;
  // Requests per second per client token (0: unlimited) and the burst allowed above it.
  RateLimiter::Options rate_limit;
  // TLS for the gRPC and HTTP listeners and for calls to workers; plaintext when empty.
  tls::Files tls;
};

// Who sent a request or asks to read one: the client credential it presented, as the ledger
// records it. Requests belong to the credential that created them: Resume and
// GET /v1/receipts/{id} serve a request to its owner and to the router's own token only, and
// answer anyone else exactly as for an unknown id. The ChatRequest never carries the token.
struct Caller {
  // auth::CredentialDigest of the token presented (never the token itself).
  std::string owner;
  // The router's own token (RouterConfig::token, client_tokens[0]): the operator's credential,
  // which may read every request, including ledger rows recorded without an owner.
  bool admin = false;

  // The caller that presented config.client_tokens[index] (auth::MatchBearer's answer).
  static Caller ForClient(const RouterConfig& config, std::size_t index);
  // The router's own token: what the forms of Start, Run and StartResume without a caller use
  // (callers inside the router process, which hold that token anyway).
  static Caller Router(const RouterConfig& config);
  // Whether this caller may read a request owned by `owner` (nullopt: none recorded).
  bool MayRead(const std::optional<std::string>& owner) const;
};

// Why `request` cannot be served under `config` (empty when it can): roles, sizes, token
// limits. Pure; every front door (gRPC, HTTP) calls it before admitting anything.
std::string ValidateChatRequest(const v1::ChatRequest& request, const RouterConfig& config);

// Where a request's events go. The pipeline calls Send from one thread at a time per request
// (not always the same thread).
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Delivers one event; false when the client has gone (the pipeline then stops the work).
  virtual bool Send(const v1::ChatEvent& event) = 0;
  // True once the client has gone or given up.
  virtual bool Cancelled() const = 0;
};

// A client stream the pipeline owns for the request's life: events, then Close exactly once.
class StreamSink : public EventSink {
 public:
  // No more events; `status` ends the stream (OK after a Done or Error event).
  virtual void Close(const grpc::Status& status) = 0;
};

// Requests running in this router, so Resume can follow one live.
class LiveRequests {
 public:
  struct Live {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> tokens;
    std::optional<v1::ChatEvent> terminal;  // Done or Error
    // Caller::owner of the credential the request belongs to (nullopt: none recorded). Set
    // before the record is registered and never changed, so it is read without `mu`.
    std::optional<std::string> owner;
  };
  // Why a new request with an id in use here is refused.
  enum class Refusal {
    kNone,   // it may start
    kOwn,    // its owner's request with that id is running or being recorded: Resume it
    kInUse,  // another owner's request with that id runs here
  };
  struct Start {
    std::shared_ptr<Live> record;  // the new request's (empty when refused)
    Refusal refusal = Refusal::kNone;
  };
  // A new request's start. Refused while a request with `id` runs here (recorded, any owner) or
  // is being recorded for the same owner, so that an owner's retry never streams a second
  // answer into the first one's record. Otherwise returns a new empty record owned by `owner`,
  // which the caller runs and Ends. With `recorded` (a router without a ledger) it is registered
  // at once; else it is noted as being recorded (refusing its owner's retries, invisible to
  // Resume) until Recorded registers it or End drops it. Another owner's request still being
  // recorded does not refuse this one: only the ledger knows whose the id is, and it refuses
  // the one that is not the owner's; a stranger cannot hold an owner's id by sending it.
  Start StartNew(const std::string& id, std::optional<std::string> owner, bool recorded);
  // The ledger has recorded the request of `live`: Resume follows it from now on.
  void Recorded(const std::string& id, const std::shared_ptr<Live>& live);
  // The live record of `id` and false when it runs already; else a new empty record owned by
  // `owner`, now registered, and true: the caller runs it (or Ends it), so two Resumes never
  // both do.
  std::pair<std::shared_ptr<Live>, bool> Claim(const std::string& id,
                                               std::optional<std::string> owner);
  // The request of record `live` stopped running here (or was never recorded); followers get
  // its terminal event (or an interruption). Only that record is unregistered: a newer request
  // that took the id over once this one had ended stays registered.
  void End(const std::string& id, const std::shared_ptr<Live>& live);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Live>> live_;       // followed by Resume
  std::map<std::string, std::shared_ptr<Live>> recording_;  // started, not yet recorded
};

// Sends each event on to the client, records it in the ledger (a Done's receipt with it) and
// shares it with followers. Only for a request the ledger has recorded: a new request's events
// wait in its flight until then (ChatPipeline::Recorded).
class PublishingSink final : public EventSink {
 public:
  PublishingSink(EventSink& client, LiveRequests::Live& live, Ledger* ledger, std::string id)
      : client_(client), live_(live), ledger_(ledger), id_(std::move(id)) {}
  bool Send(const v1::ChatEvent& event) override;
  bool Cancelled() const override { return client_.Cancelled(); }
  // The client left: the ledger keeps what was said, resumable later.
  grpc::Status Cancel();

 private:
  EventSink& client_;
  LiveRequests::Live& live_;
  Ledger* ledger_;
  std::string id_;
  bool warned_ = false;
};

// Replays a resumed request's stored tokens from `from` before its new ones: drops tokens the
// client already has.
class ReplaySink final : public EventSink {
 public:
  ReplaySink(EventSink& client, std::uint32_t from) : client_(client), from_(from) {}
  bool Send(const v1::ChatEvent& e) override {
    return e.has_token() && e.token().index() < from_ ? true : client_.Send(e);
  }
  bool Cancelled() const override { return client_.Cancelled(); }

 private:
  EventSink& client_;
  std::uint32_t from_;
};

class ChatPipeline {
 public:
  // `config`, `nodes` and `ledger` (which may be null: nothing is kept) outlive the pipeline.
  // Starts a housekeeping thread that re-tells queued requests their place.
  ChatPipeline(const RouterConfig& config, NodeTable& nodes, Ledger* ledger);
  // Waits for running requests to end (call NodeTable::Shutdown first to end queued ones).
  ~ChatPipeline();
  // Cuts running requests short (their worker calls are cancelled); for router shutdown.
  void Shutdown();

  // Starts `request` for `caller`, who owns it from now on; returns at once. Events follow on
  // `sink`, then sink->Close: OK once a terminal event (Done or Error) was sent;
  // INVALID_ARGUMENT (nothing sent) for a request that cannot be served as asked, with a
  // message saying why; ALREADY_EXISTS (nothing sent) when its request_id is in the ledger
  // under another credential; CANCELLED when the client went away. With a ledger, no event is
  // sent before the request is recorded (it runs meanwhile: see Recorded); one the ledger
  // cannot record gets a single INTERNAL Error event with a retry-after, then OK.
  void Start(const v1::ChatRequest& request, std::shared_ptr<StreamSink> sink,
             const Caller& caller);
  // As the router's own token.
  void Start(const v1::ChatRequest& request, std::shared_ptr<StreamSink> sink) {
    Start(request, std::move(sink), Caller::Router(config_));
  }
  // Start, waiting on the caller's thread for the end; returns what Close would get.
  grpc::Status Run(const v1::ChatRequest& request, EventSink& sink, const Caller& caller);
  grpc::Status Run(const v1::ChatRequest& request, EventSink& sink) {
    return Run(request, sink, Caller::Router(config_));
  }

  // What is wrong with `request` (empty when nothing is): the check Run makes first, for
  // protocols that must answer before they start streaming.
  std::string Problem(const v1::ChatRequest& request) const;

  // The ledger requests are kept in (null: none); for receipts and other read-only lookups.
  Ledger* ledger() const { return ledger_; }

  // Charges one request to the client token `credential`'s rate limit (see RouterConfig).
  // Thread-safe. Not allowed: the caller refuses the request with the retry-after delay.
  RateLimiter::Decision ChargeRate(std::string_view credential);

  // Sends request `id`'s tokens from `from_index`, then follows it: live when it runs here,
  // from the ledger when it finished, and by continuing it at its next token index on a
  // worker when it was interrupted (router restart, client gone). NOT_FOUND for unknown ids,
  // and the very same NOT_FOUND when `caller` may not read the request (Caller::MayRead), so
  // a stranger cannot tell that it exists. Returns at once; events and Close follow on `sink`.
  void StartResume(const std::string& id, std::uint32_t from_index,
                   const std::shared_ptr<StreamSink>& sink, const Caller& caller);
  // As the router's own token.
  void StartResume(const std::string& id, std::uint32_t from_index,
                   const std::shared_ptr<StreamSink>& sink) {
    StartResume(id, from_index, sink, Caller::Router(config_));
  }

 private:
  struct Flight;
  // Why a worker call was cancelled as stalled (Housekeeping).
  enum class Stall { kNone, kNoTelemetry, kCallSilent };
  struct Upstream;
  struct Track;
  class Attempt;
  // How one split attempt (prefill on one node, decode on another) ended.
  struct SplitEnd {
    enum class Kind { kDone, kClientGone, kInvalid, kFailed } kind = Kind::kFailed;
    std::optional<v1::GenerateDone> done;  // kDone: from the node that finished
    grpc::Status status;                   // kInvalid: the worker's answer
    std::optional<Lease> failed;           // kFailed: the node to redirect away from
    std::string failure;                   // kFailed: why
  };
  // Runs PrefillKv on `prefill`, moves its KV cache chunk by chunk into DecodeKv on `decode`
  // and streams the decode node's tokens; gives both leases back and keeps flight.route.
  SplitEnd ServeSplit(Flight& flight, Lease& prefill, Lease& decode,
                      const v1::GenerateRequest& work);
  // Admission, without blocking: the request queues as a record and goes on to StartServing
  // once admitted.
  void Begin(const std::shared_ptr<Flight>& flight);
  // The ledger's answer to a new request's accept, which commits while the request is admitted,
  // placed and its worker call started (the commit is off the answer's path): Recorded sends
  // what the request said meanwhile, in order, and from then on it goes straight out; Refused
  // drops it, tells the client why (`status`, after `error` when there is one) and stops the
  // request as if its client had left. Until one of them runs nothing reaches the client, or
  // the ledger under the request's id (which may be another client's).
  void Recorded(const std::shared_ptr<Flight>& flight);
  void Refused(const std::shared_ptr<Flight>& flight, const grpc::Status& status,
               std::optional<v1::ChatEvent> error);

  // Serving an admitted request, attempt by attempt (see Threading above). Each path ends in
  // exactly one EndServing (or Deliver plus LeaveServing), which Leaves the front door.
  void StartServing(const std::shared_ptr<Flight>& flight, const AdmitResult& admitted);
  // The next attempt: on this thread when a slot is free for a whole placement, else
  // PlaceWaiting on a pool thread. Gives up past config.max_redirects.
  void Place(const std::shared_ptr<Flight>& flight);
  // On a pool thread: waits for a slot (unless `placed` holds one), serves split placements
  // to their end and hands whole ones to Launch.
  void PlaceWaiting(const std::shared_ptr<Flight>& flight, std::optional<AcquireResult> placed);
  // Tells the client where the request goes and starts the worker call (an Attempt).
  void Launch(const std::shared_ptr<Flight>& flight, Lease lease);
  // The worker's Done: receipt, Done event, the client's stream closed.
  void Deliver(const std::shared_ptr<Flight>& flight, const v1::GenerateDone& done);
  // An Attempt's call is over: the answer was delivered, or the client left, or the request
  // goes on elsewhere.
  void AttemptEnded(const std::shared_ptr<Flight>& flight, const Lease& lease, bool answered,
                    bool client_gone, Stall stalled, const grpc::Status& status);
  // The attempt on `lease` failed for `why`: the route says so, the node is excluded from
  // the next placements, and the next Routed becomes a Redirected.
  void NoteFailure(Flight& flight, const Lease& lease, std::string why);
  std::string StallMessage(Stall why) const;
  // Past config.max_redirects: the request ends with WORKER_FAILED and the last failure.
  void GiveUp(Flight& flight);
  void EndServing(Flight& flight, const grpc::Status& status);
  void LeaveServing(Flight& flight);
  // Routed (or Redirected after a failure) to the client and a new hop on the route; false
  // when the client has gone.
  bool SendPlacement(Flight& flight, const Lease& lease);
  v1::GenerateRequest WorkFor(const Flight& flight) const;
  // A worker's token: on to the client when it is the next index; false when the client left.
  bool TakeToken(Flight& flight, Lease& from, const v1::Token& token);
  grpc::Status SendError(Flight& flight, v1::ErrorCode code, const std::string& message);
  // The Done event for the worker's `done`, with timings and receipt, sent.
  grpc::Status FinishDone(Flight& flight, const v1::GenerateDone& done);
  // An Attempt's call, counted in running_ (the destructor waits for it) and watched for
  // silence and for Shutdown.
  void Watch(Upstream& upstream);
  void Unwatch(Upstream& upstream);
  void AttemptOver();
  void Finish(Flight& flight, const grpc::Status& status);
  // Closes a recorded request's stream with `status`: its outcome and latencies go to the
  // counters, and followers (Resume) hear that it ended.
  void CloseRecorded(Flight& flight, const grpc::Status& status);
  // Countersigns the finishing worker's statement into `done`'s receipt (the ledger keeps it
  // with the Done event); leaves `done` without one (and says why in the log) when it cannot.
  void AttachReceipt(Flight& flight, const v1::GenerateDone& worker, v1::Done* done);
  grpc::Status Resume(const std::string& id, std::uint32_t from_index,
                      const std::shared_ptr<StreamSink>& sink, const Caller& caller, bool* started);
  // The answer to a Resume of an unknown id, and to one the caller may not read.
  grpc::Status NotFound(const std::string& id) const;
  grpc::Status Follow(LiveRequests::Live& live, const std::string& id, std::uint32_t from_index,
                      EventSink& sink);
  // Runs `fn` on a pool thread (counted in running_, so the destructor can wait for it).
  void Spawn(std::function<void()> fn);
  void PoolThread();
  void Housekeeping();

  const RouterConfig& config_;
  NodeTable& nodes_;
  Ledger* ledger_;
  RateLimiter rate_limiter_;
  LiveRequests live_;
  // Core request ids: one per flight, never a hash of the client's id, so a request that reuses
  // an id (its own retry, or another client's id, refused once the ledger answers) never takes
  // another's place at the front door.
  std::atomic<std::uint64_t> next_core_id_{1};

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::uint64_t, std::weak_ptr<Flight>> queued_;  // by core request id
  std::set<Upstream*> upstreams_;                          // running worker calls
  int running_ = 0;                                        // pool threads and Attempts
  int idle_ = 0;                                           // of which waiting for a task
  std::deque<std::function<void()>> tasks_;
  std::condition_variable task_ready_;
  bool stopping_ = false;
  std::thread housekeeping_;
};

}  // namespace tidelane::server
