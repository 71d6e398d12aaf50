// OpenAiChatBackend against the project's own tidelane-router HTTP API (started by the test
// with a synthetic worker under a ServiceSupervisor): the answer streams token for token
// and matches what the worker produced, with the router's SSE comments feeding the routing
// trace; Stop cancels; a wrong key gives a clear 401 message; an unreachable URL a clear
// "Cannot reach"; a stream that turns malformed (a loopback server started here, since the
// router never sends one) fails clearly and keeps every token already shown. Receipts: the
// router's answer names its receipt, which the backend fetches over HTTP, so the answer's badge
// verifies; a server that names none (another loopback server) gives no badge and no error.
#include <QHostAddress>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

#include "app/openai_chat_backend.h"
#include "app/receipt_check.h"
#include "app/service_supervisor.h"
#include "router/worker/synthetic_engine.h"
#include "ui/conversation_model.h"

using namespace tidelane;
using Model = ui::ConversationModel;

class TestOpenAiBackend : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    app::ServiceSupervisor::Options options;
    options.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    options.dataDir = data_.path();
    options.workerProfile = QStringLiteral("low");  // slow enough to stop mid-answer
    supervisor_ = std::make_unique<app::ServiceSupervisor>(options);
    QSignalSpy ready(supervisor_.get(), &app::ServiceSupervisor::ready);
    supervisor_->start();
    QVERIFY(ready.wait(30000));
    QVERIFY(!supervisor_->httpAddress().isEmpty());
    base_ = QUrl(QStringLiteral("http://") + supervisor_->httpAddress());
  }

  void cleanupTestCase() { supervisor_.reset(); }

  void streamsTheAnswerTokenForToken() {
    app::OpenAiChatBackend backend;
    backend.setEndpoint(base_, supervisor_->token());
    QVERIFY(backend.isReady());
    QCOMPARE(backend.completionsUrl().path(), QStringLiteral("/v1/chat/completions"));
    Model model;
    connectModel(backend, model);
    QSignalSpy tokens(&backend, &ui::ChatBackend::tokenReceived);
    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    QSignalSpy routed(&backend, &ui::ChatBackend::routed);

    model.appendUser(QStringLiteral("Hello, Tidelane!"));
    const QString id = backend.send(model.turns(), 0);
    model.beginAnswer(id);
    QVERIFY(finished.wait(30000));
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed[0][1].toString()));

    std::string expected;
    for (const auto& t : worker::SyntheticEngine::AnswerTokens({{"user", "Hello, Tidelane!"}}, 0)) {
      expected += t;
    }
    // One signal per token, in index order, adding up to the worker's answer.
    QVERIFY(tokens.count() > 5);
    QString text;
    for (int i = 0; i < tokens.count(); ++i) {
      QCOMPARE(tokens[i][0].toString(), id);
      QCOMPARE(tokens[i][1].toInt(), i);
      text += tokens[i][2].toString();
    }
    QCOMPARE(text.toStdString(), expected);
    QCOMPARE(model.index(1).data(Model::TextRole).toString(), text);
    QCOMPARE(model.index(1).data(Model::StateRole).value<Model::State>(), Model::State::Complete);
    // The router's comments fed the routing line.
    QCOMPARE(routed.count(), 1);
    QCOMPARE(routed[0][1].toString(), QStringLiteral("local"));
    const auto summary = finished[0][1].value<ui::AnswerSummary>();
    QCOMPARE(summary.finishReason, QStringLiteral("stop"));
    QCOMPARE(summary.completionTokens, static_cast<int>(tokens.count()));
    QVERIFY(summary.ttftMs > 0 && summary.totalMs >= summary.ttftMs);
    const QString trace = model.index(1).data(Model::TraceRole).toString();
    QVERIFY2(trace.startsWith(QStringLiteral("local ·")), qPrintable(trace));
    QVERIFY2(trace.contains(QStringLiteral("tok/s")), qPrintable(trace));
    // The router named the receipt; it was fetched and checks out against the answer shown.
    QVERIFY(!summary.receiptJson.isEmpty());
    QVERIFY2(summary.receiptJson.contains(QStringLiteral("\"tidelane.receipt\"")),
             qPrintable(summary.receiptJson.left(200)));
    QCOMPARE(badgeOf(model.index(1)), ui::ReceiptBadge::Verified);
    QCOMPARE(model.index(1).data(Model::ReceiptJsonRole).toString(), summary.receiptJson);
  }

  // Any other OpenAI-compatible server: no receipt comment, so no badge and no error.
  void anotherServerGivesNoBadge() {
    QTcpServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost));
    int requests = 0;
    connect(&server, &QTcpServer::newConnection, this, [&server, &requests] {
      QTcpSocket* socket = server.nextPendingConnection();
      connect(socket, &QTcpSocket::readyRead, socket, [socket, &requests] {
        if (!socket->readAll().contains("\r\n\r\n")) return;
        ++requests;
        socket->write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Plain\"}}]}\n\n"
            ": some other comment\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
            "data: [DONE]\n\n");
        socket->disconnectFromHost();
      });
    });
    app::OpenAiChatBackend backend;
    backend.setEndpoint(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(server.serverPort())),
                        QStringLiteral("k"), QStringLiteral("m"));
    Model model;
    connectModel(backend, model);
    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    model.appendUser(QStringLiteral("Hi"));
    const QString id = backend.send(model.turns(), 0);
    model.beginAnswer(id);
    QVERIFY(finished.wait(15000));
    QVERIFY(failed.isEmpty());
    QCOMPARE(requests, 1);  // nothing fetched besides the answer
    QVERIFY(finished[0][1].value<ui::AnswerSummary>().receiptJson.isEmpty());
    QCOMPARE(model.index(1).data(Model::TextRole).toString(), QStringLiteral("Plain"));
    QCOMPARE(badgeOf(model.index(1)), ui::ReceiptBadge::None);
  }

  void stopCancelsTheRequest() {
    app::OpenAiChatBackend backend;
    backend.setEndpoint(base_, supervisor_->token());
    QSignalSpy tokens(&backend, &ui::ChatBackend::tokenReceived);
    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    const QString id = backend.send({{QStringLiteral("user"), QStringLiteral("Stop me")}}, 0);
    QVERIFY(tokens.wait(30000));
    backend.cancel(id);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
    QCOMPARE(finished[0][1].value<ui::AnswerSummary>().finishReason, QStringLiteral("cancelled"));
  }

  void aWrongKeyIsAClear401() {
    app::OpenAiChatBackend backend;
    backend.setEndpoint(base_, QStringLiteral("not-the-token"));
    QSignalSpy tokens(&backend, &ui::ChatBackend::tokenReceived);
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    backend.send({{QStringLiteral("user"), QStringLiteral("Hi")}}, 0);
    QVERIFY(failed.wait(15000));
    const QString message = failed[0][1].toString();
    QVERIFY2(message.contains(QStringLiteral("refused the API key")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("401")), qPrintable(message));
    QVERIFY(!message.contains(QStringLiteral("not-the-token")));  // the key is never echoed
    QCOMPARE(tokens.count(), 0);
  }

  void anUnreachableUrlIsClear() {
    QTcpServer probe;  // a port that was free a moment ago and has nobody listening now
    QVERIFY(probe.listen(QHostAddress::LocalHost));
    const quint16 port = probe.serverPort();
    probe.close();
    app::OpenAiChatBackend backend;
    backend.setEndpoint(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(port)),
                        supervisor_->token());
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    backend.send({{QStringLiteral("user"), QStringLiteral("Hi")}}, 0);
    QVERIFY(failed.wait(15000));
    const QString message = failed[0][1].toString();
    QVERIFY2(message.startsWith(QStringLiteral("Cannot reach http://127.0.0.1:")),
             qPrintable(message));
  }

  void aMalformedStreamFailsAndKeepsWhatWasShown() {
    // Two good chunks, then a line that is not JSON.
    QTcpServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost));
    connect(&server, &QTcpServer::newConnection, this, [&server] {
      QTcpSocket* socket = server.nextPendingConnection();
      connect(socket, &QTcpSocket::readyRead, socket, [socket] {
        if (!socket->readAll().contains("\r\n\r\n")) return;  // the body follows the headers
        socket->write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"}}]}\n\n"
            "data: {\"choices\":[{\"index\n\n");
        socket->disconnectFromHost();
      });
    });
    app::OpenAiChatBackend backend;
    backend.setEndpoint(QUrl(QStringLiteral("http://127.0.0.1:%1/v1").arg(server.serverPort())),
                        QStringLiteral("k"));
    QCOMPARE(backend.completionsUrl().path(), QStringLiteral("/v1/chat/completions"));
    Model model;
    connectModel(backend, model);
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    model.appendUser(QStringLiteral("Hi"));
    const QString id = backend.send(model.turns(), 0);
    model.beginAnswer(id);
    QVERIFY(failed.wait(15000));
    QVERIFY2(failed[0][1].toString().contains(QStringLiteral("malformed")),
             qPrintable(failed[0][1].toString()));
    QCOMPARE(model.index(1).data(Model::TextRole).toString(), QStringLiteral("Hello world"));
    QCOMPARE(model.index(1).data(Model::StateRole).value<Model::State>(), Model::State::Failed);
  }

 private:
  static ui::ReceiptBadge badgeOf(const QModelIndex& i) {
    return static_cast<ui::ReceiptBadge>(i.data(Model::ReceiptBadgeRole).toInt());
  }

  static void connectModel(app::OpenAiChatBackend& backend, Model& model) {
    model.setReceiptChecker(&app::checkReceipt);
    connect(&backend, &ui::ChatBackend::accepted, &model, &Model::onAccepted);
    connect(&backend, &ui::ChatBackend::routed, &model, &Model::onRouted);
    connect(&backend, &ui::ChatBackend::tokenReceived, &model, &Model::onToken);
    connect(&backend, &ui::ChatBackend::finished, &model, &Model::onFinished);
    connect(&backend, &ui::ChatBackend::failed, &model, &Model::onFailed);
  }

  QTemporaryDir data_;
  std::unique_ptr<app::ServiceSupervisor> supervisor_;
  QUrl base_;
};

QTEST_MAIN(TestOpenAiBackend)
#include "test_openai_backend.moc"
