// The app's supervisor keeps the bundled services alive: a worker killed with SIGKILL is
// started again, and the next message is still answered; the router too. On stop no child
// process is left behind.
#include <signal.h>

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/grpc_chat_backend.h"
#include "app/service_supervisor.h"

using namespace tidelane;

namespace {

bool processExists(qint64 pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0;
}

// Sends one message and waits for its answer; returns the answer text or "" on failure.
QString ask(app::GrpcChatBackend& backend, const QString& text) {
  QString answer;
  bool done = false;
  QString id;
  QObject ctx;
  QObject::connect(&backend, &ui::ChatBackend::tokenReceived, &ctx,
                   [&](const QString& rid, int, const QString& t) {
                     if (rid == id) answer += t;
                   });
  QObject::connect(&backend, &ui::ChatBackend::finished, &ctx,
                   [&](const QString& rid, const ui::AnswerSummary&) { done = done || rid == id; });
  QObject::connect(&backend, &ui::ChatBackend::failed, &ctx,
                   [&](const QString& rid, const QString& m) {
                     if (rid == id) {
                       qWarning() << "chat failed:" << m;
                       answer.clear();
                       done = true;
                     }
                   });
  id = backend.send({{QStringLiteral("user"), text}}, 8);
  if (!QTest::qWaitFor([&] { return done; }, 30000)) return {};
  return answer;
}

}  // namespace

class TestSupervisor : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir data_;
  std::unique_ptr<app::ServiceSupervisor> services_;
  std::unique_ptr<app::GrpcChatBackend> backend_;

 private slots:
  void init() {
    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = data_.path();
    o.workerProfile = QStringLiteral("high");
    services_ = std::make_unique<app::ServiceSupervisor>(o);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    services_->start();
    QVERIFY(ready.wait(30000));
    backend_ = std::make_unique<app::GrpcChatBackend>();
    backend_->setEndpoint(services_->grpcAddress(), services_->token());
  }

  void cleanup() {
    backend_.reset();
    services_.reset();
  }

  void tokenFileIsPrivate() {
    const QFile::Permissions p = QFile::permissions(services_->tokenFile());
    QCOMPARE(p & (QFile::ReadGroup | QFile::ReadOther | QFile::WriteGroup | QFile::WriteOther),
             QFile::Permissions());
    QFile f(services_->tokenFile());
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(QString::fromLatin1(f.readAll()).trimmed(), services_->token());
  }

  void killedWorkerIsRestartedAndNextMessageAnswered() {
    QVERIFY(!ask(*backend_, QStringLiteral("first")).isEmpty());
    const qint64 old = services_->workerPid();
    QSignalSpy restarted(services_.get(), &app::ServiceSupervisor::childRestarted);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    QCOMPARE(::kill(static_cast<pid_t>(old), SIGKILL), 0);
    QVERIFY(ready.wait(30000));
    QCOMPARE(restarted.count(), 1);
    QCOMPARE(restarted.at(0).at(0).toString(), QStringLiteral("worker"));
    QVERIFY(services_->workerPid() != old);
    QVERIFY(!ask(*backend_, QStringLiteral("second")).isEmpty());
  }

  void killedRouterIsRestartedOnItsPortAndNextMessageAnswered() {
    const QString address = services_->grpcAddress();
    const qint64 old = services_->routerPid();
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    QCOMPARE(::kill(static_cast<pid_t>(old), SIGKILL), 0);
    QVERIFY(ready.wait(30000));
    QCOMPARE(services_->grpcAddress(), address);
    // The worker rejoins the new router by itself; the request waits for it in the queue.
    QVERIFY(!ask(*backend_, QStringLiteral("after the router came back")).isEmpty());
  }

  void stopLeavesNoProcessBehind() {
    const qint64 router = services_->routerPid();
    const qint64 worker = services_->workerPid();
    QVERIFY(processExists(router));
    QVERIFY(processExists(worker));
    services_->stop();
    QVERIFY(!processExists(router));
    QVERIFY(!processExists(worker));
  }
};

QTEST_GUILESS_MAIN(TestSupervisor)
#include "test_supervisor.moc"
