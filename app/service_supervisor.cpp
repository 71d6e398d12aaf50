#include "app/service_supervisor.h"

#include <signal.h>
#include <sys/prctl.h>

#include <QDir>
#include <QFile>
#include <QRandomGenerator>
#include <QTimer>

namespace tidelane::app {
namespace {

QString randomToken() {
  QByteArray bytes(32, Qt::Uninitialized);
  QRandomGenerator::system()->fillRange(reinterpret_cast<quint32*>(bytes.data()), bytes.size() / 4);
  return QString::fromLatin1(bytes.toHex());
}

// The value of `key=` in a ready line such as "tidelane-router ready grpc=H:P http=H:P".
QString field(const QString& line, const QString& key) {
  for (const auto& part : line.split(QLatin1Char(' '), Qt::SkipEmptyParts)) {
    if (part.startsWith(key + QLatin1Char('='))) return part.mid(key.size() + 1);
  }
  return {};
}

}  // namespace

ServiceSupervisor::ServiceSupervisor(Options options, QObject* parent)
    : QObject(parent), options_(std::move(options)) {
  router_.name = QStringLiteral("router");
  worker_.name = QStringLiteral("worker");
  clock_.start();
}

ServiceSupervisor::~ServiceSupervisor() {
  stop();
}

QString ServiceSupervisor::tokenFile() const {
  return runtimeDir_ ? runtimeDir_->filePath(QStringLiteral("token")) : QString();
}

qint64 ServiceSupervisor::routerPid() const {
  return router_.process ? router_.process->processId() : 0;
}

qint64 ServiceSupervisor::workerPid() const {
  return worker_.process ? worker_.process->processId() : 0;
}

QString ServiceSupervisor::logPath(const Child& child) const {
  return QDir(options_.dataDir).filePath(QStringLiteral("logs/%1.log").arg(child.name));
}

void ServiceSupervisor::start() {
  stopping_ = false;
  // QTemporaryDir creates its directory with mode 0700: only this user can reach the token.
  runtimeDir_ =
      std::make_unique<QTemporaryDir>(QDir::temp().filePath(QStringLiteral("tidelane-XXXXXX")));
  if (!runtimeDir_->isValid()) {
    emit failed(
        tr("Cannot create a private runtime directory: %1").arg(runtimeDir_->errorString()));
    return;
  }
  token_ = randomToken();
  QFile file(tokenFile());
  if (!file.open(QIODevice::WriteOnly) ||
      !file.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner) ||
      file.write(token_.toLatin1() + '\n') < 0) {
    emit failed(tr("Cannot write the token file %1: %2").arg(tokenFile(), file.errorString()));
    return;
  }
  file.close();
  if (!QDir().mkpath(QDir(options_.dataDir).filePath(QStringLiteral("logs")))) {
    emit failed(tr("Cannot create the data directory %1").arg(options_.dataDir));
    return;
  }
  emit statusChanged(tr("Starting the bundled router…"));
  launchRouter();
}

void ServiceSupervisor::launchRouter() {
  routerReady_ = false;
  // After the first start the router keeps its port, so the worker and clients find it again.
  const QString grpc = grpcAddress_.isEmpty() ? QStringLiteral("127.0.0.1:0") : grpcAddress_;
  const QString http = httpAddress_.isEmpty() ? QStringLiteral("127.0.0.1:0") : httpAddress_;
  launch(router_, {QStringLiteral("--grpc-listen"), grpc, QStringLiteral("--http-listen"), http,
                   QStringLiteral("--auth-token-file"), tokenFile(), QStringLiteral("--data-dir"),
                   QDir(options_.dataDir).filePath(QStringLiteral("router"))});
}

void ServiceSupervisor::launchWorker() {
  workerReady_ = false;
  QStringList args = {QStringLiteral("--router"),
                      grpcAddress_,
                      QStringLiteral("--auth-token-file"),
                      tokenFile(),
                      QStringLiteral("--profile"),
                      options_.workerProfile,
                      QStringLiteral("--name"),
                      options_.workerName};
  if (options_.modelPath.isEmpty()) {
    args << QStringLiteral("--engine") << QStringLiteral("synthetic");
  } else {
    args << QStringLiteral("--engine") << QStringLiteral("gguf") << QStringLiteral("--model")
         << options_.modelPath;
  }
  launch(worker_, args);
}

void ServiceSupervisor::launch(Child& child, const QStringList& args) {
  child.process = std::make_unique<QProcess>();
  child.pendingStdout.clear();
  QProcess* p = child.process.get();
  p->setProgram(QDir(options_.binDir).filePath(QStringLiteral("tidelane-") + child.name));
  p->setArguments(args);
  p->setStandardErrorFile(logPath(child), QIODevice::Append);
  // If the app is killed, the kernel sends the children SIGTERM instead of orphaning them.
  p->setChildProcessModifier([] { ::prctl(PR_SET_PDEATHSIG, SIGTERM); });
  connect(p, &QProcess::readyReadStandardOutput, this, [this, &child] { onReadyRead(child); });
  connect(p, &QProcess::finished, this, [this, &child](int code, QProcess::ExitStatus status) {
    onFinished(child, code, status);
  });
  connect(p, &QProcess::errorOccurred, this, [this, &child](QProcess::ProcessError error) {
    if (error == QProcess::FailedToStart) {
      emit failed(
          tr("Cannot start %1: %2").arg(child.process->program(), child.process->errorString()));
    }
  });
  p->start();
}

void ServiceSupervisor::onReadyRead(Child& child) {
  child.pendingStdout += child.process->readAllStandardOutput();
  for (qsizetype nl; (nl = child.pendingStdout.indexOf('\n')) >= 0;) {
    const QString line = QString::fromUtf8(child.pendingStdout.left(nl)).trimmed();
    child.pendingStdout.remove(0, nl + 1);
    if (!line.startsWith(QStringLiteral("tidelane-%1 ready").arg(child.name))) continue;
    if (&child == &router_) {
      grpcAddress_ = field(line, QStringLiteral("grpc"));
      httpAddress_ = field(line, QStringLiteral("http"));
      routerReady_ = true;
      if (!worker_.process || worker_.process->state() == QProcess::NotRunning) {
        emit statusChanged(tr("Starting the bundled worker…"));
        launchWorker();
      }
    } else {
      workerReady_ = true;
    }
    if (isReady()) {
      emit statusChanged(tr("Bundled router and worker are running"));
      emit ready();
    }
  }
}

void ServiceSupervisor::onFinished(Child& child, int exitCode, QProcess::ExitStatus status) {
  if (stopping_) return;
  (&child == &router_ ? routerReady_ : workerReady_) = false;
  const QString how =
      status == QProcess::CrashExit ? tr("crashed") : tr("exited with code %1").arg(exitCode);
  const qint64 now = clock_.elapsed();
  child.crashTimes.append(now);
  while (!child.crashTimes.isEmpty() && now - child.crashTimes.first() > 60000) {
    child.crashTimes.removeFirst();
  }
  if (child.crashTimes.size() > options_.maxRestartsPerMinute) {
    emit failed(
        tr("The bundled %1 %2 and keeps failing; see %3").arg(child.name, how, logPath(child)));
    return;
  }
  emit statusChanged(tr("The bundled %1 %2; restarting it").arg(child.name, how));
  // Back off 100 ms, 200 ms, 400 ms... with the number of recent failures.
  const int delay = 100 << std::min<qsizetype>(child.crashTimes.size() - 1, 5);
  QTimer::singleShot(delay, this, [this, &child] {
    if (stopping_) return;
    if (&child == &router_) {
      launchRouter();
    } else {
      launchWorker();
    }
    emit childRestarted(child.name);
  });
}

void ServiceSupervisor::stop() {
  stopping_ = true;
  for (Child* c : {&worker_, &router_}) {
    if (c->process && c->process->state() != QProcess::NotRunning) c->process->terminate();
  }
  for (Child* c : {&worker_, &router_}) {
    if (!c->process) continue;
    if (c->process->state() != QProcess::NotRunning && !c->process->waitForFinished(5000)) {
      c->process->kill();
      c->process->waitForFinished(2000);
    }
    c->process.reset();
  }
  routerReady_ = workerReady_ = false;
  runtimeDir_.reset();
}

}  // namespace tidelane::app
