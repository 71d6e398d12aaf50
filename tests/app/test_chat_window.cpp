// The app as a person uses it, under a real X server: the window starts the bundled router
// and worker, a message typed into the composer and sent with Enter is answered token by
// token, and the answer shown is exactly what the bundled worker produced.
#include <QDir>
#include <QListView>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/app_controller.h"
#include "app/grpc_chat_backend.h"
#include "app/service_supervisor.h"
#include "router/worker/synthetic_engine.h"
#include "ui/chat_view.h"
#include "ui/main_window.h"

using namespace tidelane;

class TestChatWindow : public QObject {
  Q_OBJECT

 private slots:
  void typedMessageIsAnsweredByTheBundledWorker() {
    QTemporaryDir data;
    app::AppSettings settings;
    settings.workerProfile = QStringLiteral("high");
    app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
    controller.start();
    auto* window = controller.window();
    QVERIFY(QTest::qWaitForWindowExposed(window));

    auto* composer = window->findChild<QPlainTextEdit*>(QStringLiteral("composer"));
    auto* send = window->findChild<QPushButton*>(QStringLiteral("send"));
    QVERIFY(composer && send);
    QCOMPARE(composer->accessibleName(), QStringLiteral("Message"));
    QTRY_VERIFY_WITH_TIMEOUT(controller.backend()->isReady(), 30000);

    QSignalSpy tokens(controller.backend(), &ui::ChatBackend::tokenReceived);
    composer->setFocus();
    QTest::keyClicks(composer, QStringLiteral("Hello, Tidelane!"));
    QVERIFY(send->isEnabled());
    QTest::keyClick(composer, Qt::Key_Return);
    QCOMPARE(composer->toPlainText(), QString());

    auto* model = window->chatView()->model();
    QCOMPARE(model->rowCount(), 2);
    const auto answer = model->index(1);
    QTRY_COMPARE_WITH_TIMEOUT(
        answer.data(ui::ConversationModel::StateRole).value<ui::ConversationModel::State>(),
        ui::ConversationModel::State::Complete, 30000);

    std::string expected;
    for (const auto& t : worker::SyntheticEngine::AnswerTokens({{"user", "Hello, Tidelane!"}}, 0)) {
      expected += t;
    }
    QCOMPARE(answer.data(ui::ConversationModel::TextRole).toString().toStdString(), expected);
    // It streamed: one signal per token, not one lump.
    QVERIFY(tokens.count() > 5);
    QVERIFY(
        answer.data(ui::ConversationModel::TraceRole).toString().contains(QStringLiteral("local")));
    QVERIFY(send->isEnabled() == false);  // composer is empty again

    const QString shot = qEnvironmentVariable("TIDELANE_SCREENSHOT");
    if (!shot.isEmpty()) QVERIFY(window->grab().save(shot));
  }
};

QTEST_MAIN(TestChatWindow)
#include "test_chat_window.moc"
