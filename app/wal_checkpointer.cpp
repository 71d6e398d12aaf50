#include "app/wal_checkpointer.h"

#include <QSqlDatabase>
#include <QSqlQuery>
#include <QVariant>
#include <chrono>

namespace tidelane::app {
namespace {

QString connectionName() {
  static std::atomic<int> counter{0};
  return QStringLiteral("tidelane-wal-checkpointer-%1").arg(counter++);
}

}  // namespace

WalCheckpointer::WalCheckpointer(const QString& path) : path_(path), connection_(connectionName()) {
  thread_.reset(QThread::create([this] { run(); }));
  thread_->setObjectName(QStringLiteral("wal-checkpointer"));
  thread_->start();
}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_->wait();
}

void WalCheckpointer::wrote() {
  {
    std::lock_guard lock(mu_);
    if (wanted_) return;
    wanted_ = true;
  }
  wake_.notify_one();
}

bool WalCheckpointer::checkpoint(QSqlDatabase& db) {
  if (!db.isOpen() && !db.open()) return false;
  QSqlQuery q(db);
  // Passive: copies the frames no reader still needs and waits for no one; it takes no write
  // lock, so commits go on while it copies.
  if (!q.exec(QStringLiteral("PRAGMA wal_checkpoint(PASSIVE)")) || !q.next()) return false;
  lastLog_ = q.value(1).toInt();
  lastCopied_ = q.value(2).toInt();
  return true;
}

void WalCheckpointer::run() {
  {
    // QtSql, not the sqlite3 API: the same SQLite library as the committing connection, whose
    // POSIX locks a second copy of the library in the process would not see.
    QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), connection_);
    db.setDatabaseName(path_);
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return wanted_ || stop_; });
      if (stop_) break;
      wanted_ = false;
      lock.unlock();
      // Until every frame is copied: only then does the next commit start the WAL over instead
      // of growing it. A pass reports the WAL as it was when the pass began, and commits keep
      // coming while it copies (one every 5 ms at 200 tokens/s), so the WAL is known to be all
      // copied only when a pass finds it as the previous one left it.
      int previousLog = -1;
      for (int pass = 0; pass < kMaxPasses && !stop_.load(); ++pass) {
        if (!checkpoint(db)) {
          ++failures_;
          break;
        }
        ++checkpoints_;
        if (lastCopied_.load() >= lastLog_.load() && lastLog_.load() == previousLog) break;
        previousLog = lastLog_.load();
      }
      lock.lock();
      // Commits until then wait for the next checkpoint: one per interval at most.
      wake_.wait_for(lock, std::chrono::milliseconds(kIntervalMs), [this] { return stop_.load(); });
      if (stop_) break;
    }
    lock.unlock();
    db.close();
  }
  QSqlDatabase::removeDatabase(connection_);
}

}  // namespace tidelane::app
