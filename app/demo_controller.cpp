#include "app/demo_controller.h"

#include <signal.h>
#include <sys/prctl.h>

#include <QApplication>
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocale>
#include <QTimer>
#include <algorithm>
#include <cstdio>

#include "app/grpc_monitor_client.h"
#include "app/service_supervisor.h"
#include "ui/monitor/demo_window.h"

namespace tidelane::app {
namespace {

using ui::monitor::DemoScore;
using ui::monitor::MonitorFrame;
using ui::monitor::SurgePattern;

constexpr double kParalysed = 0.999;  // binding saturation at which a node counts as paralysed

// Arrival window of a surge, seconds (before Options::windowScale).
double windowSeconds(SurgePattern pattern) {
  return pattern == SurgePattern::Flash ? 2.0 : 20.0;
}

QString number(qint64 n) {
  return QLocale(QLocale::English).toString(n);
}

QString seconds(double s) {
  return s < 10 ? QString::number(s, 'f', 1) : QString::number(std::lround(s));
}

// The last lines of a log, for an error message that says why without opening the file.
QString tail(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  const QList<QByteArray> lines = f.readAll().trimmed().split('\n');
  return QString::fromUtf8(lines.mid(std::max<qsizetype>(0, lines.size() - 3)).join('\n'));
}

}  // namespace

DemoController::DemoController(Options options, QObject* parent)
    : DemoSource(parent), options_(std::move(options)) {
  sides_[0].policy = options_.naivePolicy;
  sides_[1].policy = options_.tidalPolicy;
  for (int i = 0; i < 2; ++i) {
    sides_[i].monitor = std::make_unique<GrpcMonitorClient>();
    connect(sides_[i].monitor.get(), &GrpcMonitorClient::frameReceived, this,
            [this, i](const MonitorFrame& frame) { onFrame(i, frame); });
  }
  caption_ =
      tr("Pick a surge and press Start: two identical clusters, one naive router, one "
         "tidal.");
}

DemoController::~DemoController() {
  DemoController::stop();  // this class's, whatever derives from it: the sides are its own
  // Nothing outlives the controller: what is still exiting is waited for here (bounded).
  for (auto& p : stoppingSurges_) {
    p->disconnect(this);
    if (p->state() != QProcess::NotRunning && !p->waitForFinished(3000)) {
      p->kill();
      p->waitForFinished(2000);
    }
  }
  stoppingSurges_.clear();
  for (auto& c : stoppingClusters_) c->disconnect(this);
  stoppingClusters_.clear();  // each supervisor's destructor waits for its children
  stoppedDirs_.clear();
}

ui::monitor::MonitorSource* DemoController::monitor(int side) {
  return sides_[side].monitor.get();
}

QString DemoController::sideTitle(int side) const {
  return side == 0 ? tr("Naive router — %1").arg(sides_[0].policy)
                   : tr("Tidal router — %1").arg(sides_[1].policy);
}

QString DemoController::findTrace(const QString& binDir) {
  const QString name = QStringLiteral("traces/azure-llm-2023-conv.csv");
  for (const QString& dir : {QDir(binDir).filePath(QStringLiteral("../share/tidelane")),
                             QStringLiteral(TIDELANE_SOURCE_SHARED_DIR)}) {
    const QString path = QDir(dir).filePath(name);
    if (QFileInfo::exists(path)) return QDir::cleanPath(path);
  }
  return {};
}

QList<qint64> DemoController::childPids() const {
  QList<qint64> pids;
  for (const Side& s : sides_) {
    if (s.services) pids += s.services->childPids();
    if (s.surge && s.surge->processId() > 0) pids << s.surge->processId();
  }
  for (const auto& c : stoppingClusters_) pids += c->childPids();
  for (const auto& p : stoppingSurges_) {
    if (p->processId() > 0) pids << p->processId();
  }
  return pids;
}

QString DemoController::runDirectory() const {
  return runDir_ ? runDir_->path() : QString();
}

QString DemoController::surgeLogPath(int side) const {
  return QDir(runDirectory())
      .filePath(side == 0 ? QStringLiteral("naive/logs/surge.log")
                          : QStringLiteral("tidal/logs/surge.log"));
}

QString DemoController::reportPath(int side) const {
  return QDir(runDirectory())
      .filePath(side == 0 ? QStringLiteral("naive/surge.json")
                          : QStringLiteral("tidal/surge.json"));
}

void DemoController::setState(State state) {
  if (state_ == state) return;
  state_ = state;
  emit stateChanged(state);
  updateCaption();
}

void DemoController::fail(const QString& message) {
  // Keep the logs the message points to; stop() would otherwise remove them.
  if (runDir_) runDir_->setAutoRemove(false);
  const QString kept = runDirectory();
  stop();
  setState(State::Failed);
  caption_ = message;
  emit captionChanged(caption_);
  emit failed(kept.isEmpty() ? message : tr("%1 (logs kept in %2)").arg(message, kept));
}

void DemoController::run(const ui::monitor::SurgeSpec& surge) {
  if (state_ == State::Surging || state_ == State::Starting) return;
  if (surge.pattern == SurgePattern::Trace && options_.tracePath.isEmpty()) {
    emit failed(
        tr("The Azure trace (traces/azure-llm-2023-conv.csv) was not found; pick "
           "another pattern"));
    return;
  }
  pending_ = surge;
  surgePending_ = true;
  if (state_ == State::Ready || state_ == State::Finished) {
    startSurge();
  } else {
    startClusters();
  }
}

void DemoController::startClusters() {
  runDir_ = std::make_unique<QTemporaryDir>(
      QDir(options_.dataDir).filePath(QStringLiteral("demo-XXXXXX")));
  if (!QDir().mkpath(options_.dataDir) || !runDir_->isValid()) {
    const QString why = tr("Cannot create the demo's directory in %1: %2")
                            .arg(options_.dataDir, runDir_->errorString());
    runDir_.reset();
    fail(why);
    return;
  }
  setState(State::Starting);
  for (int i = 0; i < 2; ++i) {
    Side& s = sides_[i];
    ServiceSupervisor::Options o;
    o.binDir = options_.binDir;
    o.dataDir =
        QDir(runDirectory()).filePath(i == 0 ? QStringLiteral("naive") : QStringLiteral("tidal"));
    o.runtimeParent = o.dataDir;
    o.parentDeathSignal = SIGKILL;
    // Stop must feel immediate and nothing in these clusters needs a clean shutdown: workers
    // cut their simulated work short on SIGTERM, and this bounds anything slower.
    o.stopGraceMs = 1000;
    // The naive side is a published baseline as published: no front door, every request goes
    // straight to a node. The tidal side shapes the surge with admission and a fair queue.
    o.routerArgs = {QStringLiteral("--policy"), s.policy, QStringLiteral("--admission"),
                    i == 0 ? QStringLiteral("none") : QStringLiteral("tidal")};
    // The same mix as scripts/surge-demo: 1 in 8 high, 3 in 8 mid, the rest low.
    for (int w = 0; w < options_.workersPerSide; ++w) {
      const int k = w % 8;
      const QString profile = k == 0   ? QStringLiteral("high")
                              : k <= 3 ? QStringLiteral("mid")
                                       : QStringLiteral("low");
      // No drain on SIGTERM: Stop must not wait for answers nobody is waiting for.
      o.workers.append({QStringLiteral("%1-%2").arg(profile).arg(w),
                        profile,
                        {QStringLiteral("--drain-timeout"), QStringLiteral("0")}});
    }
    s.services = std::make_unique<ServiceSupervisor>(o);
    connect(s.services.get(), &ServiceSupervisor::ready, this, [this, i] {
      Side& side = sides_[i];
      side.monitor->start(side.services->grpcAddress(), side.services->token());
      if (state_ == State::Starting && sides_[0].services->isReady() &&
          sides_[1].services->isReady()) {
        setState(State::Ready);
        if (surgePending_) startSurge();
      }
    });
    // Queued: fail() destroys the supervisor, which must not happen inside its own signal.
    connect(
        s.services.get(), &ServiceSupervisor::failed, this,
        [this, i](const QString& message) { fail(sideTitle(i) + QStringLiteral(": ") + message); },
        Qt::QueuedConnection);
    s.services->start();
    if (state_ != State::Starting) return;  // start() failed at once; fail() cleaned up
  }
}

void DemoController::startSurge() {
  surgePending_ = false;
  const double window = windowSeconds(pending_.pattern) * options_.windowScale;
  QStringList common = {
      QStringLiteral("--users"),        QString::number(pending_.users),
      QStringLiteral("--ramp-seconds"), QString::number(window),
      QStringLiteral("--turns"),        QString::number(options_.turns),
      QStringLiteral("--max-tokens"),   QString::number(options_.maxTokens),
      QStringLiteral("--timeout"),      QString::number(options_.surgeTimeoutSeconds),
      QStringLiteral("--arrival")};
  switch (pending_.pattern) {
    case SurgePattern::Flash:
      common << QStringLiteral("uniform");
      break;
    case SurgePattern::Ramp:
      common << QStringLiteral("ramp");
      break;
    case SurgePattern::Trace:
      common << QStringLiteral("trace") << QStringLiteral("--trace") << options_.tracePath;
      break;
  }
  for (int i = 0; i < 2; ++i) {
    Side& s = sides_[i];
    s.score = DemoScore{};
    s.score.users = pending_.users;
    s.baseKnown = false;
    s.servedPerSecond = 0;
    QFile::remove(reportPath(i));
    s.surge = std::make_unique<QProcess>();
    QProcess* p = s.surge.get();
    p->setProgram(QDir(options_.binDir).filePath(QStringLiteral("tidelane-surge")));
    p->setArguments(QStringList{QStringLiteral("--target"),
                                QStringLiteral("grpc://") + s.services->grpcAddress(),
                                QStringLiteral("--auth-token-file"), s.services->tokenFile(),
                                QStringLiteral("--router-pid"),
                                QString::number(s.services->routerPid()), QStringLiteral("--json"),
                                reportPath(i)} +
                    common);
    p->setStandardOutputFile(QProcess::nullDevice());
    p->setStandardErrorFile(surgeLogPath(i));
    p->setChildProcessModifier([] { ::prctl(PR_SET_PDEATHSIG, SIGKILL); });
    // Queued, as above: a failure destroys the process. The lambdas hold no pointer to it.
    connect(
        p, &QProcess::finished, this,
        [this, i](int code, QProcess::ExitStatus status) { onSurgeFinished(i, code, status); },
        Qt::QueuedConnection);
    connect(
        p, &QProcess::errorOccurred, this,
        [this, i](QProcess::ProcessError error) {
          const QProcess* surge = sides_[i].surge.get();
          if (error == QProcess::FailedToStart && state_ == State::Surging && surge) {
            fail(tr("Cannot start %1: %2").arg(surge->program(), surge->errorString()));
          }
        },
        Qt::QueuedConnection);
  }
  surgeClock_.start();
  // Started back to back, after both are set up, so neither side gets a head start. Their
  // failures and exits are queued, so both are running (or failed) when Surging is announced.
  for (Side& s : sides_) s.surge->start();
  setState(State::Surging);
  for (int i = 0; i < 2; ++i) emit scoreChanged(i);
}

void DemoController::onFrame(int side, const MonitorFrame& frame) {
  Side& s = sides_[side];
  const auto& c = frame.counters;
  const bool surging = state_ == State::Surging && !s.score.final;
  if (surging && !s.baseKnown) {
    s.servedBase = c.served;
    s.degradedBase = c.degraded;
    s.rejectedBase = c.rejected;
    s.failedBase = c.failed;
    s.lastServed = 0;
    s.lastFrameMs = frame.timestampMs;
    s.baseKnown = true;
  }
  s.score.paralysedNow.clear();
  for (const auto& node : frame.nodes) {
    if (node.saturation.binding() >= kParalysed) s.score.paralysedNow << node.name;
  }
  s.score.queued = c.queued;
  s.score.inFlight = c.inFlight;
  if (surging) {
    // Snapshots come every 250 ms; a longer gap (a reconnect) is not counted as paralysis.
    const double dt = std::clamp((frame.timestampMs - s.lastFrameMs) / 1000.0, 0.0, 1.0);
    s.lastFrameMs = frame.timestampMs;
    s.score.paralysedNodeSeconds += dt * s.score.paralysedNow.size();
    s.score.served = c.served - s.servedBase;
    s.score.degraded = c.degraded - s.degradedBase;
    s.score.rejected = c.rejected - s.rejectedBase;
    s.score.failed = c.failed - s.failedBase;
    s.score.ttftP99Ms = std::max(s.score.ttftP99Ms, c.ttftP99Ms);
    if (dt > 0) {
      const double rate = (s.score.served - s.lastServed) / dt;
      s.servedPerSecond = s.servedPerSecond == 0 ? rate : 0.8 * s.servedPerSecond + 0.2 * rate;
    }
    s.lastServed = s.score.served;
  }
  emit scoreChanged(side);
  updateCaption();
}

void DemoController::onSurgeFinished(int side, int exitCode, QProcess::ExitStatus status) {
  Side& s = sides_[side];
  if (state_ != State::Surging || !s.surge) return;  // stopped by the presenter
  // 3: the surge timed out; it still wrote its report, which says how many are missing.
  if (status != QProcess::NormalExit || (exitCode != 0 && exitCode != 3)) {
    fail(tr("The surge against the %1 failed (exit code %2): %3")
             .arg(sideTitle(side), QString::number(exitCode), tail(surgeLogPath(side))));
    return;
  }
  QFile file(reportPath(side));
  QJsonParseError error{};
  const QJsonObject report = file.open(QIODevice::ReadOnly)
                                 ? QJsonDocument::fromJson(file.readAll(), &error).object()
                                 : QJsonObject();
  if (report.isEmpty()) {
    fail(tr("The surge against the %1 wrote no readable report at %2")
             .arg(sideTitle(side), reportPath(side)));
    return;
  }
  s.score.served = report.value(QStringLiteral("completed")).toInteger();
  s.score.ttftP99Ms = report.value(QStringLiteral("ttft_p99_ms")).toDouble();
  s.score.degraded = report.value(QStringLiteral("degraded")).toInteger();
  s.score.rejected = report.value(QStringLiteral("rejected")).toInteger();
  s.score.failed = report.value(QStringLiteral("failed")).toInteger();
  s.score.lost = report.value(QStringLiteral("lost")).toInteger() +
                 // Users never answered when the surge gave up waiting are lost to them too.
                 (report.value(QStringLiteral("timed_out")).toBool()
                      ? std::max<qint64>(0, report.value(QStringLiteral("requests")).toInteger() -
                                                s.score.served - s.score.rejected - s.score.failed -
                                                s.score.lost)
                      : 0);
  s.score.final = true;
  emit scoreChanged(side);
  if (sides_[0].score.final && sides_[1].score.final) {
    lastSurgeSeconds_ = surgeClock_.elapsed() / 1000.0;
    setState(State::Finished);
  } else {
    updateCaption();
  }
}

void DemoController::stop() {
  // Surges first: they would count the clusters' shutdown as failed streams. Nothing is waited
  // for here (this runs on the GUI thread): each process's exit comes back through the event
  // loop, with SIGKILL if it takes longer than its grace.
  for (Side& s : sides_) {
    if (!s.surge) continue;
    std::unique_ptr<QProcess> surge = std::move(s.surge);
    surge->disconnect(this);
    if (surge->state() == QProcess::NotRunning) continue;
    QProcess* p = surge.get();
    stoppingSurges_.push_back(std::move(surge));
    connect(p, &QProcess::finished, this, [this, p] {
      const auto it = std::find_if(stoppingSurges_.begin(), stoppingSurges_.end(),
                                   [p](const auto& q) { return q.get() == p; });
      if (it == stoppingSurges_.end()) return;
      it->release()->deleteLater();  // not inside its own signal
      stoppingSurges_.erase(it);
      reapStopped();
    });
    QTimer::singleShot(3000, p, [p] {
      if (p->state() != QProcess::NotRunning) p->kill();
    });
    p->terminate();
  }
  for (Side& s : sides_) {
    s.monitor->stop();
    if (!s.services) continue;
    s.services->disconnect(this);
    ServiceSupervisor* services = s.services.get();
    stoppingClusters_.push_back(std::move(s.services));
    connect(services, &ServiceSupervisor::stopped, this, [this, services] {
      const auto it = std::find_if(stoppingClusters_.begin(), stoppingClusters_.end(),
                                   [services](const auto& c) { return c.get() == services; });
      if (it == stoppingClusters_.end()) return;
      it->release()->deleteLater();  // not inside its own signal
      stoppingClusters_.erase(it);
      reapStopped();
    });
    services->stopAsync();
  }
  if (runDir_) stoppedDirs_.push_back(std::move(runDir_));
  surgePending_ = false;
  reapStopped();
  if (state_ != State::Failed) setState(State::Idle);
}

void DemoController::reapStopped() {
  if (stoppingSurges_.empty() && stoppingClusters_.empty()) stoppedDirs_.clear();
}

void DemoController::updateCaption() {
  const auto& naive = sides_[0].score;
  const auto& tidal = sides_[1].score;
  QString text;
  switch (state_) {
    case State::Idle:
      text =
          tr("Pick a surge and press Start: two identical clusters, one naive router, one "
             "tidal.");
      break;
    case State::Starting:
      text = tr("Starting two identical clusters of %1 synthetic workers each…")
                 .arg(options_.workersPerSide);
      break;
    case State::Ready:
      text = tr("Both clusters are up: same workers, same profiles; only the router differs.");
      break;
    case State::Surging: {
      const double window = windowSeconds(pending_.pattern) * options_.windowScale;
      const QString how = pending_.pattern == SurgePattern::Flash
                              ? tr("in %1 s").arg(seconds(window))
                          : pending_.pattern == SurgePattern::Ramp
                              ? tr("ramping up over %1 s").arg(seconds(window))
                              : tr("replaying the Azure trace in %1 s").arg(seconds(window));
      auto describe = [](const DemoScore& s, double perSecond) {
        QStringList parts;
        if (!s.paralysedNow.isEmpty()) {
          parts << (s.paralysedNow.size() == 1
                        ? tr("%1 paralysed").arg(s.paralysedNow.first())
                        : tr("%1 nodes paralysed").arg(s.paralysedNow.size()));
        }
        if (s.queued > 0) {
          QString q = tr("queueing %1 users").arg(number(s.queued));
          if (perSecond > 0.5) q += tr(", ETA %1 s").arg(seconds(s.queued / perSecond));
          parts << q;
        }
        if (s.final) {
          parts << tr("all answered");
        } else {
          parts << tr("%1 served").arg(number(s.served));
        }
        return parts.join(QStringLiteral(", "));
      };
      text = tr("Surge: %1 users %2 — naive: %3; tidal: %4")
                 .arg(number(pending_.users), how, describe(naive, sides_[0].servedPerSecond),
                      describe(tidal, sides_[1].servedPerSecond));
      break;
    }
    case State::Finished: {
      auto sum = [](const DemoScore& s) {
        return tr("%1 served, p99 TTFT %2 s, %3 lost, %4 paralysed node-seconds")
            .arg(number(s.served), seconds(s.ttftP99Ms / 1000.0),
                 number(std::max<qint64>(0, s.lost)), seconds(s.paralysedNodeSeconds));
      };
      text = tr("Done in %1 s — naive: %2. Tidal: %3.")
                 .arg(seconds(lastSurgeSeconds_), sum(naive), sum(tidal));
      break;
    }
    case State::Failed:
      return;  // fail() set the caption to the reason
  }
  if (text == caption_) return;
  caption_ = text;
  emit captionChanged(caption_);
}

int RunDemoWindow(const QString& binDir, const QString& dataDir, bool presenter) {
  DemoController::Options o;
  o.binDir = binDir;
  o.dataDir = dataDir;
  o.tracePath = DemoController::findTrace(binDir);
  DemoController demo(o);
  ui::monitor::DemoWindow window(&demo);
  window.setAttribute(Qt::WA_QuitOnClose);
  if (presenter) {
    window.setPresenting(true);
  } else {
    window.show();
  }
  if (qEnvironmentVariableIntValue("TIDELANE_DEMO_EXIT_WHEN_SHOWN") == 1) {
    QTimer::singleShot(0, &window, [&window] {
      if (!window.isVisible()) return;
      std::printf("tidelane demo shown: %s\n", qPrintable(window.windowTitle()));
      std::fflush(stdout);
      QCoreApplication::quit();
    });
  }
  const int code = QApplication::exec();
  demo.stop();
  return code;
}

}  // namespace tidelane::app
