// The message flows of the chat window through the real bundled router and synthetic
// worker, under a real X server, with the history in a real SQLite file: Esc stops an
// answer mid-stream and it is stored as stopped with what was shown; regenerating adds a
// second answer as a branch; editing the question and resending keeps the earlier branch
// reachable ("‹ 1/2 ›"), also after the history is read again; the routing line under an
// answer names the node once it is done, opens into the event timeline, and survives a
// reload; Copy puts a message on the clipboard.
#include <QApplication>
#include <QClipboard>
#include <QLabel>
#include <QListView>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/app_controller.h"
#include "app/chat_store.h"
#include "app/grpc_chat_backend.h"
#include "ui/chat_view.h"
#include "ui/main_window.h"

using namespace tidelane;
using Model = ui::ConversationModel;

namespace {

Model::State stateOf(const QModelIndex& i) {
  return i.data(Model::StateRole).value<Model::State>();
}

}  // namespace

class TestChatFlows : public QObject {
  Q_OBJECT

 private slots:
  void stopRegenerateEditAndTrace() {
    QTemporaryDir data;
    app::AppSettings settings;
    settings.workerProfile = QStringLiteral("low");  // ~80 ms a token: time to press Esc
    const QString history = data.filePath(QStringLiteral("history.sqlite"));
    app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path(), history);
    controller.start();
    auto* window = controller.window();
    QVERIFY(QTest::qWaitForWindowExposed(window));
    window->activateWindow();  // shortcuts (Esc, Ctrl+R) go to the active window
    QVERIFY(QTest::qWaitForWindowActive(window));
    QTRY_VERIFY_WITH_TIMEOUT(controller.backend()->isReady(), 30000);
    auto* chat = window->chatView();
    auto* model = chat->model();
    auto* store = controller.store();
    QVERIFY(store);
    auto* composer = window->findChild<QPlainTextEdit*>(QStringLiteral("composer"));
    auto* stop = window->findChild<QPushButton*>(QStringLiteral("stop"));
    QVERIFY(composer && stop);

    // 1. Send, then Esc once the answer is streaming: it stops and is stored as stopped.
    QSignalSpy tokens(controller.backend(), &ui::ChatBackend::tokenReceived);
    QSignalSpy finished(controller.backend(), &ui::ChatBackend::finished);
    chat->sendText(QStringLiteral("Tell me about tides"));
    QCOMPARE(model->rowCount(), 2);
    QVERIFY(tokens.wait(30000));
    QVERIFY(stop->isEnabled());
    composer->setFocus();
    QTest::keyClick(composer, Qt::Key_Escape);
    QTRY_COMPARE_WITH_TIMEOUT(stateOf(model->index(1)), Model::State::Cancelled, 10000);
    QCOMPARE(finished.count(), 1);
    QCOMPARE(finished[0][1].value<ui::AnswerSummary>().finishReason, QStringLiteral("cancelled"));
    const QString stoppedText = model->index(1).data(Model::TextRole).toString();
    QVERIFY(!stoppedText.isEmpty());
    QVERIFY2(model->index(1).data(Model::TraceRole).toString().contains(QStringLiteral("stopped")),
             qPrintable(model->index(1).data(Model::TraceRole).toString()));
    const qint64 id = chat->conversationId();
    QVERIFY(id > 0);
    auto stored = store->messages(id);
    QCOMPARE(stored.size(), 2);
    QCOMPARE(stored[1].state, ui::MessageState::Stopped);
    QCOMPARE(stored[1].content, stoppedText);
    QCOMPARE(stored[1].parentId, stored[0].id);
    QVERIFY(!stop->isEnabled());

    // 2. Regenerate (Ctrl+R): a second answer to the same question, as a branch.
    finished.clear();
    QTest::keySequence(composer, QKeySequence(Qt::CTRL | Qt::Key_R));
    QCOMPARE(model->rowCount(), 2);
    QCOMPARE(stateOf(model->index(1)), Model::State::Waiting);
    QTRY_COMPARE_WITH_TIMEOUT(stateOf(model->index(1)), Model::State::Complete, 30000);
    QCOMPARE(model->index(1).data(Model::BranchCountRole).toInt(), 2);
    QCOMPARE(model->index(1).data(Model::BranchRole).toInt(), 2);
    const QString regenerated = model->index(1).data(Model::TextRole).toString();
    QVERIFY(regenerated.size() > stoppedText.size());
    stored = store->messages(id);
    QCOMPARE(stored.size(), 3);
    QCOMPARE(stored[2].role, QStringLiteral("assistant"));
    QCOMPARE(stored[2].parentId, stored[0].id);  // a sibling of the stopped answer
    QTRY_COMPARE(store->messages(id)[2].state, ui::MessageState::Complete);

    // The routing line names the node after Done, opens into the timeline, and is stored.
    const QString trace = model->index(1).data(Model::TraceRole).toString();
    QVERIFY2(trace.contains(QStringLiteral("local")), qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("TTFT")), qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("tok/s")), qPrintable(trace));
    const QStringList timeline = model->index(1).data(Model::TimelineRole).toStringList();
    QVERIFY2(timeline.join(QLatin1Char('\n')).contains(QStringLiteral("routed to local")),
             qPrintable(timeline.join(QLatin1Char('\n'))));
    QVERIFY(timeline.join(QLatin1Char('\n')).contains(QStringLiteral("first token")));
    QVERIFY(timeline.last().contains(QStringLiteral("done")));
    auto* list = window->findChild<QListView*>(QStringLiteral("messages"));
    QVERIFY(list);
    const int closedHeight = list->visualRect(model->index(1)).height();
    chat->toggleTrace(1);
    QVERIFY(model->index(1).data(Model::ExpandedRole).toBool());
    QTRY_VERIFY(list->visualRect(model->index(1)).height() > closedHeight);
    QVERIFY(store->messages(id)[2].traceJson.contains(QStringLiteral("\"node\":\"local\"")));
    // Clicking the routing line (the first link from the top of the row) closes it again.
    const QRect row = list->visualRect(model->index(1));
    for (int y = row.top(); y < row.bottom() && model->index(1).data(Model::ExpandedRole).toBool();
         y += 2) {
      QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, QPoint(row.left() + 30, y));
    }
    QVERIFY(!model->index(1).data(Model::ExpandedRole).toBool());
    QCOMPARE(model->rowCount(), 2);  // and nothing else happened (no regenerate)
    QCOMPARE(store->messages(id).size(), 3);

    // The earlier, stopped answer is one click away.
    chat->showBranch(1, -1);
    QCOMPARE(model->index(1).data(Model::TextRole).toString(), stoppedText);
    QCOMPARE(model->index(1).data(Model::BranchRole).toInt(), 1);
    QCOMPARE(stateOf(model->index(1)), Model::State::Cancelled);
    chat->showBranch(1, +1);
    QCOMPARE(model->index(1).data(Model::TextRole).toString(), regenerated);

    // Copy puts the message's text on the clipboard.
    chat->copyMessage(1);
    QCOMPARE(QApplication::clipboard()->text(), regenerated);

    // 3. Edit: Esc gives up, then the edited question is sent as a new branch.
    chat->beginEdit(0);
    QCOMPARE(composer->toPlainText(), QStringLiteral("Tell me about tides"));
    auto* banner = window->findChild<QLabel*>(QStringLiteral("editBanner"));
    QVERIFY(banner && banner->isVisible());
    QTest::keyClick(composer, Qt::Key_Escape);
    QCOMPARE(chat->editingRow(), -1);
    QVERIFY(!banner->isVisible());
    QCOMPARE(composer->toPlainText(), QString());

    chat->beginEdit(0);
    composer->selectAll();
    QTest::keyClicks(composer, QStringLiteral("Tell me about waves"));
    QTest::keyClick(composer, Qt::Key_Return);
    QCOMPARE(model->rowCount(), 2);
    QCOMPARE(model->index(0).data(Model::TextRole).toString(),
             QStringLiteral("Tell me about waves"));
    QCOMPARE(model->index(0).data(Model::BranchCountRole).toInt(), 2);
    QCOMPARE(model->index(0).data(Model::BranchRole).toInt(), 2);
    QTRY_COMPARE_WITH_TIMEOUT(stateOf(model->index(1)), Model::State::Complete, 30000);
    const QString wavesAnswer = model->index(1).data(Model::TextRole).toString();
    QCOMPARE(model->index(1).data(Model::BranchCountRole).toInt(), 1);
    stored = store->messages(id);
    QCOMPARE(stored.size(), 5);
    QCOMPARE(stored[3].content, QStringLiteral("Tell me about waves"));
    QCOMPARE(stored[3].parentId, 0);  // a sibling of the first question
    QCOMPARE(stored[4].parentId, stored[3].id);

    // The earlier branch is still reachable, with both of its answers.
    chat->showBranch(0, -1);
    QCOMPARE(model->index(0).data(Model::TextRole).toString(),
             QStringLiteral("Tell me about tides"));
    QCOMPARE(model->index(1).data(Model::TextRole).toString(), regenerated);
    QCOMPARE(model->index(1).data(Model::BranchCountRole).toInt(), 2);

    // 4. Read from the file again: newest branches first, the old ones reachable, the
    // stopped answer still stopped, the trace and its timeline back.
    chat->openConversation(0);
    chat->openConversation(id);
    QCOMPARE(model->rowCount(), 2);
    QCOMPARE(model->index(0).data(Model::TextRole).toString(),
             QStringLiteral("Tell me about waves"));
    QCOMPARE(model->index(1).data(Model::TextRole).toString(), wavesAnswer);
    QVERIFY(model->index(1).data(Model::TraceRole).toString().contains(QStringLiteral("local")));
    QVERIFY(!model->index(1).data(Model::TimelineRole).toStringList().isEmpty());
    chat->showBranch(0, -1);
    QCOMPARE(model->index(1).data(Model::TextRole).toString(), regenerated);
    chat->showBranch(1, -1);
    QCOMPARE(model->index(1).data(Model::TextRole).toString(), stoppedText);
    QCOMPARE(stateOf(model->index(1)), Model::State::Cancelled);
  }
};

QTEST_MAIN(TestChatFlows)
#include "test_chat_flows.moc"
