// History survives kill -9: the real `tidelane` binary, under the test's X server with a
// fresh data dir, sends a message whose answer streams slowly (the bundled synthetic
// worker's low profile); the app is SIGKILLed mid-answer. The history file, read directly,
// holds the user's message and the answer as far as it had got; opened again, the cut-off
// answer is marked stopped and nothing else is lost.
#include <signal.h>

#include <QProcess>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QTemporaryDir>
#include <QTest>

#include "app/chat_store.h"
#include "router/worker/synthetic_engine.h"

using namespace tidelane;

namespace {

struct Row {
  QString role, content, state;
};

// The messages as another process sees them in the file (no recovery, no writes).
QList<Row> rawMessages(const QString& path) {
  QList<Row> out;
  {
    auto db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("peek"));
    db.setDatabaseName(path);
    db.setConnectOptions(QStringLiteral("QSQLITE_BUSY_TIMEOUT=2000"));
    if (db.open()) {
      QSqlQuery q(db);
      if (q.exec(QStringLiteral("SELECT role, content, state FROM messages ORDER BY id"))) {
        while (q.next())
          out.append({q.value(0).toString(), q.value(1).toString(), q.value(2).toString()});
      }
    }
  }
  QSqlDatabase::removeDatabase(QStringLiteral("peek"));
  return out;
}

}  // namespace

class TestHistorySurvivesKill : public QObject {
  Q_OBJECT

 private slots:
  void aKilledAppKeepsTheAnswerSoFar() {
    // A question whose synthetic answer is long enough to be caught mid-stream.
    QString question;
    std::string full;
    for (int i = 0; i < 500 && question.isEmpty(); ++i) {
      const QString q = QStringLiteral("Tell me about the tides, part %1").arg(i);
      const auto tokens = worker::SyntheticEngine::AnswerTokens({{"user", q.toStdString()}}, 0);
      if (tokens.size() >= 32) {
        question = q;
        for (const auto& t : tokens) full += t;
      }
    }
    QVERIFY(!question.isEmpty());

    QTemporaryDir data;
    const QString history = data.filePath(QStringLiteral("history.sqlite"));
    QProcess app;
    app.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    app.start(QStringLiteral(TIDELANE_BIN_DIR) + QStringLiteral("/tidelane"),
              {QStringLiteral("--data-dir"), data.path(), QStringLiteral("--worker-profile"),
               QStringLiteral("low"), QStringLiteral("--send"), question});
    QVERIFY2(app.waitForStarted(10000), qPrintable(app.errorString()));

    // Wait until part of the answer is on disk, then kill the app without warning.
    QList<Row> seen;
    QTRY_VERIFY_WITH_TIMEOUT(
        (seen = rawMessages(history)).size() == 2 && !seen[1].content.isEmpty(), 60000);
    QCOMPARE(seen[1].state, QStringLiteral("streaming"));  // caught mid-answer
    ::kill(static_cast<pid_t>(app.processId()), SIGKILL);
    QVERIFY(app.waitForFinished(10000));
    QCOMPARE(app.exitStatus(), QProcess::CrashExit);

    const auto after = rawMessages(history);
    QCOMPARE(after.size(), 2);
    QCOMPARE(after[0].role, QStringLiteral("user"));
    QCOMPARE(after[0].content, question);
    QCOMPARE(after[1].role, QStringLiteral("assistant"));
    QVERIFY(after[1].content.size() >= seen[1].content.size());  // nothing written is lost
    QVERIFY2(QString::fromStdString(full).startsWith(after[1].content),
             qPrintable(after[1].content));
    QVERIFY(after[1].content.size() < static_cast<qsizetype>(full.size()));  // cut off

    // Started again, the history shows the cut-off answer as stopped.
    app::ChatStore store;
    QVERIFY2(store.open(history), qPrintable(store.lastError()));
    const auto conversations = store.conversations();
    QCOMPARE(conversations.size(), 1);
    QCOMPARE(conversations[0].title, question);
    const auto messages = store.messages(conversations[0].id);
    QCOMPARE(messages.size(), 2);
    QCOMPARE(messages[1].state, ui::MessageState::Stopped);
    QCOMPARE(messages[1].content, after[1].content);
    QCOMPARE(store.search(after[1].content.section(QLatin1Char(' '), 0, 0)).size(), 1);
  }
};

QTEST_MAIN(TestHistorySurvivesKill)
#include "test_history_survives_kill.moc"
