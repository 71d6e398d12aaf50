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
// Errors: Open returns an error for an unusable directory or database (corrupt, wrong schema,
// not a database). Writes return false with LastError() when the disk is full or the database
// fails; the router then refuses new requests with a clear error and keeps serving others.
//
// Threading: every method is thread-safe (one connection behind a mutex).
#pragma once

#include <atomic>
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
  };

  // Opens (creating when absent) DIR/ledger.sqlite3. On failure returns nullptr and sets
  // *error to a message naming the file and the cause.
  // `max_bytes` (0 = no limit) bounds the database file; past it writes fail as on a full disk.
  static std::unique_ptr<Ledger> Open(const std::filesystem::path& dir, std::string* error,
                                      std::uint64_t max_bytes = 0);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  bool Accept(const std::string& id, const v1::ChatRequest& request);
  // Accept without blocking: the request is written in the writer thread's next group commit
  // (at once, not after the usual few milliseconds) and `done(true)` runs after that commit,
  // `done(false)` if it failed — on the writer thread, so `done` must not block.
  void AcceptAsync(const std::string& id, const v1::ChatRequest& request,
                   std::function<void(bool)> done);
  bool Route(const std::string& id, const std::string& node);
  bool AppendToken(const std::string& id, std::uint32_t index, const std::string& text);
  bool Finish(const std::string& id, State state, const std::string& finish_reason,
              const std::string& error);

  // The request and everything recorded for it, or nothing when the id is unknown.
  std::optional<Entry> Load(const std::string& id);
  // Ids of requests that were accepted or running when the router stopped.
  std::vector<std::string> Unfinished();

  // Keeps request `id`'s countersigned receipt; committed before it returns, so the receipt
  // can be fetched (GET /v1/receipts/{id}) as soon as the Done event that carries it is out.
  bool StoreReceipt(const std::string& id, const v1::Receipt& receipt);
  enum class Lookup { kFound, kNotFound, kError };
  // kError (see LastError) only when the database fails, never for an unknown id.
  Lookup LoadReceipt(const std::string& id, v1::Receipt* receipt);

  std::string LastError() const;
  // 2 added the receipts table; version 1 ledgers are upgraded in place on open.
  static constexpr int kSchemaVersion = 2;
  static constexpr int kGroupCommitMs = 5;

 private:
  struct Op {
    enum class Kind { kRoute, kToken, kFinish, kAccept } kind;
    std::string id;
    std::string text;                // node, token text, finish reason or (kAccept) the request
    std::string error;               // for kFinish
    std::int64_t number = 0;         // token index or state
    std::string conversation;        // for kAccept
    std::function<void(bool)> done;  // for kAccept: told after the commit
  };
  explicit Ledger(sqlite3* db);
  bool Exec(const char* sql);
  bool Fail(const char* what);
  bool Enqueue(Op op);
  void WriterLoop();
  // Commits queued operations in one transaction; needs mu_.
  bool Apply(std::vector<Op>& ops);
  // Apply under mu_, then tells accepts their outcome without the lock.
  void Commit(std::vector<Op>& ops);
  void Flush();

  mutable std::mutex mu_;  // the connection
  sqlite3* db_;
  std::string error_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Op> queue_;
  bool stopping_ = false;
  std::atomic<bool> writes_failing_{false};
  std::thread writer_;
};

const char* LedgerStateName(Ledger::State state);

}  // namespace tidelane::server
