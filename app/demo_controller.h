// DemoController: the one-click surge demo (ui::monitor::DemoSource). Runs two clusters on
// this machine, each a tidelane-router and the same mix of synthetic workers (1 in 8 high, 3 in 8
// mid, the rest low; same profiles, names and router seed), the first routing with a naive
// baseline and the second with the tidal policy, under two ServiceSupervisors; watches both
// with GrpcMonitorClients; and fires the same surge at both with two tidelane-surge child
// processes started at the same moment.
//
// Scoreboard: live figures are deltas of each router's counters since the surge began (its
// snapshots), paralysed node-seconds are integrated over snapshots (binding saturation >= 1);
// when a surge process exits, its JSON report (every stream checked) replaces them.
//
// Every run gets a fresh directory under Options::dataDir (`demo-XXXXXX`): the routers' data,
// the children's logs, the surge reports and the token files live there, so every child's
// command line names it. stop() — at any moment — ends the surges and both clusters
// (SIGTERM, SIGKILL after a bounded grace) without blocking the GUI thread: it returns at
// once, the processes are reaped from the event loop (childPids() lists them until then), and
// the run's directory is removed once the last one has gone, unless something failed (its logs
// are then kept and named in the error). The destructor waits for whatever is still exiting,
// so no process outlives the controller. Children also die with the app, even a crashed one
// (PR_SET_PDEATHSIG, SIGKILL: nothing in a demo run is worth keeping).
//
// Threading: GUI thread only.
#pragma once

#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <array>
#include <memory>
#include <vector>

#include "ui/monitor/demo_source.h"

namespace tidelane::app {

class GrpcMonitorClient;
class ServiceSupervisor;

class DemoController : public ui::monitor::DemoSource {
  Q_OBJECT

 public:
  struct Options {
    QString binDir;   // tidelane-router, tidelane-worker, tidelane-surge
    QString dataDir;  // each run makes its own directory in here
    int workersPerSide = 8;
    QString naivePolicy = QStringLiteral("round-robin");
    QString tidalPolicy = QStringLiteral("tidal");
    QString tracePath;   // Azure trace for SurgePattern::Trace; empty: that pattern fails
    int turns = 1;       // per user; each later turn waits for the previous answer
    int maxTokens = 32;  // per answer
    // Multiplies every surge's arrival window (tests use short windows); 1 for the demo.
    double windowScale = 1.0;
    int surgeTimeoutSeconds = 600;
  };

  explicit DemoController(Options options, QObject* parent = nullptr);
  ~DemoController() override;

  ui::monitor::MonitorSource* monitor(int side) override;
  QString sideTitle(int side) const override;
  ui::monitor::DemoScore score(int side) const override { return sides_[side].score; }
  State state() const override { return state_; }
  QString caption() const override { return caption_; }

  void run(const ui::monitor::SurgeSpec& surge) override;
  void stop() override;

  // Every child process running now (routers, workers, and from the moment the state is
  // Surging until the surge ends, the two surge processes, and after stop() those still
  // exiting), and this run's directory (empty when idle): for tests that check nothing is left
  // behind.
  QList<qint64> childPids() const;
  QString runDirectory() const;
  // Where the Azure trace is looked for when Options::tracePath is empty: installed beside
  // the app, or the source tree's ../shared.
  static QString findTrace(const QString& binDir);

 private:
  struct Side {
    QString policy;
    std::unique_ptr<ServiceSupervisor> services;
    std::unique_ptr<GrpcMonitorClient> monitor;
    std::unique_ptr<QProcess> surge;
    ui::monitor::DemoScore score;
    // Router counters when the surge began: the scoreboard shows what happened since.
    qint64 servedBase = 0, degradedBase = 0, rejectedBase = 0, failedBase = 0;
    bool baseKnown = false;
    qint64 lastFrameMs = 0;
    double servedPerSecond = 0;  // smoothed, for the queue's ETA in the caption
    qint64 lastServed = 0;
  };

  void startClusters();
  void startSurge();
  void onFrame(int side, const ui::monitor::MonitorFrame& frame);
  void onSurgeFinished(int side, int exitCode, QProcess::ExitStatus status);
  void fail(const QString& message);
  // After stop(): once nothing stopped is still exiting, the old runs' directories go.
  void reapStopped();
  void setState(State state);
  void updateCaption();
  QString surgeLogPath(int side) const;
  QString reportPath(int side) const;

  Options options_;
  std::array<Side, 2> sides_;
  std::unique_ptr<QTemporaryDir> runDir_;
  // What stop() ended and is still exiting, and the directories of those runs (removed once
  // they have all gone: a router still writing its ledger would leave files behind).
  std::vector<std::unique_ptr<ServiceSupervisor>> stoppingClusters_;
  std::vector<std::unique_ptr<QProcess>> stoppingSurges_;
  std::vector<std::unique_ptr<QTemporaryDir>> stoppedDirs_;
  State state_ = State::Idle;
  QString caption_;
  ui::monitor::SurgeSpec pending_;  // the surge to fire once the clusters are ready
  bool surgePending_ = false;
  QElapsedTimer surgeClock_;
  double lastSurgeSeconds_ = 0;
};

// `tidelane --demo` (and `--presenter`, full screen): a DemoController under `dataDir` and
// its window, until the window closes; returns the exit code. Every child is stopped before
// it returns. For smoke tests, TIDELANE_DEMO_EXIT_WHEN_SHOWN=1 makes it print "tidelane demo
// shown: TITLE" on stdout and quit as soon as the window is on screen.
int RunDemoWindow(const QString& binDir, const QString& dataDir, bool presenter);

}  // namespace tidelane::app
