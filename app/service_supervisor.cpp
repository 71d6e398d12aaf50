#include "app/service_supervisor.h"

#include <signal.h>
#include <sys/prctl.h>

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QSet>
#include <QTimer>
#include <algorithm>
#include <utility>

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

const QString kLoopback = QStringLiteral("127.0.0.1:0");

// sockaddr_un::sun_path holds 108 bytes, the terminating NUL included.
constexpr qsizetype kMaxSocketPath = 107;

bool isUnixAddress(const QString& address) {
  return address.startsWith(QLatin1String("unix:"));
}

// True when `args` give `flag`, as "--flag VALUE" or "--flag=VALUE".
bool hasFlag(const QStringList& args, const QString& flag) {
  return std::any_of(args.begin(), args.end(), [&flag](const QString& arg) {
    return arg == flag || arg.startsWith(flag + QLatin1Char('='));
  });
}

// A worker's name as a file name: a name may hold '/', spaces or anything else.
QString sanitised(const QString& name) {
  QString out = name;
  for (QChar& c : out) {
    const bool safe = (c >= QLatin1Char('a') && c <= QLatin1Char('z')) ||
                      (c >= QLatin1Char('A') && c <= QLatin1Char('Z')) ||
                      (c >= QLatin1Char('0') && c <= QLatin1Char('9')) || c == QLatin1Char('_') ||
                      c == QLatin1Char('-');
    if (!safe) c = QLatin1Char('_');
  }
  return out;
}

// "worker-NAME.sock", with a number added where two names sanitise alike ("a.b", "a_b"); the
// prefix keeps it apart from the router's socket and the token file.
QString workerSocketName(const QString& name, QSet<QString>& taken) {
  const QString base = QStringLiteral("worker-") + sanitised(name);
  QString candidate = base;
  for (int n = 2; taken.contains(candidate); ++n) {
    candidate = base + QLatin1Char('-') + QString::number(n);
  }
  taken.insert(candidate);
  return candidate + QStringLiteral(".sock");
}

}  // namespace

ServiceSupervisor::ServiceSupervisor(Options options, QObject* parent)
    : QObject(parent), options_(std::move(options)) {
  router_.program = router_.name = QStringLiteral("router");
  router_.socketName = QStringLiteral("router.sock");
  if (options_.workers.isEmpty()) {
    auto worker = std::make_unique<Child>();
    worker->program = worker->name = QStringLiteral("worker");
    worker->spec = {options_.workerName, options_.workerProfile, {}};
    workers_.push_back(std::move(worker));
  }
  for (const auto& spec : options_.workers) {
    auto worker = std::make_unique<Child>();
    worker->program = QStringLiteral("worker");
    worker->name = spec.name;
    worker->spec = spec;
    workers_.push_back(std::move(worker));
  }
  QSet<QString> taken;
  for (const auto& w : workers_) w->socketName = workerSocketName(w->spec.name, taken);
  clock_.start();
}

ServiceSupervisor::~ServiceSupervisor() {
  stop();
  workerIdentity_.fill(0);
}

void ServiceSupervisor::setWorkerIdentity(const QByteArray& identity, const QString& file) {
  workerIdentity_.fill(0);
  workerIdentity_ = identity;
  workerIdentityFile_ = file;
  const bool wasKnown = std::exchange(identityKnown_, true);
  if (wasKnown || !options_.workers.isEmpty() || stopping_ || !router_.ready) return;
  // The router is up and the worker was waiting for its key (onReadyRead held it back).
  Child& worker = *workers_.front();
  if (!worker.process || worker.process->state() == QProcess::NotRunning) launchWorker(worker);
}

QString ServiceSupervisor::tokenFile() const {
  return runtimeDir_ ? runtimeDir_->filePath(QStringLiteral("token")) : QString();
}

qint64 ServiceSupervisor::routerPid() const {
  return router_.process ? router_.process->processId() : 0;
}

qint64 ServiceSupervisor::workerPid() const {
  const Child& worker = *workers_.front();
  return worker.process ? worker.process->processId() : 0;
}

QList<qint64> ServiceSupervisor::childPids() const {
  QList<qint64> pids;
  if (router_.process && router_.process->processId() > 0) pids << router_.process->processId();
  for (const auto& w : workers_) {
    if (w->process && w->process->processId() > 0) pids << w->process->processId();
  }
  for (const auto& p : retiring_) {
    if (p->processId() > 0) pids << p->processId();
  }
  return pids;
}

bool ServiceSupervisor::isReady() const {
  if (!router_.ready) return false;
  for (const auto& w : workers_) {
    if (!w->ready) return false;
  }
  return true;
}

QString ServiceSupervisor::logPath(const Child& child) const {
  return QDir(options_.dataDir).filePath(QStringLiteral("logs/%1.log").arg(child.name));
}

QString ServiceSupervisor::socketAddress(const Child& child) const {
  if (!runtimeDir_) return {};
  const QString path =
      QDir::cleanPath(QDir(runtimeDir_->path()).absoluteFilePath(child.socketName));
  if (QFile::encodeName(path).size() > kMaxSocketPath) return {};
  return QStringLiteral("unix:") + path;
}

QString ServiceSupervisor::routerListenAddress() const {
  // TLS names hosts, which a socket has none of (the router refuses the pair): a router given a
  // certificate is one to be reached from other machines.
  if (hasFlag(options_.routerArgs, QStringLiteral("--tls-cert"))) return kLoopback;
  // A path too long for a socket address (a deep Options::runtimeParent) cannot be bound at all,
  // so loopback TCP, guarded by the token alone, is the way the app still gets a router.
  const QString unix = socketAddress(router_);
  return unix.isEmpty() ? kLoopback : unix;
}

QString ServiceSupervisor::workerListenAddress(const Child& worker) const {
  // As for the router; a router given a CA also calls its workers over TLS.
  if (hasFlag(worker.spec.extraArgs, QStringLiteral("--tls-cert")) ||
      hasFlag(options_.routerArgs, QStringLiteral("--tls-ca"))) {
    return kLoopback;
  }
  const QString unix = socketAddress(worker);
  return unix.isEmpty() ? kLoopback : unix;
}

void ServiceSupervisor::start() {
  stopping_ = false;
  // A socket of an earlier start went with its runtime directory; a port may still be free.
  if (isUnixAddress(grpcAddress_)) grpcAddress_.clear();
  // QTemporaryDir creates its directory with mode 0700: only this user can reach the token.
  const QDir parent =
      options_.runtimeParent.isEmpty() ? QDir::temp() : QDir(options_.runtimeParent);
  if (!options_.runtimeParent.isEmpty()) QDir().mkpath(options_.runtimeParent);
  runtimeDir_ = std::make_unique<QTemporaryDir>(parent.filePath(QStringLiteral("tidelane-XXXXXX")));
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
  router_.ready = false;
  // After the first start the router keeps its address, so the worker and clients find it again
  // (a socket left by the router that died is replaced by the new one).
  const QString grpc = grpcAddress_.isEmpty() ? routerListenAddress() : grpcAddress_;
  const QString http = httpAddress_.isEmpty() ? kLoopback : httpAddress_;
  routerListen_ = grpc;
  launch(router_,
         QStringList{QStringLiteral("--grpc-listen"), grpc, QStringLiteral("--http-listen"), http,
                     QStringLiteral("--auth-token-file"), tokenFile(), QStringLiteral("--data-dir"),
                     QDir(options_.dataDir).filePath(QStringLiteral("router"))} +
             options_.routerArgs);
}

void ServiceSupervisor::launchWorker(Child& worker) {
  worker.ready = false;
  const bool chatWorker = options_.workers.isEmpty();
  // Started by setWorkerIdentity() once the key is known, or by retire() once the worker it
  // replaces has exited.
  if (chatWorker && options_.awaitWorkerIdentity && !identityKnown_) return;
  if (chatWorker && !retiring_.empty()) return;
  QStringList args = {QStringLiteral("--router"),
                      grpcAddress_,
                      QStringLiteral("--auth-token-file"),
                      tokenFile(),
                      QStringLiteral("--profile"),
                      worker.spec.profile,
                      QStringLiteral("--name"),
                      worker.spec.name};
  // Where the caller chose, it stays as chosen.
  if (!hasFlag(worker.spec.extraArgs, QStringLiteral("--listen"))) {
    args << QStringLiteral("--listen") << workerListenAddress(worker);
  }
  args += worker.spec.extraArgs;
  // Only the chat app's own worker (no Options::workers) runs a model.
  if (options_.modelPath.isEmpty() || !options_.workers.isEmpty()) {
    args << QStringLiteral("--engine") << QStringLiteral("synthetic");
  } else {
    args << QStringLiteral("--engine") << QStringLiteral("gguf") << QStringLiteral("--model")
         << options_.modelPath;
  }
  const bool keyOverStdin = chatWorker && !workerIdentity_.isEmpty();
  if (keyOverStdin) {
    args << QStringLiteral("--identity-stdin");
  } else if (chatWorker && !workerIdentityFile_.isEmpty()) {
    args << QStringLiteral("--identity-file") << workerIdentityFile_;
  }
  launch(worker, args);
  if (keyOverStdin) {
    // One line, then end of input: the pipe carries the key, never a file or the command line.
    QProcess* p = worker.process.get();
    QByteArray line = workerIdentity_;
    if (!line.endsWith('\n')) line += '\n';
    p->write(line);
    line.fill(0);
    p->closeWriteChannel();
  }
}

void ServiceSupervisor::launch(Child& child, const QStringList& args) {
  child.process = std::make_unique<QProcess>();
  child.pendingStdout.clear();
  QProcess* p = child.process.get();
  p->setProgram(QDir(options_.binDir).filePath(QStringLiteral("tidelane-") + child.program));
  p->setArguments(args);
  p->setStandardErrorFile(logPath(child), QIODevice::Append);
  // If the app is killed, the kernel signals the children instead of orphaning them.
  p->setChildProcessModifier(
      [signal = options_.parentDeathSignal] { ::prctl(PR_SET_PDEATHSIG, signal); });
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
    if (!line.startsWith(QStringLiteral("tidelane-%1 ready").arg(child.program))) continue;
    child.ready = true;
    if (&child == &router_) {
      // The ready line is split at spaces, which a socket's path may hold; the path it reports
      // is the absolute one it was given.
      grpcAddress_ =
          isUnixAddress(routerListen_) ? routerListen_ : field(line, QStringLiteral("grpc"));
      httpAddress_ = field(line, QStringLiteral("http"));
      bool announced = false;
      for (const auto& w : workers_) {
        if (w->process && w->process->state() != QProcess::NotRunning) continue;
        if (!announced) emit statusChanged(tr("Starting the bundled worker…"));
        announced = true;
        launchWorker(*w);
      }
    }
    if (isReady()) {
      emit statusChanged(tr("Bundled router and worker are running"));
      emit ready();
    }
  }
}

void ServiceSupervisor::onFinished(Child& child, int exitCode, QProcess::ExitStatus status) {
  if (stopping_) return;
  child.ready = false;
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
      launchWorker(child);
    }
    emit childRestarted(child.name);
  });
}

void ServiceSupervisor::stop() {
  stopping_ = true;
  // Workers first, so they do not spend their last moments reconnecting to a gone router;
  // every child gets SIGTERM before any is waited for, so the wait is bounded once, not per
  // child.
  std::vector<Child*> children;
  for (const auto& w : workers_) children.push_back(w.get());
  children.push_back(&router_);
  for (Child* c : children) {
    if (c->process && c->process->state() != QProcess::NotRunning) c->process->terminate();
  }
  const QDeadlineTimer deadline(options_.stopGraceMs);
  // Replaced workers still exiting already had SIGTERM; they are waited for like the rest (their
  // finished() handlers are dropped first: nothing is to start after them now).
  for (auto& p : std::exchange(retiring_, {})) {
    p->disconnect(this);
    if (p->state() != QProcess::NotRunning &&
        !p->waitForFinished(static_cast<int>(std::max<qint64>(1, deadline.remainingTime())))) {
      p->kill();
      p->waitForFinished(2000);
    }
  }
  for (Child* c : children) {
    if (!c->process) continue;
    if (c->process->state() != QProcess::NotRunning &&
        !c->process->waitForFinished(
            static_cast<int>(std::max<qint64>(1, deadline.remainingTime())))) {
      c->process->kill();
      c->process->waitForFinished(2000);
    }
    c->process.reset();
  }
  for (Child* c : children) c->ready = false;
  runtimeDir_.reset();
}

void ServiceSupervisor::stopAsync() {
  stopping_ = true;
  // Workers first, as in stop(); none is waited for here.
  std::vector<Child*> children;
  for (const auto& w : workers_) children.push_back(w.get());
  children.push_back(&router_);
  for (Child* c : children) {
    c->ready = false;
    if (c->process && c->process->state() != QProcess::NotRunning) {
      retire(std::move(c->process));
    } else {
      c->process.reset();
    }
  }
  if (retiring_.empty()) {
    runtimeDir_.reset();
    QTimer::singleShot(0, this, &ServiceSupervisor::stopped);  // later, as promised
  }
}

void ServiceSupervisor::setModelPath(const QString& path) {
  options_.modelPath = path;
  if (!options_.workers.isEmpty() || workers_.empty() || stopping_) return;
  Child& worker = *workers_.front();
  if (!worker.process || worker.process->state() == QProcess::NotRunning) return;
  emit statusChanged(
      path.isEmpty() ? tr("Restarting the bundled worker on the synthetic engine…")
                     : tr("Restarting the bundled worker on %1…").arg(QFileInfo(path).fileName()));
  worker.ready = false;
  retire(std::move(worker.process));
}

void ServiceSupervisor::retire(std::unique_ptr<QProcess> process) {
  QProcess* p = process.get();
  // Disconnected first, so its exit is a replacement, not a crash.
  p->disconnect(this);
  retiring_.push_back(std::move(process));
  // The GUI thread never waits for it: its exit (or SIGKILL after the grace period) comes back
  // through the event loop.
  connect(p, &QProcess::finished, this, [this, p] {
    const auto it = std::find_if(retiring_.begin(), retiring_.end(),
                                 [p](const auto& r) { return r.get() == p; });
    if (it == retiring_.end()) return;
    it->release()->deleteLater();  // not inside its own signal
    retiring_.erase(it);
    if (stopping_) {
      if (retiring_.empty()) {
        runtimeDir_.reset();
        emit stopped();
      }
      return;
    }
    // Without a router the worker starts when the router reports ready (onReadyRead).
    Child& worker = *workers_.front();
    if (retiring_.empty() && !stopping_ && router_.ready &&
        (!worker.process || worker.process->state() == QProcess::NotRunning)) {
      launchWorker(worker);
    }
  });
  QTimer::singleShot(options_.stopGraceMs, p, [p] {
    if (p->state() != QProcess::NotRunning) p->kill();
  });
  p->terminate();
}

}  // namespace tidelane::app
