// The app's supervisor keeps the bundled services alive: a worker killed with SIGKILL is
// started again, and the next message is still answered; the router too. On stop no child
// process is left behind. The router and worker serve on Unix sockets private to the user in
// the runtime directory, gone after stop; where a socket's path would be too long, a child
// serves on loopback TCP instead.
#include <grpcpp/create_channel.h>
#include <signal.h>
#include <sys/stat.h>

#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/grpc_chat_backend.h"
#include "app/service_supervisor.h"
#include "router/proto/auth.h"
#include "router/worker/synthetic_engine.h"
#include "tidelane/v1/chat.grpc.pb.h"

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

// The value after `flag` on the command line of process `pid`.
QString argumentOf(qint64 pid, const QString& flag) {
  QFile f(QStringLiteral("/proc/%1/cmdline").arg(pid));
  if (!f.open(QIODevice::ReadOnly)) return {};
  const QList<QByteArray> args = f.readAll().split('\0');
  for (qsizetype i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag.toUtf8()) return QString::fromUtf8(args[i + 1]);
  }
  return {};
}

// The permission bits of the socket at `path`; -1 when no socket is there.
int socketMode(const QString& path) {
  struct stat st {};
  if (::lstat(QFile::encodeName(path).constData(), &st) != 0 || !S_ISSOCK(st.st_mode)) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

bool isLoopbackTcp(const QString& address) {
  return QRegularExpression(QStringLiteral("^127\\.0\\.0\\.1:[1-9][0-9]*$"))
      .match(address)
      .hasMatch();
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

  // With a model, the bundled worker runs the inference engine: the answer is the real
  // model's (a trained tiny llama from ../shared), not the synthetic engine's.
  void workerRunsARealModelWhenGivenOne() {
    cleanup();
    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = data_.path();
    o.modelPath = QStringLiteral(TIDELANE_SOURCE_DIR "/../shared/models/aidreams260K.gguf");
    services_ = std::make_unique<app::ServiceSupervisor>(o);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    services_->start();
    QVERIFY(ready.wait(30000));
    backend_ = std::make_unique<app::GrpcChatBackend>();
    backend_->setEndpoint(services_->grpcAddress(), services_->token());
    const QString answer = ask(*backend_, QStringLiteral("Echoes of"));
    QVERIFY(!answer.isEmpty());
    const auto synthetic = worker::SyntheticEngine::AnswerTokens({{"user", "Echoes of"}}, 8);
    QString syntheticText;
    for (const auto& t : synthetic) syntheticText += QString::fromStdString(t);
    QVERIFY2(answer != syntheticText, qPrintable(answer));
  }

  void routerAndWorkerServeOnPrivateSocketsGoneAfterStop() {
    const QString runtimeDir = QFileInfo(services_->tokenFile()).absolutePath();
    const QString address = services_->grpcAddress();
    QCOMPARE(address,
             QStringLiteral("unix:") + QDir(runtimeDir).filePath(QStringLiteral("router.sock")));
    const QString routerSocket = address.mid(5);
    QCOMPARE(socketMode(routerSocket), 0600);
    const QString workerAddress = argumentOf(services_->workerPid(), QStringLiteral("--listen"));
    QVERIFY2(workerAddress.startsWith(QStringLiteral("unix:")), qPrintable(workerAddress));
    const QString workerSocket = workerAddress.mid(5);
    QCOMPARE(QFileInfo(workerSocket).absolutePath(), runtimeDir);
    QCOMPARE(socketMode(workerSocket), 0600);
    QCOMPARE(argumentOf(services_->workerPid(), QStringLiteral("--router")), address);
    // The answer went client -> router -> worker -> router -> client, both hops over sockets.
    QVERIFY(!ask(*backend_, QStringLiteral("over a Unix socket")).isEmpty());
    services_->stop();
    QVERIFY(!QFileInfo::exists(routerSocket));
    QVERIFY(!QFileInfo::exists(workerSocket));
    QVERIFY(!QFileInfo::exists(runtimeDir));
  }

  // sockaddr_un holds at most 107 bytes of path: under a deeper runtime directory the children
  // serve on loopback TCP, and the app still chats.
  void aSocketPathTooLongFallsBackToLoopbackTcp() {
    cleanup();
    const QString deep = QDir(data_.path()).filePath(QString(110, QLatin1Char('d')));
    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = data_.path();
    o.runtimeParent = deep;
    services_ = std::make_unique<app::ServiceSupervisor>(o);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    services_->start();
    QVERIFY(ready.wait(30000));
    QVERIFY(QFileInfo(services_->tokenFile()).absolutePath().startsWith(deep));
    QVERIFY2(isLoopbackTcp(services_->grpcAddress()), qPrintable(services_->grpcAddress()));
    QCOMPARE(argumentOf(services_->workerPid(), QStringLiteral("--listen")),
             QStringLiteral("127.0.0.1:0"));
    backend_ = std::make_unique<app::GrpcChatBackend>();
    backend_->setEndpoint(services_->grpcAddress(), services_->token());
    QVERIFY(!ask(*backend_, QStringLiteral("over loopback")).isEmpty());
  }

  // Each worker gets its own socket, named after it as a safe file name, even where two names
  // come out alike; one whose path would be too long serves on loopback TCP alone.
  void everyWorkerHasItsOwnSocketOrFallsBackAlone() {
    cleanup();
    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = data_.path();
    const QString longName(120, QLatin1Char('w'));
    o.workers = {{QStringLiteral("node.1"), QStringLiteral("high"), {}},
                 {QStringLiteral("node 1"), QStringLiteral("high"), {}},
                 {longName, QStringLiteral("high"), {}}};
    services_ = std::make_unique<app::ServiceSupervisor>(o);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    services_->start();
    QVERIFY(ready.wait(30000));
    const QDir runtimeDir = QFileInfo(services_->tokenFile()).absoluteDir();
    QCOMPARE(services_->grpcAddress(),
             QStringLiteral("unix:") + runtimeDir.filePath(QStringLiteral("router.sock")));
    const QList<qint64> pids = services_->childPids();
    QCOMPARE(pids.size(), 4);  // the router, then the workers in order
    QCOMPARE(argumentOf(pids[1], QStringLiteral("--listen")),
             QStringLiteral("unix:") + runtimeDir.filePath(QStringLiteral("worker-node_1.sock")));
    QCOMPARE(argumentOf(pids[2], QStringLiteral("--listen")),
             QStringLiteral("unix:") + runtimeDir.filePath(QStringLiteral("worker-node_1-2.sock")));
    QCOMPARE(argumentOf(pids[3], QStringLiteral("--listen")), QStringLiteral("127.0.0.1:0"));
    QCOMPARE(socketMode(runtimeDir.filePath(QStringLiteral("worker-node_1.sock"))), 0600);
    QCOMPARE(socketMode(runtimeDir.filePath(QStringLiteral("worker-node_1-2.sock"))), 0600);
    backend_ = std::make_unique<app::GrpcChatBackend>();
    backend_->setEndpoint(services_->grpcAddress(), services_->token());
    QVERIFY(!ask(*backend_, QStringLiteral("to any of three")).isEmpty());
  }

  // A runtime directory is new at every start; the router's socket moves with it.
  void restartedSupervisorServesInItsNewRuntimeDirectory() {
    const QString first = services_->grpcAddress();
    services_->stop();
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    services_->start();
    QVERIFY(ready.wait(30000));
    const QString runtimeDir = QFileInfo(services_->tokenFile()).absolutePath();
    QVERIFY(services_->grpcAddress() != first);
    QCOMPARE(services_->grpcAddress(),
             QStringLiteral("unix:") + QDir(runtimeDir).filePath(QStringLiteral("router.sock")));
    backend_->setEndpoint(services_->grpcAddress(), services_->token());
    QVERIFY(!ask(*backend_, QStringLiteral("after a new start")).isEmpty());
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

  void killedRouterIsRestartedOnItsAddressAndNextMessageAnswered() {
    const QString address = services_->grpcAddress();
    QVERIFY(address.startsWith(QStringLiteral("unix:")));
    const qint64 old = services_->routerPid();
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    QCOMPARE(::kill(static_cast<pid_t>(old), SIGKILL), 0);
    QVERIFY(ready.wait(30000));
    QCOMPARE(services_->grpcAddress(), address);
    // The worker rejoins the new router by itself; the request waits for it in the queue.
    QVERIFY(!ask(*backend_, QStringLiteral("after the router came back")).isEmpty());
  }

  // The router is killed with SIGKILL mid-answer. The supervisor brings it back on the same
  // socket with the same data directory; the client resumes the request by id from the last
  // token it had, and receives exactly the rest: nothing lost, nothing repeated.
  void routerKilledMidAnswerResumesFromTheLedger() {
    auto channel = grpc::CreateChannel(services_->grpcAddress().toStdString(),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::ChatService::NewStub(channel);
    v1::ChatRequest request;
    request.set_request_id("resume-after-crash");
    auto* m = request.add_messages();
    m->set_role("user");
    m->set_content("Tell me a long story about the tide.");
    request.mutable_sampling()->set_max_tokens(30);

    std::vector<std::string> tokens;
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    {
      grpc::ClientContext c;
      auth::AttachBearer(c, services_->token().toStdString());
      auto reader = stub->Chat(&c, request);
      for (v1::ChatEvent e; reader->Read(&e);) {
        if (!e.has_token()) continue;
        QCOMPARE(e.token().index(), static_cast<unsigned>(tokens.size()));
        tokens.push_back(e.token().text());
        if (tokens.size() == 3) ::kill(static_cast<pid_t>(services_->routerPid()), SIGKILL);
      }
      QVERIFY(!reader->Finish().ok());  // the stream broke with the router
    }
    QVERIFY(tokens.size() >= 3);
    QVERIFY(ready.wait(30000));

    v1::ResumeRequest resume;
    resume.set_request_id("resume-after-crash");
    resume.set_from_index(static_cast<std::uint32_t>(tokens.size()));
    grpc::ClientContext c;
    auth::AttachBearer(c, services_->token().toStdString());
    auto reader = stub->Resume(&c, resume);
    bool done = false;
    for (v1::ChatEvent e; reader->Read(&e);) {
      if (e.has_token()) {
        QCOMPARE(e.token().index(), static_cast<unsigned>(tokens.size()));
        tokens.push_back(e.token().text());
      }
      done = done || e.has_done();
    }
    const auto status = reader->Finish();
    QVERIFY2(status.ok(), status.error_message().c_str());
    QVERIFY(done);
    std::vector<worker::Message> messages{{"user", "Tell me a long story about the tide."}};
    QCOMPARE(tokens, worker::SyntheticEngine::AnswerTokens(messages, 30));

    // Unknown ids are refused clearly.
    grpc::ClientContext u;
    auth::AttachBearer(u, services_->token().toStdString());
    resume.set_request_id("never-sent");
    auto unknown = stub->Resume(&u, resume);
    v1::ChatEvent e;
    QVERIFY(!unknown->Read(&e));
    QCOMPARE(unknown->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
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
