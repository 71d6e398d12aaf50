#include "router/server/ledger.h"

#include <sodium.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iterator>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "router/server/ledger_internal.h"
#include "router/server/sqlite_stmt.h"
#include "router/server/thread_name.h"

namespace tidelane::server {
namespace {

using ledger_internal::NowMs;

// Queued writes past which an accept committing on its own thread takes them along.
constexpr std::size_t kWriterBehindOps = 512;

// Accepting an id that exists replaces its request only for the same owner (IS: NULL matches
// NULL); for another owner nothing changes and sqlite3_changes() says 0.
constexpr const char* kAcceptSql =
    "INSERT INTO requests(id, conversation, request, state, created_ms, updated_ms, owner, "
    "prefix_len) VALUES(?,?,?,?,?,?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET conversation=excluded.conversation, "
    "request=excluded.request, state=excluded.state, updated_ms=excluded.updated_ms, "
    "prefix_len=excluded.prefix_len WHERE requests.owner IS excluded.owner";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS requests(
  id TEXT PRIMARY KEY,
  conversation TEXT NOT NULL,
  request BLOB NOT NULL,            -- the tidelane.v1.ChatRequest as sent
  state INTEGER NOT NULL,           -- Ledger::State
  node TEXT NOT NULL DEFAULT '',
  finish_reason TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  -- Version 3: auth::CredentialDigest of the client token that created the request (never the
  -- token); NULL in rows from older ledgers, which only the router's token may resume.
  owner BLOB);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests(state);
-- Retention: finished requests (state >= kDone) by when they ended, oldest first. Added without
-- a schema version: older routers read and maintain it as it is.
CREATE INDEX IF NOT EXISTS requests_finished_by_age ON requests(updated_ms) WHERE state >= 2;
-- Version 4: a conversation's messages are kept once, not again with every turn (each turn's
-- request carries the whole history, so storing requests whole grew with the square of a
-- chat's length). Position `seq` of conversation `conversation` holds one message and `chain`,
-- the BLAKE2b-128 digest of the chain before it and this message, so one comparison tells
-- that a request's first seq+1 messages are those stored. A request's row then holds its
-- ChatRequest with only the messages after its first `prefix_len`, which are read from here
-- (requests.prefix_len, NULL in rows from older ledgers, which keep their messages whole). The
-- positions of a conversation go when its last request does.
-- A rowid table with a unique index rather than WITHOUT ROWID: messages are large rows,
-- which pack densely in insertion order (keyed by conversation, interleaved chats left the
-- pages half empty: 35 MB for 14 MB sent).
CREATE TABLE IF NOT EXISTS conversation_messages(
  conversation TEXT NOT NULL,
  seq INTEGER NOT NULL,
  chain BLOB NOT NULL,
  message BLOB NOT NULL,
  UNIQUE(conversation, seq));
CREATE TABLE IF NOT EXISTS tokens(
  request_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY(request_id, idx)) WITHOUT ROWID;
-- Version 2: the countersigned receipt of each request that finished with one. Readable as it
-- stands: payload is the canonical JSON that was signed.
CREATE TABLE IF NOT EXISTS receipts(
  request_id TEXT PRIMARY KEY,
  payload TEXT NOT NULL,
  worker_signature BLOB NOT NULL,
  worker_public_key TEXT NOT NULL,
  router_signature BLOB NOT NULL,
  router_public_key TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
)sql";

}  // namespace

// The writes every commit makes, prepared once: preparing them per commit cost more than the
// commit itself on the accept path.
struct Ledger::Prepared {
  explicit Prepared(sqlite3* db)
      : begin(db, "BEGIN", true),
        commit(db, "COMMIT", true),
        rollback(db, "ROLLBACK", true),
        savepoint(db, "SAVEPOINT accept", true),
        rollback_to(db, "ROLLBACK TO accept", true),
        release(db, "RELEASE accept", true),
        route(db, "UPDATE requests SET state=?, node=?, updated_ms=? WHERE id=?", true),
        // OR IGNORE: a token index is written once; a replay after a redirect cannot
        // duplicate it.
        token(db, "INSERT OR IGNORE INTO tokens(request_id, idx, text) VALUES(?,?,?)", true),
        finish(db, "UPDATE requests SET state=?, finish_reason=?, error=?, updated_ms=? WHERE id=?",
               true),
        accept(db, kAcceptSql, true),
        top(db,
            "SELECT seq, chain FROM conversation_messages WHERE conversation=? "
            "ORDER BY seq DESC LIMIT 1",
            true),
        chain_at(db, "SELECT chain FROM conversation_messages WHERE conversation=? AND seq=?",
                 true),
        append(db,
               "INSERT INTO conversation_messages(conversation, seq, chain, message) "
               "VALUES(?,?,?,?)",
               true),
        receipt(db,
                "INSERT OR REPLACE INTO receipts(request_id, payload, worker_signature, "
                "worker_public_key, router_signature, router_public_key, created_ms) "
                "VALUES(?,?,?,?,?,?,?)",
                true),
        forget_tokens(db, "DELETE FROM tokens WHERE request_id=?", true),
        forget_receipt(db, "DELETE FROM receipts WHERE request_id=?", true),
        // Pages holding data, what a bounded ledger compares with its bound on every commit:
        // the file's pages less its free list. The pragmas themselves, prepared: their
        // table-valued forms (pragma_page_count()) prepare the pragma again at each step.
        page_count(db, "PRAGMA page_count", true),
        freelist_count(db, "PRAGMA freelist_count", true) {}
  bool ok() const {
    return begin.ok() && commit.ok() && rollback.ok() && savepoint.ok() && rollback_to.ok() &&
           release.ok() && route.ok() && token.ok() && finish.ok() && accept.ok() && receipt.ok() &&
           top.ok() && chain_at.ok() && append.ok() && forget_tokens.ok() && forget_receipt.ok() &&
           page_count.ok() && freelist_count.ok();
  }
  Stmt begin, commit, rollback, savepoint, rollback_to, release, route, token, finish, accept, top,
      chain_at, append, receipt, forget_tokens, forget_receipt, page_count, freelist_count;
};

const char* LedgerStateName(Ledger::State s) {
  switch (s) {
    case Ledger::State::kQueued:
      return "queued";
    case Ledger::State::kRunning:
      return "running";
    case Ledger::State::kDone:
      return "done";
    case Ledger::State::kFailed:
      return "failed";
    case Ledger::State::kCancelled:
      return "cancelled";
  }
  return "?";
}

std::unique_ptr<Ledger> Ledger::Open(const std::filesystem::path& dir, std::string* error,
                                     std::uint64_t max_bytes, WalLimits wal, Retention retention) {
  const auto path = dir / "ledger.sqlite3";
  // BLAKE2b chains a conversation's messages (AcceptOp); sodium_init picks its fast code.
  if (sodium_init() < 0) {
    *error = "cannot open ledger " + path.string() + ": libsodium failed to initialise";
    return nullptr;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    *error =
        "cannot open ledger " + path.string() + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  std::unique_ptr<Ledger> ledger(new Ledger(db, wal, retention));
  ledger->path_ = path;
  sqlite3_busy_timeout(db, 5000);
  // WAL: readers never block the writer, and a crash loses nothing committed.
  int version = -1;
  {
    Stmt v(db, "PRAGMA user_version");
    if (v.ok() && v.Step() == SQLITE_ROW) version = static_cast<int>(v.ColumnInt(0));
  }
  if (version < 0) {
    *error =
        "ledger " + path.string() + " is not a readable SQLite database: " + sqlite3_errmsg(db);
    return nullptr;
  }
  if (version > kSchemaVersion) {
    *error = "ledger " + path.string() + " has schema version " + std::to_string(version) +
             ", newer than this router understands (" + std::to_string(kSchemaVersion) + ")";
    return nullptr;
  }
  if (!ledger->Exec("PRAGMA journal_mode=WAL") || !ledger->Exec("PRAGMA synchronous=NORMAL") ||
      !ledger->Exec("BEGIN") || !ledger->Exec(kSchema) || !ledger->AddOwnerColumn() ||
      !ledger->AddPrefixColumn() ||
      !ledger->Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()) ||
      !ledger->Exec("COMMIT")) {
    *error = "ledger " + path.string() + ": " + ledger->LastError();
    return nullptr;
  }
  ledger->prepared_ = std::make_unique<Prepared>(db);
  if (!ledger->prepared_->ok()) {
    *error = "ledger " + path.string() + ": cannot prepare its statements: " + sqlite3_errmsg(db);
    return nullptr;
  }
  ledger->page_size_ = [db]() -> std::uint64_t {
    Stmt page(db, "PRAGMA page_size");  // finalized here: it holds no read open
    return page.ok() && page.Step() == SQLITE_ROW ? page.ColumnInt(0) : 4096;
  }();
  const std::uint64_t page_size = ledger->page_size_;
  if (max_bytes > 0) {
    // The bound is the disk the ledger may take: its write-ahead log gets an eighth (at least
    // 4 pages), checkpointed in time to stay there, and the database the rest.
    const std::uint64_t wal_pages = std::max<std::uint64_t>(4, max_bytes / 8 / page_size);
    ledger->wal_.inline_frames =
        static_cast<int>(std::min<std::uint64_t>(ledger->wal_.inline_frames, wal_pages));
    ledger->wal_.background_frames =
        std::min(ledger->wal_.background_frames, std::max(4, ledger->wal_.inline_frames / 4));
    const std::uint64_t db_bytes =
        max_bytes > 2 * wal_pages * page_size ? max_bytes - wal_pages * page_size : max_bytes / 2;
    ledger->max_bytes_ = db_bytes;
    ledger->max_pages_ =
        static_cast<std::int64_t>(std::max<std::uint64_t>(1, db_bytes / page_size));
    ledger->Exec(("PRAGMA max_page_count=" + std::to_string(ledger->max_pages_)).c_str());
  }
  // The integrity check is cheap at start-up sizes and catches a corrupt file before use.
  Stmt check(db, "PRAGMA quick_check");
  if (!check.ok() || check.Step() != SQLITE_ROW || check.ColumnText(0) != "ok") {
    *error = "ledger " + path.string() +
             " is corrupt (quick_check failed); move it aside to start afresh";
    return nullptr;
  }
  // After a surge the WAL file would stay at its largest; past this it is cut back when
  // SQLite next starts it over.
  ledger->Exec(
      ("PRAGMA journal_size_limit=" +
       std::to_string(2 * static_cast<std::uint64_t>(ledger->wal_.background_frames) * page_size))
          .c_str());
  if (!ledger->StartCheckpointer(path)) {
    *error = "ledger " + path.string() + ": " + ledger->LastError();
    return nullptr;
  }
  // Set up: the writer may prune now, and takes a first pass (a ledger reopened full, or
  // holding requests past their retention).
  ledger->opened_ms_ = NowMs();
  ledger->opened_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(ledger->queue_mu_);
    ledger->prune_asked_ = true;
  }
  ledger->queue_cv_.notify_one();
  return ledger;
}

// Schema 1 and 2 ledgers have a requests table without `owner` (CREATE TABLE IF NOT EXISTS
// left it as it was): add it, NULL in every existing row. Asked of the table itself rather
// than inferred from user_version, so a half-upgraded file cannot fool it.
bool Ledger::AddOwnerColumn() {
  Stmt has(db_, "SELECT count(*) FROM pragma_table_info('requests') WHERE name='owner'");
  if (!has.ok() || has.Step() != SQLITE_ROW) return Fail("read the requests table's columns");
  if (has.ColumnInt(0) > 0) return true;
  return Exec("ALTER TABLE requests ADD COLUMN owner BLOB");
}

// Schema 1 to 3 ledgers: requests.prefix_len, NULL in every existing row (whole requests), and
// the index that finds a conversation's requests when its messages may go.
bool Ledger::AddPrefixColumn() {
  Stmt has(db_, "SELECT count(*) FROM pragma_table_info('requests') WHERE name='prefix_len'");
  if (!has.ok() || has.Step() != SQLITE_ROW) return Fail("read the requests table's columns");
  if (has.ColumnInt(0) == 0 && !Exec("ALTER TABLE requests ADD COLUMN prefix_len INTEGER")) {
    return false;
  }
  return Exec("CREATE INDEX IF NOT EXISTS requests_by_conversation ON requests(conversation)");
}

Ledger::Ledger(sqlite3* db, WalLimits wal, Retention retention)
    : db_(db), retention_(retention), wal_(wal) {
  writer_ = std::thread([this] {
    NameThisThread("tl-ledger");
    WriterLoop();
  });
}

Ledger::~Ledger() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  writer_.join();
  Flush();
  // The checkpointer's connection first: closing the last connection checkpoints the whole
  // WAL and removes it.
  sqlite3_close(checkpoint_db_);
  sqlite3_wal_hook(db_, nullptr, nullptr);
  prepared_.reset();  // finalized before the close, which refuses while statements live
  sqlite3_close(db_);
}

bool Ledger::StartCheckpointer(const std::filesystem::path& path) {
  if (sqlite3_open_v2(path.c_str(), &checkpoint_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::lock_guard lock(mu_);
    error_ = std::string("cannot open the checkpointer's connection: ") +
             (checkpoint_db_ ? sqlite3_errmsg(checkpoint_db_) : "out of memory");
    return false;
  }
  // A connection that has read nothing has not opened the WAL yet, and its checkpoints do
  // nothing at all (they report -1 frames): read once so that it has.
  if (sqlite3_exec(checkpoint_db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    std::lock_guard lock(mu_);
    error_ = std::string("the checkpointer's connection cannot read the ledger: ") +
             sqlite3_errmsg(checkpoint_db_);
    return false;
  }
  // Replaces SQLite's automatic checkpoint (itself a WAL hook) on the request connection.
  sqlite3_wal_hook(db_, &Ledger::OnCommit, this);
  return true;
}

int Ledger::OnCommit(void* self, sqlite3* db, const char* schema, int frames) {
  auto* ledger = static_cast<Ledger*>(self);
  if (frames >= ledger->wal_.inline_frames) {
    // The checkpointer is far behind (or a reader pins the WAL): bound it here, as SQLite's
    // own automatic checkpoint would. BUSY means the checkpointer is at it right now.
    int log = 0, copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) ==
            SQLITE_OK &&
        copied >= log) {
      ledger->inline_checkpoints_.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (frames >= ledger->wal_.background_frames) {
    // The writer thread checkpoints after its next group commit, woken for it if idle.
    ledger->checkpoint_wanted_.store(true, std::memory_order_relaxed);
    ledger->WakeIdleWriter(/*checkpoint=*/true);
  }
  return SQLITE_OK;
}

void Ledger::Checkpoint() {
  // SQLite starts the WAL over (instead of growing it) only at a commit that finds every frame
  // already copied into the database. The writer thread, which makes most commits, runs this
  // between its group commits, so they never land mid-pass; an accept committed on its own
  // thread meanwhile leaves a few frames, which the next pass copies quickly.
  int last_copied = -1;
  for (int pass = 0; pass < 16; ++pass) {
    int log = 0, copied = 0;
    if (sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                  &copied) != SQLITE_OK) {
      return;  // BUSY: an inline checkpoint holds the checkpoint lock
    }
    if (copied >= log) {
      background_checkpoints_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (QueuedAccepts() > 0) {
      // Someone waits on the writer: let it commit, and go on after.
      checkpoint_wanted_.store(true, std::memory_order_relaxed);
      return;
    }
    if (copied == last_copied) {
      // A reader holds frames back: try again after the next commit.
      checkpoint_wanted_.store(true, std::memory_order_relaxed);
      return;
    }
    last_copied = copied;
  }
  checkpoint_wanted_.store(true, std::memory_order_relaxed);
}

int Ledger::QueuedAccepts() {
  std::lock_guard lock(queue_mu_);
  return queued_accepts_;
}

Ledger::CheckpointCounts Ledger::Checkpoints() const {
  return {background_checkpoints_.load(std::memory_order_relaxed),
          inline_checkpoints_.load(std::memory_order_relaxed)};
}

bool Ledger::Enqueue(Op op) {
  bool wake;
  {
    std::lock_guard lock(queue_mu_);
    wake = writer_idle_ && queue_.empty();
    queue_.push_back(std::move(op));
  }
  if (wake) queue_cv_.notify_one();
  return !writes_failing_.load();
}

void Ledger::WakeIdleWriter(bool checkpoint) {
  bool wake;
  {
    std::lock_guard lock(queue_mu_);
    checkpoint_asked_ = checkpoint_asked_ || checkpoint;
    wake = writer_idle_;
  }
  if (wake) queue_cv_.notify_one();
}

void Ledger::WriterLoop() {
  std::unique_lock lock(queue_mu_);
  while (!stopping_) {
    // With nothing queued the writer sleeps until something is (or a commit asks for a
    // checkpoint): an idle router, the desktop app's bundled one included, does not wake 200
    // times a second. A checkpoint that could not finish (a reader holds frames) is tried
    // again after the next commit, as before, not in a loop.
    writer_idle_ = true;
    const auto work = [this] {
      return stopping_ || !queue_.empty() || checkpoint_asked_ || prune_asked_;
    };
    if (retention_.finished_for.count() > 0 && next_expiry_ms_ > 0) {
      // With a retention the idle writer also wakes for the next pass (a minute apart at
      // most), so an idle router still lets old requests go.
      const auto wait =
          std::chrono::milliseconds(std::max<std::int64_t>(1, next_expiry_ms_ - NowMs()));
      if (!queue_cv_.wait_for(lock, wait, work)) prune_asked_ = true;
    } else {
      queue_cv_.wait(lock, work);
    }
    writer_idle_ = false;
    checkpoint_asked_ = false;
    prune_asked_ = false;
    // Tokens wait out the group window; an accept (its caller is waiting) ends it at once.
    if (!queue_.empty()) {
      queue_cv_.wait_for(lock, std::chrono::milliseconds(kGroupCommitMs),
                         [this] { return stopping_ || queued_accepts_ > 0; });
    }
    std::vector<Op> ops;
    ops.swap(queue_);
    queued_accepts_ = 0;
    accept_queued_ = false;
    writer_committing_ = !ops.empty();
    if (!ops.empty()) groups_in_flight_.push_back(&ops);
    lock.unlock();
    if (!ops.empty()) {
      Commit(ops);
      lock.lock();
      writer_committing_ = false;
      std::erase(groups_in_flight_, &ops);
      lock.unlock();
      committed_cv_.notify_all();
    }
    // A checkpoint's fsync takes milliseconds: never while an accept waits in the queue (one
    // that arrives meanwhile finds the connection free and commits on its own thread).
    lock.lock();
    const bool accepts_waiting = queued_accepts_ > 0;
    lock.unlock();
    if (!accepts_waiting && checkpoint_wanted_.exchange(false, std::memory_order_relaxed)) {
      Checkpoint();
    }
    const bool more = PruneDue();
    lock.lock();
    prune_asked_ = prune_asked_ || more;
  }
}

void Ledger::Flush() {
  std::vector<Op> ops;
  {
    std::lock_guard lock(queue_mu_);
    ops.swap(queue_);
    queued_accepts_ = 0;
    accept_queued_ = false;
    if (!ops.empty()) groups_in_flight_.push_back(&ops);
  }
  if (!ops.empty()) {
    Commit(ops);
    std::lock_guard lock(queue_mu_);
    std::erase(groups_in_flight_, &ops);
  }
  // What the writer took from the queue before this is being committed: wait for it, so that
  // a read after Flush sees every write made before it.
  std::unique_lock lock(queue_mu_);
  committed_cv_.wait(lock, [this] { return !writer_committing_; });
}

void Ledger::Commit(std::vector<Op>& ops) {
  const auto is_accept = std::mem_fn(&Op::IsAccept);
  const auto tell = [](std::vector<Op>& group) {
    for (auto& op : group) {
      if (op.IsAccept() && op.done) std::exchange(op.done, nullptr)(Outcome(op));
    }
  };
  // A group of tokens and ends is what the writer commits every few milliseconds while answers
  // stream (~60 statements, ~0.25 ms at one request in flight, serving.md). A new request
  // that arrives meanwhile cannot say anything to its client until it is recorded, so the
  // group gives way to it: it commits what it has written, the waiting accepts are committed,
  // and the rest of the group follows. Once: requests arriving back to back (a surge) would
  // otherwise cut the group into a commit per statement (ledger_bench: accept p50 30 -> 200
  // us). Nor does a group with accepts in it give way: it commits many requests at once,
  // which is what keeps up with a surge.
  bool gives_way = std::none_of(ops.begin(), ops.end(), is_accept);
  const auto left = [&] {
    return std::count_if(ops.begin(), ops.end(), std::mem_fn(&Op::Unwritten));
  };
  for (auto before = left();;) {
    bool ok;
    {
      std::lock_guard db(mu_);
      yield_to_accepts_ = gives_way;
      ok = ApplyMakingRoom(ops);
      yield_to_accepts_ = false;
      writes_failing_ = !ok;
    }
    tell(ops);
    const auto now_left = left();
    // Done, failed (the group is given up, as before), or (never expected) stuck.
    if (!ok || now_left == 0 || now_left == before) return;
    before = now_left;
    gives_way = false;
    std::vector<Op> accepts = TakeQueuedAccepts(ops);
    if (!accepts.empty()) {
      std::lock_guard db(mu_);
      writes_failing_ = !ApplyMakingRoom(accepts);
    }
    tell(accepts);
  }
}

std::vector<Ledger::Op> Ledger::TakeQueuedAccepts(const std::vector<Op>& group) {
  const auto is_accept = std::mem_fn(&Op::IsAccept);
  std::lock_guard lock(queue_mu_);
  std::unordered_set<std::string_view> unwritten;
  for (const auto& op : group) {
    if (op.Unwritten()) unwritten.insert(op.id);
  }
  for (const auto& op : queue_) {
    if (!is_accept(op)) unwritten.insert(op.id);
  }
  // Decided before anything moves: `unwritten` views the queue's ids.
  std::vector<bool> take(queue_.size());
  for (std::size_t k = 0; k < queue_.size(); ++k) {
    take[k] = is_accept(queue_[k]) && !unwritten.contains(queue_[k].id);
  }
  std::vector<Op> accepts;
  std::vector<Op> stay;
  for (std::size_t k = 0; k < queue_.size(); ++k) {
    (take[k] ? accepts : stay).push_back(std::move(queue_[k]));
  }
  queue_ = std::move(stay);
  queued_accepts_ = static_cast<int>(std::count_if(queue_.begin(), queue_.end(), is_accept));
  accept_queued_ = false;  // those left are the writer's next group, after what they follow
  return accepts;
}

Ledger::Op Ledger::AcceptOp(const std::string& id, const v1::ChatRequest& request,
                            const std::optional<std::string>& owner) {
  Op op{Op::Kind::kAccept, id, {}, {}, 0};
  op.conversation = request.conversation_id();
  op.owner = owner;
  // Nothing to share a history with (no conversation), or no history yet (a first message:
  // most requests of a surge, and every single-turn API call): kept whole, which costs least.
  // A conversation's positions are written from its second turn on.
  if (op.conversation.empty() || request.messages_size() < 2) {
    op.text = request.SerializeAsString();
    return op;
  }
  v1::ChatRequest bare = request;
  bare.clear_messages();
  op.text = bare.SerializeAsString();
  // Serialized and chained here, on the caller's thread, not under the connection's lock.
  op.messages.reserve(static_cast<std::size_t>(request.messages_size()));
  op.chains.reserve(op.messages.capacity());
  std::string chain(16, '\0');
  for (const auto& m : request.messages()) {
    std::string blob = m.SerializeAsString();
    crypto_generichash_state h;
    crypto_generichash_init(&h, nullptr, 0, chain.size());
    crypto_generichash_update(&h, reinterpret_cast<const unsigned char*>(chain.data()),
                              chain.size());
    crypto_generichash_update(&h, reinterpret_cast<const unsigned char*>(blob.data()), blob.size());
    crypto_generichash_final(&h, reinterpret_cast<unsigned char*>(chain.data()), chain.size());
    op.chains.push_back(chain);
    op.messages.push_back(std::move(blob));
  }
  return op;
}

int Ledger::WriteAccept(Op& op, std::int64_t now) {
  Prepared& p = *prepared_;
  int rc = SQLITE_DONE;
  const auto failed = [&](int code) {
    Fail("record request");
    return code;
  };
  std::optional<std::int64_t> prefix_len;  // NULL: the request is whole in `op.text`
  // What the row stores: op.text, or (a branch) the request with its own rest, in `rest_text`.
  const std::string* text = &op.text;
  std::string rest_text;
  if (!op.chains.empty()) {
    const auto k = static_cast<std::int64_t>(op.chains.size());
    // The conversation's stored positions, and how many of the request's first messages they
    // hold: all of them up to the last stored, or (an edited or regenerated turn) fewer, found
    // by halving, since a chain that matches at i matches at every position before it.
    std::int64_t top = -1;
    std::string top_chain;
    p.top.Text(1, op.conversation);
    rc = p.top.Step();
    if (rc == SQLITE_ROW) {
      top = p.top.ColumnInt(0);
      top_chain = p.top.ColumnBlob(1);
      rc = SQLITE_DONE;
    }
    p.top.Reset();
    if (rc != SQLITE_DONE) return failed(rc);
    const auto stored_chain = [&](std::int64_t seq, std::string* out) {
      if (seq == top) {
        *out = top_chain;
        return SQLITE_ROW;
      }
      p.chain_at.Text(1, op.conversation).Int(2, seq);
      const int r = p.chain_at.Step();
      if (r == SQLITE_ROW) *out = p.chain_at.ColumnBlob(0);
      p.chain_at.Reset();
      return r;
    };
    std::int64_t lo = 0, hi = std::min(top, k - 1) + 1;  // positions [0, lo) match; hi: bound
    std::string c;
    if (hi > 0) {
      const int r = stored_chain(hi - 1, &c);
      if (r != SQLITE_ROW) return failed(r);
      if (c == op.chains[static_cast<std::size_t>(hi - 1)]) {
        lo = hi;
      } else {
        hi -= 1;  // position hi - 1 differs
        while (lo < hi) {
          const std::int64_t mid = lo + (hi - lo) / 2;
          const int r2 = stored_chain(mid, &c);
          if (r2 != SQLITE_ROW) return failed(r2);
          if (c == op.chains[static_cast<std::size_t>(mid)]) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
      }
    }
    const std::int64_t match = lo;
    if (match == top + 1) {
      // Every stored position is this request's: the rest of its messages extend them.
      for (std::int64_t seq = match; seq < k; ++seq) {
        const auto i = static_cast<std::size_t>(seq);
        p.append.Text(1, op.conversation).Int(2, seq).Blob(3, op.chains[i]).Blob(4, op.messages[i]);
        rc = p.append.Step();
        p.append.Reset();
        if (rc != SQLITE_DONE) return failed(rc);
      }
      prefix_len = k;
    } else {
      // Another branch holds the positions after `match`: this request keeps its own rest.
      prefix_len = match;
      v1::ChatRequest rest;
      rest.ParseFromString(op.text);
      for (auto i = static_cast<std::size_t>(match); i < op.messages.size(); ++i) {
        rest.add_messages()->ParseFromString(op.messages[i]);
      }
      rest_text = rest.SerializeAsString();
      text = &rest_text;
    }
  }
  p.accept.Text(1, op.id).Text(2, op.conversation).Blob(3, *text);
  p.accept.Int(4, static_cast<int>(State::kQueued)).Int(5, now).Int(6, now);
  p.accept.Blob(7, op.owner);
  if (prefix_len) p.accept.Int(8, *prefix_len);
  rc = p.accept.Step();
  if (rc != SQLITE_DONE) {
    Fail("record request");
    p.accept.Reset();
    return rc;
  }
  op.taken = sqlite3_changes(db_) == 0;
  p.accept.Reset();
  if (op.taken) return rc;
  // The owner sent the id again (a retry): the request starts over, so what an earlier answer
  // under it left goes, or its tokens would stand in for the new answer's (a token index is
  // written once) and a Resume would mix the two. Its ops still queued were applied first
  // (AcceptAsync, Commit).
  for (Stmt* forget : {&p.forget_tokens, &p.forget_receipt}) {
    forget->Text(1, op.id);
    rc = forget->Step();
    forget->Reset();
    if (rc != SQLITE_DONE) return failed(rc);
  }
  return rc;
}

Ledger::AcceptOutcome Ledger::Outcome(const Op& op) {
  if (!op.applied || op.refused) return AcceptOutcome::kFailed;
  return op.taken ? AcceptOutcome::kIdTaken : AcceptOutcome::kRecorded;
}

void Ledger::AcceptAsync(const std::string& id, const v1::ChatRequest& request,
                         std::function<void(bool)> done) {
  AcceptAsync(id, request, std::nullopt,
              [done = std::move(done)](AcceptOutcome o) { done(o == AcceptOutcome::kRecorded); });
}

void Ledger::AcceptAsync(const std::string& id, const v1::ChatRequest& request,
                         const std::optional<std::string>& owner,
                         std::function<void(AcceptOutcome)> done) {
  Op op = AcceptOp(id, request, owner);
  op.done = std::move(done);
  // When no other accept is waiting, commit here and now: a thread hop to the writer costs
  // more than the commit at moderate load (queued tokens do not count: they are not waited
  // on). When accepts pile up (a surge), hand over to the writer, which commits many at once,
  // so no caller waits on another's commit.
  {
    std::unique_lock db(mu_, std::try_to_lock);
    if (db.owns_lock()) {
      std::unique_lock lock(queue_mu_);
      // A group taken from the queue still holding something of an earlier request under this
      // id (its owner retries it while its end is being written): the retry goes to the
      // writer, which writes it after that group (TakeQueuedAccepts keeps it back till then).
      const auto holds_earlier = [&](const std::vector<Op>& ops) {
        return std::any_of(ops.begin(), ops.end(),
                           [&](const Op& q) { return q.id == op.id && q.Unwritten(); });
      };
      if (queued_accepts_ == 0 &&
          std::none_of(groups_in_flight_.begin(), groups_in_flight_.end(),
                       [&](const auto* group) { return holds_earlier(*group); })) {
        std::vector<Op> ops;
        // The writer's queue comes along when the writer has fallen behind (accepts back to
        // back can keep it from the connection), and in a bounded ledger near its bound, where
        // the answers whose ends wait there are what makes room (ApplyMakingRoom).
        // And when something of an earlier request under this id is still queued (the owner
        // retries it): that is written first, then the retry replaces it.
        const bool nearly_full = NearlyFullLocked();
        if (queue_.size() >= kWriterBehindOps || nearly_full || holds_earlier(queue_)) {
          ops.swap(queue_);
        }
        lock.unlock();
        ops.push_back(std::move(op));
        const bool ok = ApplyMakingRoom(ops, nearly_full);
        writes_failing_ = !ok;
        db.unlock();
        ops.back().done(Outcome(ops.back()));
        return;
      }
    }
  }
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(std::move(op));
    ++queued_accepts_;
    accept_queued_ = true;
  }
  queue_cv_.notify_one();  // an accept waits for its commit: do not sit out the group window
}

bool Ledger::Apply(std::vector<Op>& ops) {
  Prepared& p = *prepared_;
  const auto run = [&](Stmt& s) {
    const int rc = s.Step();
    s.Reset();
    return rc == SQLITE_DONE;
  };
  full_ = false;
  if (!run(p.begin)) return Fail("begin");
  // Gives up on the whole group: nothing in it is committed.
  const auto abandon = [&](const char* what) {
    Fail(what);
    run(p.rollback);
    return false;
  };
  const auto now = NowMs();
  // The writer's group of tokens and ends stops here for a request waiting to be recorded
  // (Commit), after one statement at least, so that each Apply gets on.
  std::size_t end = 0;
  bool written = false;
  for (; end < ops.size(); ++end) {
    auto& op = ops[end];
    // Refused in an earlier pass over this group (below), committed by an earlier Apply of it,
    // or held back for a later one (ApplyMakingRoom).
    if (op.refused || op.applied || op.held) continue;
    if (written && yield_to_accepts_ && accept_queued_.load(std::memory_order_relaxed)) break;
    written = true;
    Stmt* s = nullptr;
    switch (op.kind) {
      case Op::Kind::kRoute:
        p.route.Int(1, static_cast<int>(State::kRunning)).Text(2, op.text).Int(3, now);
        p.route.Text(4, op.id);
        s = &p.route;
        break;
      case Op::Kind::kToken:
        p.token.Text(1, op.id).Int(2, op.number).Text(3, op.text);
        s = &p.token;
        break;
      case Op::Kind::kFinish:
        p.finish.Int(1, op.number).Text(2, op.text).Text(3, op.error).Int(4, now);
        p.finish.Text(5, op.id);
        s = &p.finish;
        break;
      case Op::Kind::kAccept:
        // Each accept in a savepoint of its own: one that does not fit (a large prompt on a
        // nearly full disk) is refused alone, and the tokens and other requests committed
        // with it are kept.
        if (!run(p.savepoint)) return abandon("savepoint");
        break;  // written below (WriteAccept)
      case Op::Kind::kReceipt: {
        v1::Receipt r;
        r.ParseFromString(op.text);  // serialized by StoreReceipt itself
        p.receipt.Text(1, op.id).Text(2, r.payload()).Blob(3, r.worker_signature());
        p.receipt.Text(4, r.worker_public_key()).Blob(5, r.router_signature());
        p.receipt.Text(6, r.router_public_key()).Int(7, now);
        s = &p.receipt;
        break;
      }
    }
    const bool accept = op.IsAccept();
    const int rc = accept ? WriteAccept(op, now) : s->Step();
    if (rc != SQLITE_DONE) {
      if (!accept) {
        Fail("record");
        s->Reset();
      }
      if (accept) {
        op.refused = true;  // this request alone; the rest of the group goes on
        // On SQLITE_FULL SQLite may roll back the whole transaction rather than the statement
        // (lang_transaction.html, "Response To Errors Within A Transaction"): then the group
        // is applied again without it. Each pass refuses one more request, so this ends.
        if (sqlite3_get_autocommit(db_)) return Apply(ops);
        if (run(p.rollback_to) && run(p.release)) continue;
      }
      run(p.rollback);
      return false;
    }
    if (!accept) s->Reset();
    // An id that is another owner's: nothing of this request stays (the conversation's
    // positions it may have added included).
    if (accept && op.taken && !run(p.rollback_to)) return abandon("rollback");
    if (accept && !run(p.release)) return abandon("release");
  }
  if (!run(p.commit)) return abandon("commit");
  for (std::size_t k = 0; k < end; ++k) {
    ops[k].applied = ops[k].applied || (!ops[k].refused && !ops[k].held);
  }
  return true;
}

bool Ledger::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    error_ = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    return false;
  }
  return true;
}

bool Ledger::Fail(const char* what) {
  error_ = std::string(what) + ": " + sqlite3_errmsg(db_);
  full_ = sqlite3_errcode(db_) == SQLITE_FULL;
  return false;
}

std::string Ledger::LastError() const {
  std::lock_guard lock(mu_);
  return error_;
}

bool Ledger::Accept(const std::string& id, const v1::ChatRequest& request,
                    const std::optional<std::string>& owner) {
  std::vector<Op> ops;
  ops.push_back(AcceptOp(id, request, owner));
  std::lock_guard lock(mu_);
  ApplyMakingRoom(ops);
  switch (Outcome(ops.front())) {
    case AcceptOutcome::kRecorded:
      return true;
    case AcceptOutcome::kIdTaken:
      error_ = "request id " + id + " belongs to another client";
      return false;
    case AcceptOutcome::kFailed:
      break;
  }
  return false;
}

bool Ledger::Touch(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "UPDATE requests SET updated_ms=? WHERE id=? AND state IN (0, 1)");
  if (!s.ok()) return Fail("prepare touch");
  s.Int(1, NowMs()).Text(2, id);
  return s.Step() == SQLITE_DONE || Fail("touch request");
}

bool Ledger::Route(const std::string& id, const std::string& node) {
  return Enqueue({Op::Kind::kRoute, id, node, {}, 0});
}

bool Ledger::AppendToken(const std::string& id, std::uint32_t index, const std::string& text) {
  return Enqueue({Op::Kind::kToken, id, text, {}, index});
}

bool Ledger::Finish(const std::string& id, State state, const std::string& finish_reason,
                    const std::string& error) {
  return Enqueue({Op::Kind::kFinish, id, finish_reason, error, static_cast<int>(state)});
}

std::optional<Ledger::Entry> Ledger::Load(const std::string& id) {
  Flush();
  std::lock_guard lock(mu_);
  Stmt r(db_,
         "SELECT request, state, node, finish_reason, error, owner, conversation, prefix_len "
         "FROM requests WHERE id=?");
  if (!r.ok()) return std::nullopt;
  r.Text(1, id);
  if (r.Step() != SQLITE_ROW) return std::nullopt;
  Entry e;
  if (!e.request.ParseFromString(r.ColumnBlob(0))) return std::nullopt;
  e.state = static_cast<State>(r.ColumnInt(1));
  e.node = r.ColumnText(2);
  e.finish_reason = r.ColumnText(3);
  e.error = r.ColumnText(4);
  e.owner = r.ColumnOptionalBlob(5);
  if (const std::int64_t prefix = r.ColumnInt(7); prefix > 0) {
    // Schema 4: its first messages are the conversation's, its own rest follows them.
    v1::ChatRequest whole;
    Stmt m(db_,
           "SELECT seq, message FROM conversation_messages WHERE conversation=? AND seq < ? "
           "ORDER BY seq");
    if (!m.ok()) return std::nullopt;
    m.Text(1, r.ColumnText(6)).Int(2, prefix);
    while (m.Step() == SQLITE_ROW) {
      if (m.ColumnInt(0) != whole.messages_size() ||
          !whole.add_messages()->ParseFromString(m.ColumnBlob(1))) {
        return std::nullopt;
      }
    }
    if (whole.messages_size() != prefix) return std::nullopt;
    for (auto& rest : *e.request.mutable_messages()) *whole.add_messages() = std::move(rest);
    *e.request.mutable_messages() = std::move(*whole.mutable_messages());
  }
  Stmt t(db_, "SELECT idx, text FROM tokens WHERE request_id=? ORDER BY idx");
  if (!t.ok()) return std::nullopt;
  t.Text(1, id);
  while (t.Step() == SQLITE_ROW) {
    // Indices are contiguous from 0 by construction; stop at a gap rather than misplace text.
    if (t.ColumnInt(0) != static_cast<std::int64_t>(e.tokens.size())) break;
    e.tokens.push_back(t.ColumnText(1));
  }
  return e;
}

Ledger::Lookup Ledger::LoadOwner(const std::string& id, std::optional<std::string>* owner) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT owner FROM requests WHERE id=?");
  if (!s.ok()) {
    Fail("prepare owner lookup");
    return Lookup::kError;
  }
  s.Text(1, id);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return Lookup::kNotFound;
  if (rc != SQLITE_ROW) {
    Fail("read owner");
    return Lookup::kError;
  }
  *owner = s.ColumnOptionalBlob(0);
  return Lookup::kFound;
}

bool Ledger::StoreReceipt(const std::string& id, const v1::Receipt& receipt) {
  return Enqueue({Op::Kind::kReceipt, id, receipt.SerializeAsString(), {}, 0});
}

Ledger::Lookup Ledger::LoadReceipt(const std::string& id, v1::Receipt* receipt) {
  Flush();  // a receipt stored a moment ago may still be queued
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT payload, worker_signature, worker_public_key, router_signature, "
         "router_public_key FROM receipts WHERE request_id=?");
  if (!s.ok()) {
    Fail("prepare receipt lookup");
    return Lookup::kError;
  }
  s.Text(1, id);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return Lookup::kNotFound;
  if (rc != SQLITE_ROW) {
    Fail("read receipt");
    return Lookup::kError;
  }
  receipt->set_payload(s.ColumnText(0));
  receipt->set_worker_signature(s.ColumnBlob(1));
  receipt->set_worker_public_key(s.ColumnText(2));
  receipt->set_router_signature(s.ColumnBlob(3));
  receipt->set_router_public_key(s.ColumnText(4));
  return Lookup::kFound;
}

std::int64_t Ledger::UsedPagesLocked() {
  const auto read = [](Stmt& pragma) {
    const std::int64_t n = pragma.Step() == SQLITE_ROW ? pragma.ColumnInt(0) : 0;
    pragma.Reset();
    return n;
  };
  return read(prepared_->page_count) - read(prepared_->freelist_count);
}

std::vector<std::string> Ledger::Unfinished() {
  Flush();
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  Stmt s(db_, "SELECT id FROM requests WHERE state IN (?, ?) ORDER BY created_ms");
  if (!s.ok()) return ids;
  s.Int(1, static_cast<int>(State::kQueued)).Int(2, static_cast<int>(State::kRunning));
  while (s.Step() == SQLITE_ROW) ids.push_back(s.ColumnText(0));
  return ids;
}

}  // namespace tidelane::server
