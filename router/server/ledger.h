// Ledger: the router's durable memory of every request (SQLite in WAL mode under --data-dir),
// so that nothing in flight lives only in memory: a request is written when it is accepted,
// each token as it is produced (with its index), and its end. After a crash or restart, an
// unfinished request is found here and resumed at its next token index.
//
// Durability: Accept commits before it returns (a request is never in flight unrecorded).
// Route, AppendToken and Finish are group-committed by a writer thread every few
// milliseconds, so the token stream does not wait on the disk; a crash loses at most that
// window, which Resume regenerates at the next index. Load and Unfinished see every write
// made before them.
//
// Storage: each turn of a chat carries the whole conversation; the ledger keeps a
// conversation's messages once (schema 4, conversation_messages in ledger.cc's schema) and a
// request's row only what they do not hold, so a chat takes space in its length, not in its
// square. Load gives every request back exactly as it was accepted.
//
// Errors: Open returns an error for an unusable directory or database (corrupt, wrong schema,
// not a database). Writes return false with LastError() when the disk is full or the database
// fails; the router then refuses new requests with a clear error and keeps serving others.
//
// Ownership: each request row names the client credential that created it, as
// auth::CredentialDigest of its token (never the token), so Resume and the receipt endpoint
// can serve a request only to its owner and the router's own token. Rows written before schema
// 3 have no owner (nullopt): only the router's token may read them.
//
// Retention (LedgerRetention): finished requests are kept for Resume and their receipts, then
// deleted with their tokens and receipts once older than the retention; a ledger bounded by
// max_bytes makes room from its oldest answered requests before it fills, so it goes on
// accepting. A request that may be running is never deleted: an unfinished one goes only when a
// stopped router left it and no client resumed it within the retention. The writer thread
// prunes between its group commits in small batches, never while an accept waits; a commit
// that finds the ledger full anyway makes room inline before it refuses a request.
//
// Checkpoints: SQLite's own automatic checkpoint would run inside whichever commit crosses
// its threshold — an accept on a request's path — and fsync there. Instead the writer thread
// copies the WAL into the database between its group commits, on a connection of its own (a
// passive checkpoint never blocks a commit); only if that falls far behind, in a sustained
// surge, does a commit checkpoint inline, so the WAL stays bounded either way.
//
// Threading: every method is thread-safe (one connection behind a mutex; the checkpoint
// connection is the writer thread's alone).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tidelane/v1/chat.pb.h"

struct sqlite3;

namespace tidelane::server {

// When the WAL is checkpointed, in frames (pages) of the WAL.
struct LedgerWalLimits {
  // A commit that leaves this many frames asks the writer thread for a checkpoint (SQLite's
  // own default threshold).
  int background_frames = 1000;
  // A commit that leaves this many checkpoints inline: the bound on the WAL (64 MiB at the
  // default 4 KiB page) when the writer's checkpoints cannot keep up.
  int inline_frames = 16384;
};

// What the ledger keeps of finished requests, and of those a stopped router left unfinished.
struct LedgerRetention {
  // A request that ended (done, failed or cancelled) longer ago than this is deleted, with its
  // tokens and receipt; Resume and GET /v1/receipts/{id} then answer as for an unknown id. So
  // is one a stopped router left unfinished and no client resumed for as long. Zero keeps them
  // for ever.
  std::chrono::milliseconds finished_for{0};
  // A ledger bounded by max_bytes whose pages in use reach `room_at` of the bound deletes its
  // oldest answered requests (done or failed; a cancelled one can still be resumed and waits
  // for its age) until they are under `room_to`.
  double room_at = 0.9;
  double room_to = 0.75;
};

class Ledger {
 public:
  enum class State { kQueued, kRunning, kDone, kFailed, kCancelled };

  struct Entry {
    v1::ChatRequest request;
    State state = State::kQueued;
    std::string node;
    std::vector<std::string> tokens;  // tokens[i] has index i
    std::string finish_reason;
    std::string error;
    // auth::CredentialDigest of the token that created it; nullopt for rows from before
    // schema 3 (and requests accepted without one), which only the router's token may read.
    std::optional<std::string> owner;
  };

  enum class AcceptOutcome {
    kRecorded,
    // The id is already in the ledger under another owner: nothing was written. Ids are chosen
    // by clients, so one client must not overwrite (or take over) another's request by its id.
    kIdTaken,
    kFailed,  // the database failed (LastError)
  };

  using WalLimits = LedgerWalLimits;
  using Retention = LedgerRetention;
  // Opens (creating when absent) DIR/ledger.sqlite3. On failure returns nullptr and sets
  // *error to a message naming the file and the cause.
  // `max_bytes` (0 = no limit) bounds the disk the ledger takes: its write-ahead log gets an
  // eighth (at least 4 pages; `wal` is lowered to keep it there) and the database the rest;
  // past that writes fail as on a full disk (once nothing answered is left to make room with,
  // see Retention).
  static std::unique_ptr<Ledger> Open(const std::filesystem::path& dir, std::string* error,
                                      std::uint64_t max_bytes = 0, WalLimits wal = {},
                                      Retention retention = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Records request `id` owned by `owner` (a CredentialDigest; nullopt: no client, only the
  // router's token may read it). Accepting an id again is allowed only for the same owner
  // (it replaces the request); false with LastError() when the id is another owner's.
  bool Accept(const std::string& id, const v1::ChatRequest& request,
              const std::optional<std::string>& owner = std::nullopt);
  // Accept without blocking: the request is written in the writer thread's next group commit
  // (at once, not after the usual few milliseconds) and `done` runs after that commit with
  // its outcome — on the writer thread, so `done` must not block.
  void AcceptAsync(const std::string& id, const v1::ChatRequest& request,
                   const std::optional<std::string>& owner,
                   std::function<void(AcceptOutcome)> done);
  // The same without an owner; `done(true)` once recorded.
  void AcceptAsync(const std::string& id, const v1::ChatRequest& request,
                   std::function<void(bool)> done);
  bool Route(const std::string& id, const std::string& node);
  bool AppendToken(const std::string& id, std::uint32_t index, const std::string& text);
  bool Finish(const std::string& id, State state, const std::string& finish_reason,
              const std::string& error);

  // Marks unfinished request `id` as taken up again now (a Resume continues it), so that the
  // retention, which lets go of requests a stopped router left, does not take it while it
  // runs; finished requests are left as they are. False only when the database fails.
  bool Touch(const std::string& id);
  // The request and everything recorded for it, or nothing when the id is unknown.
  std::optional<Entry> Load(const std::string& id);
  // Request `id`'s owner (nullopt in *owner: none recorded). kNotFound for an unknown id;
  // kError (see LastError) only when the database fails.
  enum class Lookup { kFound, kNotFound, kError };
  Lookup LoadOwner(const std::string& id, std::optional<std::string>* owner);
  // Ids of requests that were accepted or running when the router stopped.
  std::vector<std::string> Unfinished();

  // Keeps request `id`'s countersigned receipt: written in the writer's next group commit, like
  // a token, so the Done event that carries it does not wait on the disk. LoadReceipt sees it
  // at once (it commits what is queued first), so GET /v1/receipts/{id} finds it as soon as the
  // Done event is out. A crash inside the group-commit window loses the router's copy; the
  // client's stays in the Done event. False when writes are failing (LastError).
  bool StoreReceipt(const std::string& id, const v1::Receipt& receipt);
  // kError (see LastError) only when the database fails, never for an unknown id.
  Lookup LoadReceipt(const std::string& id, v1::Receipt* receipt);

  // Deletes up to `max_requests` requests that ended (done, failed or cancelled) before
  // `ended_before_ms` (Unix ms), oldest first, with their tokens and receipts; how many it
  // deleted (0 also when the database fails: LastError). The writer thread calls it for the
  // retention; callable from any thread.
  std::size_t PruneFinished(std::int64_t ended_before_ms, std::size_t max_requests);
  // Requests deleted since Open: past their retention, and to make room in a bounded ledger.
  struct PruneCounts {
    std::uint64_t expired = 0;
    std::uint64_t for_room = 0;
  };
  PruneCounts Pruned() const;

  // The ledger's files as they are on disk now (0 for one that is absent): the database, which
  // max_bytes bounds, and its write-ahead log. For /metrics; thread-safe, reads no row.
  struct FileSizes {
    std::uint64_t database = 0;
    std::uint64_t wal = 0;
  };
  FileSizes Sizes() const;

  std::string LastError() const;
  // Completed checkpoints since Open: by the writer thread between commits, and inline in a
  // commit (the WAL had grown past WalLimits::inline_frames). For /metrics and tests.
  struct CheckpointCounts {
    std::uint64_t background = 0;
    std::uint64_t in_commit = 0;
  };
  CheckpointCounts Checkpoints() const;
  // 2 added the receipts table, 3 the requests' owner column, 4 keeps a conversation's
  // messages once (not again with each turn); older ledgers are upgraded in place on open
  // (their rows keep no owner, so only the router's token may resume them, and keep their
  // messages whole).
  static constexpr int kSchemaVersion = 4;
  static constexpr int kGroupCommitMs = 5;

 private:
  struct Op {
    enum class Kind { kRoute, kToken, kFinish, kAccept, kReceipt } kind;
    std::string id;
    // node, token text, finish reason, (kAccept) the request or (kReceipt) the receipt
    std::string text;
    std::string error;         // for kFinish
    std::int64_t number = 0;   // token index or state
    std::string conversation;  // for kAccept
    // For kAccept in a conversation: its messages serialized, in order, and the chain digest
    // at each (conversation_messages); `text` is then the request without them. Empty for a
    // request kept whole in `text` (no conversation, or its first message only).
    std::vector<std::string> messages;
    std::vector<std::string> chains;
    bool IsAccept() const { return kind == Kind::kAccept; }
    // Still to be written: neither committed nor refused.
    bool Unwritten() const { return !applied && !refused; }
    // What it would add to the ledger at most (room is made only for what can fit).
    std::size_t Bytes() const {
      std::size_t n = text.size();
      for (const auto& m : messages) n += m.size();
      return n;
    }
    std::optional<std::string> owner;         // for kAccept
    std::function<void(AcceptOutcome)> done;  // for kAccept: told after the commit
    bool taken = false;                       // for kAccept: set by Apply
    bool refused = false;                     // for kAccept: did not fit (Apply)
    bool applied = false;                     // committed by an earlier Apply of its group
    bool held = false;                        // left for a later Apply (ApplyMakingRoom)
  };
  Ledger(sqlite3* db, WalLimits wal, Retention retention);
  // Opens the checkpoint connection to `path` and hooks it to commits; false (LastError)
  // when the connection cannot be opened.
  bool StartCheckpointer(const std::filesystem::path& path);
  // sqlite3_wal_hook: runs in every commit, on the committing thread, under mu_.
  static int OnCommit(void* self, sqlite3* db, const char* schema, int frames);
  // Passive checkpoints on checkpoint_db_ until the WAL is copied; writer thread only.
  void Checkpoint();
  int QueuedAccepts();
  bool Exec(const char* sql);
  bool Fail(const char* what);
  // Adds requests.owner to a ledger from before schema 3; needs an open transaction.
  bool AddOwnerColumn();
  // The accept of `request` as `id`, its messages serialized and chained (on the caller's
  // thread); WriteAccept writes it in Apply's open transaction and savepoint: SQLITE_DONE, or
  // the code that failed it (LastError set).
  static Op AcceptOp(const std::string& id, const v1::ChatRequest& request,
                     const std::optional<std::string>& owner);
  int WriteAccept(Op& op, std::int64_t now);
  // Adds requests.prefix_len (schema 4) to an older ledger; needs an open transaction.
  bool AddPrefixColumn();
  // How an accept ended, once its group's Apply calls are over.
  static AcceptOutcome Outcome(const Op& op);
  bool Enqueue(Op op);
  void WriterLoop();
  // Commits queued operations in one transaction; needs mu_.
  bool Apply(std::vector<Op>& ops);
  // Apply, and when the ledger was full, makes room (answered requests, oldest first) and
  // applies what did not fit once more; needs mu_.
  // `nearly_full`: NearlyFullLocked() as the caller just found it, when it did.
  bool ApplyMakingRoom(std::vector<Op>& ops, std::optional<bool> nearly_full = std::nullopt);
  // Apply; when the ledger was full, one batch of room and what did not fit once more (twice
  // at most); needs mu_.
  bool ApplyRetrying(std::vector<Op>& ops);
  // A bounded ledger whose pages in use reached room_at; needs mu_.
  bool NearlyFullLocked();
  // Retention, on the writer thread between commits: one batch of deletions when some are due;
  // true when more are (the writer comes back without sleeping).
  bool PruneDue();
  // Deletes up to `max` requests in states kDone..`last_state` that ended before `before_ms`,
  // oldest first, in one transaction; needs mu_, outside a transaction.
  std::size_t PruneLocked(State last_state, std::int64_t before_ms, std::size_t max);
  // Deletes up to `max` unfinished (queued, running) requests last touched before `before_ms`,
  // oldest first; needs mu_, outside a transaction.
  std::size_t PruneInterruptedLocked(std::int64_t before_ms, std::size_t max);
  // Deletes requests `ids`, with their tokens and receipts, in one transaction; each request
  // row by `delete_request` (its id bound first, with a guard on its state); needs mu_.
  std::size_t DeleteLocked(const std::vector<std::string>& ids, const char* delete_request);
  // Answered requests (done, failed), oldest first, deleted for room: as many as it takes to
  // bring the pages in use down to room_to by an estimate of what each frees (at least one,
  // at most `batch`); needs mu_. A fixed batch would be the whole of a small ledger.
  std::size_t MakeRoomLocked(std::size_t batch);
  // Pages holding data (the file's pages less its free list); needs mu_.
  std::int64_t UsedPagesLocked();
  // Whether deleting answered requests could let a write of `bytes` fit: a bounded ledger, and
  // a write small beside the bound (a prompt as large as the ledger must not empty it).
  bool RoomCanHelp(std::size_t bytes) const;
  // Apply under mu_, then tells accepts their outcome without the lock.
  void Commit(std::vector<Op>& ops);
  void Flush();

  struct Prepared;
  mutable std::mutex mu_;  // the connection
  sqlite3* db_;
  std::unique_ptr<Prepared> prepared_;  // under mu_
  std::string error_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Op> queue_;
  bool stopping_ = false;
  std::atomic<bool> writes_failing_{false};
  std::thread writer_;

  // Retention. Set by Open before `opened_`: the bound from max_bytes in bytes and pages (0:
  // none), and when Open ran (Unix ms), which tells requests a stopped router left from those
  // running here.
  Retention retention_;
  std::filesystem::path path_;  // the database file, set by Open
  std::uint64_t max_bytes_ = 0;
  std::int64_t max_pages_ = 0;
  std::uint64_t page_size_ = 4096;
  std::int64_t opened_ms_ = 0;
  std::int64_t next_expiry_ms_ = 0;  // writer thread only: when the next pass is due (Unix ms)
  // Under mu_: NearlyFullLocked's last count of pages in use (-1: none yet), and how many asks
  // it has answered since.
  std::int64_t used_pages_ = -1;
  int asks_since_count_ = 0;
  std::atomic<bool> opened_{false};  // Open is done: the writer may prune (it shares the
                                     // connection Open sets up)
  bool making_room_ = false;         // writer thread only: from room_at down to room_to
  bool prune_asked_ = false;         // under queue_mu_: a pass is wanted (start-up, work left over)
  bool full_ = false;                // under mu_: the last failure was SQLITE_FULL
  // Under queue_mu_: the writer is committing what it took from the queue (Flush waits for
  // it on committed_cv_).
  bool writer_committing_ = false;
  std::condition_variable committed_cv_;
  // Under queue_mu_: the groups taken from the queue (by the writer, by Flush) and not yet
  // committed, so that an accept committed on its caller's thread never overtakes what is
  // still to be written of an earlier request under its id (the owner retrying it). Their
  // ops' applied and refused flags change only under mu_.
  std::vector<const std::vector<Op>*> groups_in_flight_;
  std::atomic<std::uint64_t> pruned_expired_{0};
  std::atomic<std::uint64_t> pruned_for_room_{0};

  int queued_accepts_ = 0;  // under queue_mu_
  // queued_accepts_ > 0, readable without queue_mu_: a group of tokens and ends that the
  // writer is committing stops at its next statement and commits what it has, so the request
  // waiting to be recorded waits for one statement, not the whole group (Commit).
  std::atomic<bool> accept_queued_{false};
  bool yield_to_accepts_ = false;  // under mu_: Apply may stop early for accept_queued_
  // The accepts waiting in the queue, taken out of it (tokens and ends stay), in order; not one
  // whose id has something of an earlier request still to write, in `group` or in the queue
  // (an owner's retry of it: that is written first, then the retry replaces it).
  std::vector<Op> TakeQueuedAccepts(const std::vector<Op>& group);

  // Under queue_mu_: the writer sleeps until there is work (wake it when this is set), and a
  // commit asked for a checkpoint (OnCommit) since it last looked.
  bool writer_idle_ = false;
  bool checkpoint_asked_ = false;
  // Wakes the writer if it sleeps idle (Enqueue of the first op, OnCommit's checkpoint).
  void WakeIdleWriter(bool checkpoint);

  WalLimits wal_;
  sqlite3* checkpoint_db_ = nullptr;  // used by the writer thread only
  std::atomic<bool> checkpoint_wanted_{false};
  std::atomic<std::uint64_t> background_checkpoints_{0};
  std::atomic<std::uint64_t> inline_checkpoints_{0};
};

const char* LedgerStateName(Ledger::State state);

}  // namespace tidelane::server
