// The ledger's retention (ledger.h, "Retention"): deleting finished requests past their age,
// and making room in a bounded ledger, whose accepts stop short of the bound.
#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <set>

#include "router/server/ledger.h"
#include "router/server/ledger_internal.h"
#include "router/server/sqlite_stmt.h"

namespace tidelane::server {

using ledger_internal::kPruneBatch;
using ledger_internal::kRoomBatchInCommit;
using ledger_internal::NowMs;

bool Ledger::ApplyMakingRoom(std::vector<Op>& ops, std::optional<bool> nearly_full) {
  if (max_pages_ == 0) return Apply(ops);
  // A bounded ledger writes what answers in progress owe first (tokens, routes, ends,
  // receipts: their requests are already accepted, and an answer that ends becomes room to
  // give), then makes room for new requests when it is past room_at, and accepts them only
  // below it: the last part of the bound stays for answers in progress, so a burst of accepts
  // cannot crowd out the tokens of answers already streaming.
  const auto is_accept = std::mem_fn(&Op::IsAccept);
  const bool accepts = std::any_of(ops.begin(), ops.end(), is_accept);
  bool ok = true;
  if (accepts && !std::all_of(ops.begin(), ops.end(), is_accept)) {
    for (auto& op : ops) op.held = is_accept(op);
    ok = ApplyRetrying(ops);
    for (auto& op : ops) op.held = false;
  }
  if (!accepts) return ApplyRetrying(ops);
  const bool room_helps = std::any_of(ops.begin(), ops.end(), [&](const Op& op) {
    return is_accept(op) && !op.refused && !op.applied && RoomCanHelp(op.Bytes());
  });
  // Asked once per commit (each ask is a read transaction of its own, ~6 us): the caller's
  // answer when it has one.
  if ((nearly_full ? *nearly_full : NearlyFullLocked()) &&
      (!room_helps || (MakeRoomLocked(kRoomBatchInCommit) == 0 && NearlyFullLocked()))) {
    error_ =
        "record request: the ledger is full (--ledger-max-mb; what is left of it is kept "
        "for answers in progress, and nothing answered is left to make room with)";
    full_ = true;
    for (auto& op : ops) op.refused = op.refused || (is_accept(op) && !op.applied);
    return ok;
  }
  return ApplyRetrying(ops) && ok;
}

bool Ledger::ApplyRetrying(std::vector<Op>& ops) {
  bool ok = Apply(ops);
  // What did not fit is tried once more after a batch of answered requests is deleted.
  for (int round = 0; round < 2 && full_; ++round) {
    bool retry = !ok;  // nothing in the group was committed
    for (auto& op : ops) {
      retry = retry || (op.refused && RoomCanHelp(op.Bytes()));
    }
    if (!retry || MakeRoomLocked(kRoomBatchInCommit) == 0) break;
    for (auto& op : ops) {
      if (op.refused && RoomCanHelp(op.Bytes())) op.refused = false;
    }
    ok = Apply(ops);
  }
  return ok;
}

bool Ledger::NearlyFullLocked() {
  if (max_pages_ == 0) return false;
  const auto bound = static_cast<double>(max_pages_);
  // Each count is a read transaction of its own (~6 us on an accept's path). Well below the
  // bound (64 pages or more under room_to: 16 commits of up to 4 pages each cannot pass
  // room_to) a count stands for 16 asks; nearer, and in a small ledger, every ask counts.
  constexpr std::int64_t kStalePages = 64;
  if (used_pages_ < 0 ||
      static_cast<double>(used_pages_ + kStalePages) >= retention_.room_to * bound ||
      ++asks_since_count_ >= 16) {
    used_pages_ = UsedPagesLocked();
    asks_since_count_ = 0;
  }
  return static_cast<double>(used_pages_) >= retention_.room_at * bound;
}

bool Ledger::RoomCanHelp(std::size_t bytes) const {
  return max_bytes_ > 0 && bytes < max_bytes_ / 4;
}

std::size_t Ledger::MakeRoomLocked(std::size_t batch) {
  // What each request frees, estimated from its rows without reading them: the request (its
  // key twice, with the primary key's index), its receipt, and its tokens by count (one
  // index seek: max(idx) under the (request_id, idx) key), each token row ~ its key and a few
  // bytes of text. A conversation's messages go with its last request only, so they do not
  // count. Pages are seldom full, so the bytes freed undercount the pages: the first pass may
  // leave the ledger over room_to, and the writer's next pass goes on from there.
  // Answered requests only: a cancelled one may still be resumed, and waits for its age.
  static_assert(static_cast<int>(State::kDone) == 2 && State::kFailed > State::kDone);
  Stmt pick(db_,
            "SELECT r.id, length(r.request) + 2 * length(r.id) + 64"
            " + coalesce((SELECT length(payload) + 256 FROM receipts WHERE request_id = r.id), 0)"
            " + coalesce((SELECT (max(idx) + 1) * (length(r.id) + 16) FROM tokens"
            "             WHERE request_id = r.id), 0) "
            "FROM requests AS r INDEXED BY requests_finished_by_age "
            "WHERE state >= 2 AND state <= ? ORDER BY updated_ms LIMIT ?");
  if (!pick.ok()) {
    Fail("prepare retention");
    return 0;
  }
  const double over =
      static_cast<double>(UsedPagesLocked()) - retention_.room_to * static_cast<double>(max_pages_);
  const auto goal =
      static_cast<std::int64_t>(std::max(1.0, over) * static_cast<double>(page_size_));
  pick.Int(1, static_cast<int>(State::kFailed)).Int(2, static_cast<std::int64_t>(batch));
  std::vector<std::string> ids;
  std::int64_t freed = 0;
  while (freed < goal && pick.Step() == SQLITE_ROW) {
    ids.push_back(pick.ColumnText(0));
    freed += pick.ColumnInt(1);
  }
  pick.Reset();  // no read left open under the deletes
  const std::size_t n = DeleteLocked(ids, "DELETE FROM requests WHERE id=? AND state >= 2");
  pruned_for_room_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

std::size_t Ledger::PruneLocked(State last_state, std::int64_t before_ms, std::size_t max) {
  // By the partial index, named: without statistics (the ledger never runs ANALYZE) SQLite's
  // planner would take requests_by_state and sort every finished request. `state >= 2` as the
  // index states it, which it must for the index to apply.
  static_assert(static_cast<int>(State::kDone) == 2 && State::kFailed > State::kDone &&
                State::kCancelled > State::kFailed);
  Stmt pick(db_,
            "SELECT id FROM requests INDEXED BY requests_finished_by_age "
            "WHERE state >= 2 AND state <= ? AND updated_ms < ? "
            "ORDER BY updated_ms LIMIT ?");
  if (!pick.ok()) {
    Fail("prepare retention");
    return 0;
  }
  pick.Int(1, static_cast<int>(last_state)).Int(2, before_ms);
  pick.Int(3, static_cast<std::int64_t>(max));
  std::vector<std::string> ids;
  while (pick.Step() == SQLITE_ROW) ids.push_back(pick.ColumnText(0));
  return DeleteLocked(ids, "DELETE FROM requests WHERE id=? AND state >= 2");
}

std::size_t Ledger::PruneInterruptedLocked(std::int64_t before_ms, std::size_t max) {
  // Few rows: only what stopped routers left behind (requests_by_state serves it).
  Stmt pick(db_,
            "SELECT id FROM requests WHERE state IN (0, 1) AND updated_ms < ? "
            "ORDER BY updated_ms LIMIT ?");
  static_assert(static_cast<int>(State::kQueued) == 0 && static_cast<int>(State::kRunning) == 1);
  if (!pick.ok()) {
    Fail("prepare retention");
    return 0;
  }
  pick.Int(1, before_ms).Int(2, static_cast<std::int64_t>(max));
  std::vector<std::string> ids;
  while (pick.Step() == SQLITE_ROW) ids.push_back(pick.ColumnText(0));
  return DeleteLocked(ids, "DELETE FROM requests WHERE id=? AND state IN (0, 1)");
}

std::size_t Ledger::DeleteLocked(const std::vector<std::string>& ids, const char* delete_request) {
  if (ids.empty()) return 0;
  Stmt tokens(db_, "DELETE FROM tokens WHERE request_id=?");
  Stmt receipt(db_, "DELETE FROM receipts WHERE request_id=?");
  Stmt request(db_, delete_request);
  Stmt conversation(db_, "SELECT conversation FROM requests WHERE id=?");
  // A conversation's messages go with its last request.
  Stmt forget(db_,
              "DELETE FROM conversation_messages WHERE conversation=?1 AND NOT EXISTS "
              "(SELECT 1 FROM requests WHERE conversation=?1)");
  const auto run = [](Stmt& s, const std::string& id) {
    const bool done = s.Text(1, id).Step() == SQLITE_DONE;
    s.Reset();
    return done;
  };
  if (!tokens.ok() || !receipt.ok() || !request.ok() || !conversation.ok() || !forget.ok() ||
      !Exec("BEGIN")) {
    Fail("prepare retention");
    return 0;
  }
  std::set<std::string> conversations;
  for (const auto& id : ids) {
    if (conversation.Text(1, id).Step() == SQLITE_ROW) {
      conversations.insert(conversation.ColumnText(0));
    }
    conversation.Reset();
    if (!run(tokens, id) || !run(receipt, id) || !run(request, id)) {
      Fail("delete an old request");
      Exec("ROLLBACK");
      return 0;
    }
  }
  for (const auto& c : conversations) {
    if (!c.empty() && !run(forget, c)) {
      Fail("delete an old conversation's messages");
      Exec("ROLLBACK");
      return 0;
    }
  }
  if (!Exec("COMMIT")) {
    Exec("ROLLBACK");
    return 0;
  }
  used_pages_ = -1;  // NearlyFullLocked counts again
  return ids.size();
}

std::size_t Ledger::PruneFinished(std::int64_t ended_before_ms, std::size_t max_requests) {
  std::lock_guard lock(mu_);
  const std::size_t n = PruneLocked(State::kCancelled, ended_before_ms, max_requests);
  pruned_expired_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

bool Ledger::PruneDue() {
  if (!opened_.load(std::memory_order_acquire) || QueuedAccepts() > 0) return false;
  if (max_pages_ > 0) {
    std::lock_guard lock(mu_);
    if (NearlyFullLocked()) making_room_ = true;  // counts afresh from room_to up
    if (making_room_ &&
        static_cast<double>(used_pages_) > retention_.room_to * static_cast<double>(max_pages_)) {
      if (MakeRoomLocked(kPruneBatch) == kPruneBatch) return true;
    }
    making_room_ = false;
  }
  const auto keep = retention_.finished_for.count();
  if (keep <= 0) return false;
  const std::int64_t now = NowMs();
  if (now < next_expiry_ms_) return false;
  if (PruneFinished(now - keep, kPruneBatch) == kPruneBatch) return true;
  {
    // Requests a stopped router left unfinished, that no client resumed within the retention:
    // only those untouched since before this ledger was opened, so never one running here.
    std::lock_guard lock(mu_);
    const std::size_t n = PruneInterruptedLocked(std::min(now - keep, opened_ms_), kPruneBatch);
    pruned_expired_.fetch_add(n, std::memory_order_relaxed);
    if (n == kPruneBatch) return true;
  }
  // Nothing more is due before then; a minute at most between passes, and often enough that a
  // short retention (tests) is kept to within a quarter of it.
  next_expiry_ms_ = now + std::clamp<std::int64_t>(keep / 4, 1, 60'000);
  return false;
}

Ledger::FileSizes Ledger::Sizes() const {
  const auto size = [](const std::filesystem::path& file) -> std::uint64_t {
    std::error_code ec;
    const auto n = std::filesystem::file_size(file, ec);
    return ec ? 0 : n;
  };
  return {size(path_), size(std::filesystem::path(path_.string() + "-wal"))};
}

Ledger::PruneCounts Ledger::Pruned() const {
  return {pruned_expired_.load(std::memory_order_relaxed),
          pruned_for_room_.load(std::memory_order_relaxed)};
}

}  // namespace tidelane::server
