// The router's ledger keeps every request and token across restarts, never duplicates a
// token index, refuses corrupt or too-new files with a clear message, and reports a full disk
// as a failed write instead of crashing.
#include "router/server/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

using tidelane::server::Ledger;
namespace fs = std::filesystem;

namespace {

fs::path FreshDir(const std::string& name) {
  const auto dir =
      fs::temp_directory_path() / ("tidelane-ledger-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

tidelane::v1::ChatRequest Request(const std::string& text) {
  tidelane::v1::ChatRequest r;
  r.set_conversation_id("conv-1");
  auto* m = r.add_messages();
  m->set_role("user");
  m->set_content(text);
  return r;
}

}  // namespace

TEST(Ledger, KeepsRequestsAndTokensAcrossReopen) {
  const auto dir = FreshDir("reopen");
  std::string error;
  {
    auto ledger = Ledger::Open(dir, &error);
    ASSERT_TRUE(ledger) << error;
    ASSERT_TRUE(ledger->Accept("a", Request("hello")));
    ASSERT_TRUE(ledger->Accept("b", Request("bye")));
    ASSERT_TRUE(ledger->Route("a", "node-1"));
    ASSERT_TRUE(ledger->AppendToken("a", 0, "Hi"));
    ASSERT_TRUE(ledger->AppendToken("a", 1, " there"));
    ASSERT_TRUE(ledger->AppendToken("a", 1, " THERE"));  // a replayed index is ignored
    ASSERT_TRUE(ledger->Finish("b", Ledger::State::kDone, "stop", ""));
  }
  auto ledger = Ledger::Open(dir, &error);
  ASSERT_TRUE(ledger) << error;
  const auto a = ledger->Load("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, Ledger::State::kRunning);
  EXPECT_EQ(a->node, "node-1");
  EXPECT_EQ(a->tokens, (std::vector<std::string>{"Hi", " there"}));
  EXPECT_EQ(a->request.messages(0).content(), "hello");
  EXPECT_EQ(ledger->Load("b")->state, Ledger::State::kDone);
  EXPECT_EQ(ledger->Unfinished(), (std::vector<std::string>{"a"}));
  EXPECT_FALSE(ledger->Load("nope"));
  fs::remove_all(dir);
}

TEST(Ledger, RefusesCorruptAndNewerFilesWithAClearMessage) {
  const auto dir = FreshDir("corrupt");
  std::ofstream(dir / "ledger.sqlite3") << std::string(8192, 'x');
  std::string error;
  EXPECT_FALSE(Ledger::Open(dir, &error));
  EXPECT_NE(error.find("ledger.sqlite3"), std::string::npos) << error;

  fs::remove(dir / "ledger.sqlite3");
  {
    auto ledger = Ledger::Open(dir, &error);
    ASSERT_TRUE(ledger) << error;
  }
  {
    // A future version of the router wrote it.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "ledger.sqlite3").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  EXPECT_FALSE(Ledger::Open(dir, &error));
  EXPECT_NE(error.find("schema version 99"), std::string::npos) << error;
  fs::remove_all(dir);
}

TEST(Ledger, AFullDiskFailsTheWriteAndSaysSo) {
  const auto dir = FreshDir("full");
  std::string error;
  auto ledger = Ledger::Open(dir, &error, 64 * 1024);
  ASSERT_TRUE(ledger) << error;
  bool failed = false;
  for (int i = 0; i < 10000 && !failed; ++i)
    failed = !ledger->Accept("r" + std::to_string(i), Request(std::string(500, 'z')));
  ASSERT_TRUE(failed) << "a 64 KiB ledger must fill up";
  EXPECT_NE(ledger->LastError().find("full"), std::string::npos) << ledger->LastError();
  // What was written before is still there.
  EXPECT_TRUE(ledger->Load("r0"));
  fs::remove_all(dir);
}

// The router records requests without blocking a thread: AcceptAsync reports after the
// commit, and reports failure (not success) when the disk is full.
TEST(Ledger, AcceptAsyncReportsAfterTheCommitAndFailsOnAFullDisk) {
  const auto dir = FreshDir("async");
  std::string error;
  auto ledger = Ledger::Open(dir, &error, 64 * 1024);
  ASSERT_TRUE(ledger) << error;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<int, bool>> outcomes;
  constexpr int kRequests = 400;  // 500 bytes each: more than 64 KiB holds
  for (int i = 0; i < kRequests; ++i) {
    ledger->AcceptAsync("a" + std::to_string(i), Request(std::string(500, 'y')), [&, i](bool ok) {
      std::lock_guard lock(mu);
      outcomes.emplace_back(i, ok);
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(
      cv.wait_for(lock, std::chrono::seconds(30), [&] { return outcomes.size() == kRequests; }));
  lock.unlock();
  int recorded = 0;
  for (const auto& [i, ok] : outcomes) {
    // Whatever was reported as recorded can be loaded: no request runs unrecorded.
    if (ok) {
      ++recorded;
      EXPECT_TRUE(ledger->Load("a" + std::to_string(i))) << i;
    }
  }
  EXPECT_GT(recorded, 0);
  EXPECT_LT(recorded, kRequests) << "a 64 KiB ledger must fill up";
  fs::remove_all(dir);
}

// Receipts (issue 9) are kept per request, survive a reopen, and a ledger written before
// receipts existed (schema 1) is upgraded in place with its requests intact.
TEST(Ledger, KeepsReceiptsAndUpgradesAVersion1Ledger) {
  const auto dir = FreshDir("receipts");
  std::string error;
  {
    // Schema 1 as the router wrote it: no receipts table.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "ledger.sqlite3").c_str(), &db), SQLITE_OK);
    const char* v1 = R"sql(
      CREATE TABLE requests(id TEXT PRIMARY KEY, conversation TEXT NOT NULL, request BLOB NOT NULL,
        state INTEGER NOT NULL, node TEXT NOT NULL DEFAULT '', finish_reason TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
      CREATE INDEX requests_by_state ON requests(state);
      CREATE TABLE tokens(request_id TEXT NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL,
        PRIMARY KEY(request_id, idx)) WITHOUT ROWID;
      PRAGMA user_version=1;)sql";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto ledger = Ledger::Open(dir, &error);
    ASSERT_TRUE(ledger) << error;
    ASSERT_TRUE(ledger->Accept("old", Request("from before")));
    tidelane::v1::Receipt r;
    r.set_payload(R"({"request_id":"old"})");
    r.set_worker_signature(std::string(64, '\x01'));
    r.set_worker_public_key(std::string(64, 'a'));
    r.set_router_signature(std::string("\0\xff", 2) + std::string(62, '\x02'));
    r.set_router_public_key(std::string(64, 'b'));
    ASSERT_TRUE(ledger->StoreReceipt("old", r)) << ledger->LastError();
  }
  auto ledger = Ledger::Open(dir, &error);
  ASSERT_TRUE(ledger) << error;
  tidelane::v1::Receipt back;
  ASSERT_EQ(ledger->LoadReceipt("old", &back), Ledger::Lookup::kFound);
  EXPECT_EQ(back.payload(), R"({"request_id":"old"})");
  EXPECT_EQ(back.router_signature(), std::string("\0\xff", 2) + std::string(62, '\x02'));
  EXPECT_EQ(back.worker_public_key(), std::string(64, 'a'));
  EXPECT_EQ(ledger->LoadReceipt("unknown", &back), Ledger::Lookup::kNotFound);
  EXPECT_TRUE(ledger->Load("old"));
  fs::remove_all(dir);
}
