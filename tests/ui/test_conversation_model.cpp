// The conversation model behind the chat view: answers grow token by token and ignore a token
// whose index is not the next one; the line under an answer tells the place in line while
// waiting, then node, redirects, shortening and speed; failed answers are left out of the
// next request's conversation.
#include <QTest>

#include "ui/conversation_model.h"

using tidelane::ui::AnswerSummary;
using tidelane::ui::ConversationModel;

class TestConversationModel : public QObject {
  Q_OBJECT

 private slots:
  void answersStreamInOrderAndTheTraceTellsTheStory() {
    ConversationModel m;
    m.appendUser(QStringLiteral("Hi"));
    m.beginAnswer(QStringLiteral("r1"));
    QVERIFY(m.busy());
    m.onAccepted(QStringLiteral("r1"), 3, 4200);
    const auto answer = m.index(1);
    QCOMPARE(answer.data(ConversationModel::TraceRole).toString(),
             QStringLiteral("#3 in line, about 5 s"));
    m.onRouted(QStringLiteral("r1"), QStringLiteral("gpu-a"), QStringLiteral("mixed"));
    m.onToken(QStringLiteral("r1"), 0, QStringLiteral("Hello"));
    m.onToken(QStringLiteral("r1"), 2, QStringLiteral(" skipped"));  // not the next index
    m.onToken(QStringLiteral("r1"), 0, QStringLiteral("Hello"));     // a repeat
    m.onToken(QStringLiteral("r1"), 1, QStringLiteral(" there"));
    QCOMPARE(answer.data(ConversationModel::TextRole).toString(), QStringLiteral("Hello there"));
    m.onRedirected(QStringLiteral("r1"), QStringLiteral("gpu-a"), QStringLiteral("cpu-b"),
                   QStringLiteral("worker failed"));
    m.onDegraded(QStringLiteral("r1"), QStringLiteral("at most 128 tokens"));
    AnswerSummary s;
    s.ttftMs = 120;
    s.tokensPerSecond = 41.5;
    s.finishReason = QStringLiteral("stop");
    m.onFinished(QStringLiteral("r1"), s);
    QVERIFY(!m.busy());
    const QString trace = answer.data(ConversationModel::TraceRole).toString();
    QVERIFY2(trace.contains(QStringLiteral("cpu-b (mixed)")), qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("redirected gpu-a → cpu-b: worker failed")),
             qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("shortened: at most 128 tokens")), qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("TTFT 120 ms")), qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("41.5 tok/s")), qPrintable(trace));
    QCOMPARE(answer.data(ConversationModel::StateRole).value<ConversationModel::State>(),
             ConversationModel::State::Complete);
  }

  void failedAnswersAreNotSentBack() {
    ConversationModel m;
    m.appendUser(QStringLiteral("first"));
    m.beginAnswer(QStringLiteral("a"));
    m.onFailed(QStringLiteral("a"), QStringLiteral("no worker"));
    m.appendUser(QStringLiteral("second"));
    const auto turns = m.turns();
    QCOMPARE(turns.size(), 2);
    QCOMPARE(turns[0].content, QStringLiteral("first"));
    QCOMPARE(turns[1].content, QStringLiteral("second"));
    QVERIFY(m.index(1)
                .data(ConversationModel::TraceRole)
                .toString()
                .contains(QStringLiteral("no worker")));
  }
};

QTEST_GUILESS_MAIN(TestConversationModel)
#include "test_conversation_model.moc"
