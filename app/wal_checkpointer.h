// WalCheckpointer: copies a SQLite database's write-ahead log into the database file on a
// thread of its own, so the thread that commits never waits for it.
//
// Why: SQLite checkpoints inside whichever commit grows the WAL past 1,000 pages, and in WAL
// mode with synchronous=NORMAL that checkpoint is where the fsyncs are (the WAL before copying,
// the database after). The chat history commits every streamed token on the GUI thread, ~1,000
// pages a second for a long answer, so once a second a token's commit took ~10 ms of mostly
// waiting for the disk (app_bench stream, docs/benchmarks/app.md). The committing connection
// keeps SQLite's automatic checkpoint only as a bound (ChatStore sets it to
// kInlineCheckpointPages), for when this thread cannot keep up.
//
// Contract: after wrote(), passive checkpoints run within kIntervalMs (at once when none ran in
// the last kIntervalMs), up to kMaxPasses of them until the whole WAL is copied, so that the next
// commit starts the WAL over; many wrote() calls in between cost one round. A passive checkpoint
// waits for no one and takes no write lock (commits go on while it copies); what it cannot copy
// yet waits for the next. What stays on the committing thread: starting the WAL over after a
// round, one sync of the WAL header (0.1-3 ms in the benchmark's strace) about once a second.
// Errors: a connection or checkpoint that fails is counted (failures()) and retried at the next
// wrote(); the WAL stays valid either way, so no data is at risk.
//
// Threading: wrote() and the counters from any thread; never blocks. The destructor waits for a
// checkpoint in progress, then closes the thread's connection.
#pragma once

#include <QString>
#include <QThread>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

class QSqlDatabase;

namespace tidelane::app {

class WalCheckpointer {
 public:
  static constexpr int kIntervalMs = 1000;
  static constexpr int kMaxPasses = 32;
  // The committing connection's own automatic checkpoint (PRAGMA wal_autocheckpoint): 10x
  // SQLite's default, so it runs only when this thread falls far behind (40 MiB at 4 KiB pages).
  static constexpr int kInlineCheckpointPages = 10000;

  // Starts the thread, which opens its own connection to the database at `path`.
  explicit WalCheckpointer(const QString& path);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // A commit was made: checkpoint soon.
  void wrote();

  // Checkpoint passes completed, and the WAL pages the last pass found and copied.
  int checkpoints() const { return checkpoints_.load(); }
  int lastLogPages() const { return lastLog_.load(); }
  int lastCopiedPages() const { return lastCopied_.load(); }
  int failures() const { return failures_.load(); }

 private:
  void run();
  bool checkpoint(QSqlDatabase& db);

  const QString path_;
  const QString connection_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool wanted_ = false;  // under mu_
  // Set under mu_; also read without it, to leave a round of passes early.
  std::atomic<bool> stop_{false};
  std::atomic<int> checkpoints_{0};
  std::atomic<int> lastLog_{0};
  std::atomic<int> lastCopied_{0};
  std::atomic<int> failures_{0};
  std::unique_ptr<QThread> thread_;
};

}  // namespace tidelane::app
