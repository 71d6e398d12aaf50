// The chat history on real SQLite files: conversations are created, named from the first
// message, renamed, pinned, deleted and restored; streamed answers are written in batches
// and one cut off by a dead app comes back as stopped; search finds a word in a message;
// a newer, foreign or damaged file is refused with a clear error and left byte for byte;
// the WAL is checkpointed by the store's own thread, not in the commits.
#include <QCryptographicHash>
#include <QFile>
#include <QSignalSpy>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QTemporaryDir>
#include <QTest>

#include "app/chat_store.h"

using tidelane::app::ChatStore;
using tidelane::app::WalCheckpointer;
using tidelane::ui::MessageState;

namespace {

QByteArray digest(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256);
}

// Reads one value straight from the file, the way another process would.
QVariant rawValue(const QString& path, const QString& sql) {
  QVariant out;
  {
    auto db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("raw"));
    db.setDatabaseName(path);
    db.setConnectOptions(QStringLiteral("QSQLITE_OPEN_READONLY"));
    if (db.open()) {
      QSqlQuery q(db);
      if (q.exec(sql) && q.next()) out = q.value(0);
    }
  }
  QSqlDatabase::removeDatabase(QStringLiteral("raw"));
  return out;
}

// Reads one value from the database file alone, as if its WAL were lost: only what a
// checkpoint copied into the file is there. Empty while a checkpoint is writing the file.
QVariant fileOnlyValue(const QString& path, const QString& sql) {
  QTemporaryDir copyDir;
  const QString copy = copyDir.filePath(QStringLiteral("file-only.sqlite"));
  QFile::copy(path, copy);
  QVariant out;
  {
    auto db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("file-only"));
    db.setDatabaseName(copy);
    if (db.open()) {
      QSqlQuery q(db);
      if (q.exec(sql) && q.next()) out = q.value(0);
    }
  }
  QSqlDatabase::removeDatabase(QStringLiteral("file-only"));
  return out;
}

}  // namespace

class TestChatStore : public QObject {
  Q_OBJECT

 private slots:
  void conversationsAreCreatedNamedRenamedAndPinned() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("sub/history.sqlite"));
    ChatStore store;
    QVERIFY2(store.open(path), qPrintable(store.lastError()));
    QCOMPARE(rawValue(path, QStringLiteral("PRAGMA journal_mode")).toString(),
             QStringLiteral("wal"));

    QSignalSpy changed(&store, &ChatStore::conversationsChanged);
    const qint64 a = store.createConversation();
    QVERIFY(a > 0);
    QVERIFY(store.appendMessage(a, QStringLiteral("user"),
                                QStringLiteral("  How do tides work\nand why twice a day?"),
                                MessageState::Complete) > 0);
    QCOMPARE(store.conversation(a).title, QStringLiteral("How do tides work"));
    QVERIFY(store.appendMessage(a, QStringLiteral("assistant"), QStringLiteral("The moon."),
                                MessageState::Complete) > 0);
    QCOMPARE(store.messages(a).size(), 2);
    QCOMPARE(store.messages(a)[1].content, QStringLiteral("The moon."));
    QVERIFY(changed.count() >= 3);

    const qint64 b = store.createConversation();
    store.appendMessage(b, QStringLiteral("user"),
                        QStringLiteral("Please explain in detail the difference between "
                                       "prefill and decode lanes in a router"),
                        MessageState::Complete);
    const QString title = store.conversation(b).title;
    QVERIFY2(title.size() <= ChatStore::kTitleLength + 1, qPrintable(title));
    QVERIFY2(title.endsWith(QStringLiteral("…")), qPrintable(title));
    QVERIFY2(title.startsWith(QStringLiteral("Please explain in detail the difference")),
             qPrintable(title));
    QVERIFY2(!title.contains(QStringLiteral("lan…")), qPrintable(title));  // whole words

    // Newest first; a pinned conversation goes on top.
    QCOMPARE(store.conversations().first().id, b);
    QVERIFY(store.setPinned(a, true));
    QCOMPARE(store.conversations().first().id, a);
    QVERIFY(store.conversations().first().pinned);
    QVERIFY(store.rename(b, QStringLiteral("Lanes")));
    QVERIFY(!store.rename(b, QStringLiteral("   ")));  // a title cannot be blank
    QVERIFY(!store.lastError().isEmpty());

    store.close();
    ChatStore again;
    QVERIFY2(again.open(path), qPrintable(again.lastError()));
    QCOMPARE(again.conversation(b).title, QStringLiteral("Lanes"));
    QVERIFY(again.conversation(a).pinned);
    QCOMPARE(again.messages(a).size(), 2);
  }

  void deleteCanBeUndoneUntilPurged() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("history.sqlite"));
    ChatStore store;
    QVERIFY(store.open(path));
    const qint64 a = store.createConversation(QStringLiteral("keep me"));
    const qint64 b = store.createConversation(QStringLiteral("drop me"));
    store.appendMessage(b, QStringLiteral("user"), QStringLiteral("bye"), MessageState::Complete);

    QVERIFY(store.remove(a));
    QCOMPARE(store.conversations().size(), 1);
    QVERIFY(store.undoRemove(a));
    QCOMPARE(store.conversations().size(), 2);

    QVERIFY(store.remove(b));
    QVERIFY(store.purgeRemoved());
    QVERIFY(!store.undoRemove(b));
    QCOMPARE(store.conversations().size(), 1);
    QCOMPARE(rawValue(path, QStringLiteral("SELECT count(*) FROM messages")).toInt(), 0);

    // Removed when the app ends: gone when it starts again.
    QVERIFY(store.remove(a));
    store.close();
    QVERIFY(store.open(path));
    QVERIFY(store.conversations().isEmpty());
    QVERIFY(!store.undoRemove(a));
  }

  void searchFindsAWordInAMessage() {
    QTemporaryDir dir;
    ChatStore store;
    QVERIFY(store.open(dir.filePath(QStringLiteral("history.sqlite"))));
    const qint64 a = store.createConversation();
    store.appendMessage(a, QStringLiteral("user"), QStringLiteral("Tell me about harbours"),
                        MessageState::Complete);
    store.appendMessage(a, QStringLiteral("assistant"),
                        QStringLiteral("A lighthouse guides ships past the breakwater."),
                        MessageState::Complete);
    const qint64 b = store.createConversation();
    store.appendMessage(b, QStringLiteral("user"), QStringLiteral("Recipe for pancakes"),
                        MessageState::Complete);
    const qint64 streamed =
        store.appendMessage(b, QStringLiteral("assistant"), {}, MessageState::Streaming);
    store.appendToMessage(streamed, QStringLiteral("Whisk the Crêpes"));
    QVERIFY(store.finishMessage(streamed, MessageState::Complete, {}));

    auto hits = store.search(QStringLiteral("LIGHTHOUSE"));
    QCOMPARE(hits.size(), 1);
    QCOMPARE(hits[0].id, a);
    QVERIFY2(hits[0].snippet.contains(QStringLiteral("lighthouse")), qPrintable(hits[0].snippet));
    QCOMPARE(store.search(QStringLiteral("breakw")).size(), 1);         // prefix
    QCOMPARE(store.search(QStringLiteral("crepes")).value(0).id, b);    // diacritics folded
    QCOMPARE(store.search(QStringLiteral("pancakes")).value(0).id, b);  // the title
    QCOMPARE(store.search(QStringLiteral("lighthouse pancakes")).size(), 0);
    QCOMPARE(store.search(QStringLiteral("\"OR* NEAR(")).size(), 0);  // no query syntax leaks
    QVERIFY(store.lastError().isEmpty());
    QCOMPARE(store.search(QStringLiteral("  ")).size(), 2);
    store.remove(a);
    QCOMPARE(store.search(QStringLiteral("lighthouse")).size(), 0);
  }

  void streamedTextIsWrittenInBatchesAndAnInterruptedAnswerComesBackStopped() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("history.sqlite"));
    qint64 answer = 0;
    {
      ChatStore store;
      QVERIFY(store.open(path));
      const qint64 c = store.createConversation();
      store.appendMessage(c, QStringLiteral("user"), QStringLiteral("Count"),
                          MessageState::Complete);
      answer = store.appendMessage(c, QStringLiteral("assistant"), {}, MessageState::Streaming);
      store.appendToMessage(answer, QStringLiteral("one"));
      store.appendToMessage(answer, QStringLiteral(" two"));
      // Every token is on disk when appendToMessage returns: a kill keeps all that was shown.
      QCOMPARE(store.messages(c)[1].content, QStringLiteral("one two"));
      const QString contentSql =
          QStringLiteral("SELECT content FROM messages WHERE id = %1").arg(answer);
      QCOMPARE(rawValue(path, contentSql).toString(), QStringLiteral("one two"));
      for (int i = 1; i <= 5; ++i) {
        store.appendToMessage(answer, QStringLiteral("."));
        QCOMPARE(rawValue(path, contentSql).toString(),
                 QStringLiteral("one two") + QString(i, QLatin1Char('.')));
      }
      QCOMPARE(
          rawValue(path, QStringLiteral("SELECT state FROM messages WHERE id = %1").arg(answer))
              .toString(),
          QStringLiteral("streaming"));
      // The store is dropped without finishing the message, as a killed app would leave it.
    }
    ChatStore reopened;
    QVERIFY(reopened.open(path));
    const auto c = reopened.conversations().first().id;
    const auto messages = reopened.messages(c);
    QCOMPARE(messages.size(), 2);
    QCOMPARE(messages[1].state, MessageState::Stopped);
    QVERIFY(messages[1].content.startsWith(QStringLiteral("one two...")));
    QCOMPARE(reopened.search(QStringLiteral("two")).size(), 1);  // a stopped answer is searchable
  }

  void streamedTextIsCheckpointedOffTheCommittingThread() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("history.sqlite"));
    ChatStore store;
    QVERIFY(store.open(path));
    const WalCheckpointer* checkpointer = store.checkpointer();
    QVERIFY(checkpointer);
    const qint64 c = store.createConversation();
    const qint64 answer =
        store.appendMessage(c, QStringLiteral("assistant"), {}, MessageState::Streaming);
    QString text;
    for (int i = 0; i < 200; ++i) {
      const QString token = QStringLiteral(" word%1").arg(i);
      text += token;
      store.appendToMessage(answer, token);
    }
    // A few hundred WAL pages, far below the bound at which the store's own connection would
    // checkpoint in a commit (kInlineCheckpointPages): text in the database file itself was
    // copied there by the checkpointer's thread.
    const QString contentSql =
        QStringLiteral("SELECT content FROM messages WHERE id = %1").arg(answer);
    QTRY_COMPARE_WITH_TIMEOUT(fileOnlyValue(path, contentSql).toString(), text, 10000);
    QVERIFY(checkpointer->checkpoints() > 0);
    QCOMPARE(checkpointer->failures(), 0);
    QVERIFY(checkpointer->lastLogPages() > 0);
    QVERIFY(checkpointer->lastLogPages() < WalCheckpointer::kInlineCheckpointPages);

    // Closing stops the checkpointer first, so the store's connection is the last one and
    // removes the WAL; nothing is lost.
    store.close();
    QVERIFY(!store.checkpointer());
    QVERIFY(!QFile::exists(path + QStringLiteral("-wal")));
    QCOMPARE(rawValue(path, contentSql).toString(), text);
  }

  void finishedAnswerKeepsItsTrace() {
    QTemporaryDir dir;
    ChatStore store;
    QVERIFY(store.open(dir.filePath(QStringLiteral("history.sqlite"))));
    const qint64 c = store.createConversation();
    const qint64 u = store.appendMessage(c, QStringLiteral("user"), QStringLiteral("hi"),
                                         MessageState::Complete);
    const qint64 m =
        store.appendMessage(c, QStringLiteral("assistant"), {}, MessageState::Streaming, u);
    store.appendToMessage(m, QStringLiteral("hello"));
    QVERIFY(store.finishMessage(m, MessageState::Failed, QStringLiteral("{\"line\":\"x\"}")));
    const auto msg = store.messages(c)[1];
    QCOMPARE(msg.state, MessageState::Failed);
    QCOMPARE(msg.parentId, u);
    QCOMPARE(msg.content, QStringLiteral("hello"));
    QCOMPARE(msg.traceJson, QStringLiteral("{\"line\":\"x\"}"));
    QCOMPARE(store.appendMessage(9999, QStringLiteral("user"), QStringLiteral("x"),
                                 MessageState::Complete),
             0);
    QVERIFY(!store.lastError().isEmpty());
  }

  void aNewerOrDamagedFileIsRefusedAndLeftAlone() {
    QTemporaryDir dir;
    // Written by a future Tidelane.
    const QString newer = dir.filePath(QStringLiteral("newer.sqlite"));
    {
      auto db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("future"));
      db.setDatabaseName(newer);
      QVERIFY(db.open());
      QSqlQuery q(db);
      QVERIFY(q.exec(QStringLiteral("CREATE TABLE conversations(id INTEGER PRIMARY KEY)")));
      QVERIFY(q.exec(QStringLiteral("PRAGMA user_version = 7")));
      db.close();
    }
    QSqlDatabase::removeDatabase(QStringLiteral("future"));
    const QByteArray newerBefore = digest(newer);
    ChatStore store;
    QVERIFY(!store.open(newer));
    QVERIFY2(store.lastError().contains(QStringLiteral("newer version")),
             qPrintable(store.lastError()));
    QVERIFY2(store.lastError().contains(QStringLiteral("untouched")),
             qPrintable(store.lastError()));
    QVERIFY(!store.isOpen());
    QCOMPARE(digest(newer), newerBefore);

    // Not a database at all.
    const QString garbage = dir.filePath(QStringLiteral("garbage.sqlite"));
    {
      QFile f(garbage);
      QVERIFY(f.open(QIODevice::WriteOnly));
      for (int i = 0; i < 200; ++i) f.write("this is not an SQLite database, honestly\n");
    }
    const QByteArray garbageBefore = digest(garbage);
    QVERIFY(!store.open(garbage));
    QVERIFY2(store.lastError().contains(QStringLiteral("damaged")), qPrintable(store.lastError()));
    QCOMPARE(digest(garbage), garbageBefore);
    QVERIFY(!QFile::exists(garbage + QStringLiteral("-wal")));

    // Someone else's SQLite file.
    const QString foreign = dir.filePath(QStringLiteral("foreign.sqlite"));
    {
      auto db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("foreign"));
      db.setDatabaseName(foreign);
      QVERIFY(db.open());
      QVERIFY(QSqlQuery(db).exec(QStringLiteral("CREATE TABLE recipes(name TEXT)")));
      db.close();
    }
    QSqlDatabase::removeDatabase(QStringLiteral("foreign"));
    const QByteArray foreignBefore = digest(foreign);
    QVERIFY(!store.open(foreign));
    QVERIFY2(store.lastError().contains(QStringLiteral("not a Tidelane")),
             qPrintable(store.lastError()));
    QCOMPARE(digest(foreign), foreignBefore);

    // And the store still opens a good file afterwards.
    QVERIFY2(store.open(dir.filePath(QStringLiteral("good.sqlite"))),
             qPrintable(store.lastError()));
    QVERIFY(store.lastError().isEmpty());
  }

  void titlesAreCutOnAWordBoundary() {
    QCOMPARE(ChatStore::titleFrom(QStringLiteral("\n\n  short  one \n second")),
             QStringLiteral("short one"));
    const QString longWord(100, QLatin1Char('x'));
    const QString t = ChatStore::titleFrom(longWord);
    QCOMPARE(t.size(), ChatStore::kTitleLength);
    QVERIFY(t.endsWith(QStringLiteral("…")));
  }
};

QTEST_GUILESS_MAIN(TestChatStore)
#include "test_chat_store.moc"
