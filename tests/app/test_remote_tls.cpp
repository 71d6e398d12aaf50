// The app talking to a remote Tidelane router over TLS: certificates made here with the openssl
// command line, a real tidelane-router serving TLS and a real worker joined to it over TLS.
// With the CA, chat and the monitor work; without it the call fails instead of falling back
// to plaintext; a CA file that is not PEM is refused with a message naming it.
#include <QDir>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "app/grpc_chat_backend.h"
#include "app/grpc_monitor_client.h"
#include "app/service_supervisor.h"

using namespace tidelane;

namespace {

bool Openssl(const QString& dir, const QStringList& args) {
  QProcess p;
  p.setWorkingDirectory(dir);
  p.start(QStringLiteral("openssl"), args);
  return p.waitForFinished(60000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
}

}  // namespace

class TestRemoteTls : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    const QString d = dir_.path();
    const QStringList ec{QStringLiteral("-newkey"), QStringLiteral("ec"),
                         QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:P-256"),
                         QStringLiteral("-nodes")};
    QVERIFY(Openssl(d, QStringList{QStringLiteral("req"), QStringLiteral("-x509")} + ec +
                           QStringList{QStringLiteral("-keyout"), QStringLiteral("ca.key"),
                                       QStringLiteral("-out"), QStringLiteral("ca.pem"),
                                       QStringLiteral("-days"), QStringLiteral("2"),
                                       QStringLiteral("-subj"), QStringLiteral("/CN=test CA")}));
    QFile ext(QDir(d).filePath(QStringLiteral("leaf.ext")));
    QVERIFY(ext.open(QIODevice::WriteOnly));
    ext.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
    ext.close();
    QVERIFY(Openssl(d, QStringList{QStringLiteral("req")} + ec +
                           QStringList{QStringLiteral("-keyout"), QStringLiteral("router.key"),
                                       QStringLiteral("-out"), QStringLiteral("router.csr"),
                                       QStringLiteral("-subj"), QStringLiteral("/CN=router")}));
    QVERIFY(Openssl(
        d, {QStringLiteral("x509"), QStringLiteral("-req"), QStringLiteral("-in"),
            QStringLiteral("router.csr"), QStringLiteral("-CA"), QStringLiteral("ca.pem"),
            QStringLiteral("-CAkey"), QStringLiteral("ca.key"), QStringLiteral("-CAcreateserial"),
            QStringLiteral("-out"), QStringLiteral("router.pem"), QStringLiteral("-days"),
            QStringLiteral("2"), QStringLiteral("-extfile"), QStringLiteral("leaf.ext")}));
    QFile::setPermissions(QDir(d).filePath(QStringLiteral("router.key")),
                          QFile::ReadOwner | QFile::WriteOwner);
    ca_ = QDir(d).filePath(QStringLiteral("ca.pem"));

    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = QDir(d).filePath(QStringLiteral("data"));
    o.routerArgs = {QStringLiteral("--tls-cert"), QDir(d).filePath(QStringLiteral("router.pem")),
                    QStringLiteral("--tls-key"), QDir(d).filePath(QStringLiteral("router.key"))};
    // The worker reaches the TLS router only if it verifies it against the CA.
    o.workers = {
        {QStringLiteral("tls-node"), QStringLiteral("high"), {QStringLiteral("--tls-ca"), ca_}}};
    supervisor_ = std::make_unique<app::ServiceSupervisor>(o);
    QSignalSpy ready(supervisor_.get(), &app::ServiceSupervisor::ready);
    supervisor_->start();
    QVERIFY(ready.wait(60000));
  }

  void cleanupTestCase() { supervisor_.reset(); }

  void chatOverTlsWithTheCa() {
    app::GrpcChatBackend backend;
    backend.setEndpoint(supervisor_->grpcAddress(), supervisor_->token(), ca_);
    QVERIFY2(backend.isReady(), qPrintable(backend.lastError()));
    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    QSignalSpy routed(&backend, &ui::ChatBackend::routed);
    backend.send({{QStringLiteral("user"), QStringLiteral("hello over TLS")}}, 5);
    QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty() || !failed.isEmpty(), 30000);
    QVERIFY2(failed.isEmpty(), qPrintable(failed.isEmpty() ? QString() : failed[0][1].toString()));
    QCOMPARE(routed.size(), 1);
    QCOMPARE(routed[0][1].toString(), QStringLiteral("tls-node"));
  }

  void withoutTheCaTheCallFailsInsteadOfGoingPlaintext() {
    app::GrpcChatBackend backend;
    backend.setEndpoint(supervisor_->grpcAddress(), supervisor_->token());
    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    QSignalSpy failed(&backend, &ui::ChatBackend::failed);
    backend.send({{QStringLiteral("user"), QStringLiteral("hello in plaintext")}}, 5);
    QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty() || !failed.isEmpty(), 30000);
    QVERIFY(finished.isEmpty());
    QVERIFY(!failed[0][1].toString().isEmpty());
  }

  void aCaFileThatIsNotPemIsRefusedByName() {
    const QString bogus = QDir(dir_.path()).filePath(QStringLiteral("bogus.der"));
    QFile f(bogus);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("\x30\x82\x01\x0a", 4);
    f.close();
    app::GrpcChatBackend backend;
    backend.setEndpoint(supervisor_->grpcAddress(), supervisor_->token(), bogus);
    QVERIFY(!backend.isReady());
    QVERIFY2(backend.lastError().contains(bogus), qPrintable(backend.lastError()));
    app::GrpcMonitorClient monitor;
    QString error;
    QVERIFY(!monitor.setCaFile(bogus, &error));
    QVERIFY(error.contains(QStringLiteral("not PEM")));
  }

  void theMonitorWatchesOverTls() {
    app::GrpcMonitorClient monitor;
    QString error;
    QVERIFY2(monitor.setCaFile(ca_, &error), qPrintable(error));
    QSignalSpy frames(&monitor, &ui::monitor::MonitorSource::frameReceived);
    monitor.start(supervisor_->grpcAddress(), supervisor_->token(), 100);
    QVERIFY(frames.wait(30000));
    monitor.stop();
  }

 private:
  QTemporaryDir dir_;
  QString ca_;
  std::unique_ptr<app::ServiceSupervisor> supervisor_;
};

QTEST_GUILESS_MAIN(TestRemoteTls)
#include "test_remote_tls.moc"
