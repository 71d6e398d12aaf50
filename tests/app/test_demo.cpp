// The surge demo (issue 8): both clusters start, the same surge runs to completion on both
// with every user served and the scoreboard filled in; a second surge (the Azure trace)
// runs on the clusters left up; Stop in the middle of a surge leaves no process behind; a
// binary that cannot start says so in the window; an app killed with SIGKILL mid-surge takes
// every demo process with it; `tidelane --demo` opens the demo window.
// Real child processes (routers, synthetic workers, tidelane-surge) and a real X server.
#include <signal.h>
#include <unistd.h>

#include <QApplication>
#include <QDir>
#include <QDirIterator>
#include <QLabel>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <cstdio>

#include "app/demo_controller.h"
#include "ui/monitor/demo_window.h"
#include "ui/monitor/monitor_model.h"

using namespace tidelane;
using State = ui::monitor::DemoSource::State;

namespace {

// Running, not a zombie: an orphan's zombie waits for whatever reaps orphans here.
bool processExists(qint64 pid) {
  if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) return false;
  QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
  if (!stat.open(QIODevice::ReadOnly)) return false;
  const QByteArray s = stat.readAll();
  const qsizetype paren = s.lastIndexOf(')');
  return paren < 0 || s.mid(paren + 2, 1) != "Z";
}

// Processes whose command line mentions `needle`, and processes whose parent is this test:
// what a demo that cleaned up properly leaves behind is neither.
QStringList strays(const QString& needle) {
  QStringList found;
  const QDir proc(QStringLiteral("/proc"));
  for (const QString& entry : proc.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
    bool numeric = false;
    const qint64 pid = entry.toLongLong(&numeric);
    if (!numeric || pid == ::getpid()) continue;
    if (!processExists(pid)) continue;
    QFile cmdline(proc.filePath(entry + QStringLiteral("/cmdline")));
    if (cmdline.open(QIODevice::ReadOnly)) {
      const QString line = QString::fromUtf8(cmdline.readAll().replace('\0', ' '));
      if (!needle.isEmpty() && line.contains(needle)) found << entry + QStringLiteral(": ") + line;
    }
    QFile status(proc.filePath(entry + QStringLiteral("/status")));
    if (status.open(QIODevice::ReadOnly)) {
      for (const QByteArray& l : status.readAll().split('\n')) {
        if (l.startsWith("PPid:") && l.mid(5).trimmed().toLongLong() == ::getpid()) {
          found << entry + QStringLiteral(": child of the test");
        }
      }
    }
  }
  return found;
}

app::DemoController::Options smallDemo(const QString& dataDir) {
  app::DemoController::Options o;
  o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
  o.dataDir = dataDir;
  o.workersPerSide = 3;  // high, mid, mid: small enough for a 2-core test machine
  o.maxTokens = 8;
  o.tracePath = app::DemoController::findTrace(o.binDir);
  return o;
}

QString failureOf(const QSignalSpy& spy) {
  return spy.isEmpty() ? QStringLiteral("no failure reported") : spy.last().at(0).toString();
}

}  // namespace

class TestDemo : public QObject {
  Q_OBJECT

 private slots:
  void surgeRunsToCompletionOnBothSides() {
    QTemporaryDir data;
    auto o = smallDemo(data.path());
    o.windowScale = 0.25;  // the flash crowd arrives within 0.5 s, the trace within 5 s
    app::DemoController demo(o);
    ui::monitor::DemoWindow window(&demo);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QSignalSpy failed(&demo, &ui::monitor::DemoSource::failed);

    // One click: starts both clusters and fires the selected surge (1,000 users by default;
    // fewer here) at both.
    demo.run({120, ui::monitor::SurgePattern::Flash});
    QTRY_VERIFY2_WITH_TIMEOUT(demo.state() == State::Finished || demo.state() == State::Failed,
                              "the surge did not finish", 120000);
    QVERIFY2(demo.state() == State::Finished, qPrintable(failureOf(failed)));
    for (int side = 0; side < 2; ++side) {
      const auto s = demo.score(side);
      QVERIFY(s.final);
      QCOMPARE(s.users, 120);
      QVERIFY2(s.served > 0, qPrintable(demo.sideTitle(side)));
      QCOMPARE(s.served + s.rejected + s.failed, 120);
      QCOMPARE(s.lost, 0);
      QVERIFY(s.ttftP99Ms > 0);
      // The views were fed by the routers' snapshots.
      QVERIFY(!window.model(side)->history().isEmpty());
      // The scoreboard shows it: "120 of 120"-style served, a TTFT in seconds, lost 0.
      const auto* served = window.findChild<QLabel*>(QStringLiteral("score%1_0").arg(side));
      QVERIFY(served);
      QCOMPARE(served->text(), QStringLiteral("%1 of 120").arg(s.served));
      const auto* lost = window.findChild<QLabel*>(QStringLiteral("score%1_4").arg(side));
      QCOMPARE(lost->text(), QStringLiteral("0"));
    }
    const auto* caption = window.findChild<QLabel*>(QStringLiteral("demoCaption"));
    QVERIFY2(caption->text().startsWith(QStringLiteral("Done in")), qPrintable(caption->text()));
    QVERIFY(window.findChild<QPushButton*>(QStringLiteral("demoStart"))->isEnabled());

    // Again on the clusters still up, replaying the Azure trace: the scoreboard counts this
    // surge only.
    if (o.tracePath.isEmpty()) QSKIP("the Azure trace (../shared/traces) is not here");
    const auto pids = demo.childPids();
    demo.run({60, ui::monitor::SurgePattern::Trace});
    QCOMPARE(demo.state(), State::Surging);
    QTRY_VERIFY2_WITH_TIMEOUT(demo.state() == State::Finished || demo.state() == State::Failed,
                              "the trace surge did not finish", 120000);
    QVERIFY2(demo.state() == State::Finished, qPrintable(failureOf(failed)));
    for (int side = 0; side < 2; ++side) {
      const auto s = demo.score(side);
      QCOMPARE(s.users, 60);
      QVERIFY(s.served > 0 && s.served <= 60);
      QCOMPARE(s.lost, 0);
    }
    // Same routers and workers as before (the surges have exited).
    for (qint64 pid : pids) {
      if (!demo.childPids().contains(pid)) QVERIFY(!processExists(pid));
    }
    QCOMPARE(demo.childPids().size(), 2 * (1 + o.workersPerSide));
  }

  void stopMidSurgeLeavesNoProcess() {
    QTemporaryDir data;
    auto o = smallDemo(data.path());
    app::DemoController demo(o);
    QSignalSpy failed(&demo, &ui::monitor::DemoSource::failed);
    demo.run({400, ui::monitor::SurgePattern::Ramp});  // 20 s of arrivals
    // Mid-surge: both surges running and answers flowing on at least one side.
    QTRY_VERIFY2_WITH_TIMEOUT(
        demo.state() == State::Failed ||
            (demo.state() == State::Surging && demo.score(0).served + demo.score(1).served > 0),
        "no answers during the surge", 60000);
    QVERIFY2(demo.state() == State::Surging, qPrintable(failureOf(failed)));
    const QList<qint64> pids = demo.childPids();
    QCOMPARE(pids.size(), 2 * (1 + o.workersPerSide) + 2);  // routers, workers, two surges
    const QString runDir = demo.runDirectory();
    QVERIFY(runDir.startsWith(data.path()));
    QVERIFY(!strays(runDir).isEmpty());  // the scan does find the running demo

    QSignalSpy stateChanged(&demo, &ui::monitor::DemoSource::stateChanged);
    demo.stop();
    // Stop returns at once (the window never blocks); the processes are reaped from the event
    // loop, SIGKILL after their grace, and then none is left.
    QCOMPARE(demo.state(), State::Idle);
    QTRY_VERIFY_WITH_TIMEOUT(demo.childPids().isEmpty(), 20000);
    for (qint64 pid : pids) {
      QFile cmd(QStringLiteral("/proc/%1/cmdline").arg(pid));
      const QByteArray what =
          cmd.open(QIODevice::ReadOnly) ? cmd.readAll().replace('\0', ' ') : QByteArray();
      QVERIFY2(!processExists(pid),
               qPrintable(QString::number(pid) + QLatin1Char(' ') + QString::fromUtf8(what)));
    }
    const QStringList left = strays(runDir);
    QVERIFY2(left.isEmpty(), qPrintable(left.join(QLatin1Char('\n'))));
    QTRY_VERIFY(!QDir(runDir).exists());
    QVERIFY(failed.isEmpty());
  }

  void binaryThatCannotStartSaysSoInTheWindow() {
    QTemporaryDir data;
    QTemporaryDir emptyBin;
    auto o = smallDemo(data.path());
    o.binDir = emptyBin.path();
    app::DemoController demo(o);
    ui::monitor::DemoWindow window(&demo);
    window.show();
    QSignalSpy failed(&demo, &ui::monitor::DemoSource::failed);
    window.findChild<QPushButton*>(QStringLiteral("demoStart"))->click();
    QVERIFY(failed.wait(30000));
    QTRY_COMPARE_WITH_TIMEOUT(demo.state(), State::Failed, 10000);
    const auto* status = window.findChild<QLabel*>(QStringLiteral("demoStatus"));
    QVERIFY2(status->text().contains(QStringLiteral("tidelane-router")),
             qPrintable(status->text()));
    QVERIFY(demo.childPids().isEmpty());
    QVERIFY(window.findChild<QPushButton*>(QStringLiteral("demoStart"))->isEnabled());
  }

  void presenterModeIsFullScreenWithLargeFonts() {
    QTemporaryDir data;
    app::DemoController demo(smallDemo(data.path()));
    ui::monitor::DemoWindow window(&demo);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const auto* caption = window.findChild<QLabel*>(QStringLiteral("demoCaption"));
    const double normal = caption->font().pointSizeF();
    window.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&window));
    QTest::keyClick(&window, Qt::Key_F11);
    QVERIFY(window.isPresenting());
    QTRY_VERIFY(window.windowState() & Qt::WindowFullScreen);
    QVERIFY(caption->font().pointSizeF() > 1.5 * normal);
    QTest::keyClick(&window, Qt::Key_Escape);
    QVERIFY(!window.isPresenting());
    QCOMPARE(caption->font().pointSizeF(), normal);
  }

  // The app dies without a chance to stop anything: the kernel kills its children
  // (PR_SET_PDEATHSIG), so a crashed or killed demo leaves no cluster running.
  void killedAppTakesItsProcessesWithIt() {
    QTemporaryDir data;
    QProcess app;
    app.start(QCoreApplication::applicationFilePath(),
              {QStringLiteral("--demo-child"), data.path()});
    QList<qint64> pids;
    QTRY_VERIFY_WITH_TIMEOUT(app.canReadLine() || app.state() == QProcess::NotRunning, 60000);
    const QString line = QString::fromUtf8(app.readLine()).trimmed();
    QVERIFY2(line.startsWith(QStringLiteral("surging ")), qPrintable(line));
    for (const QString& pid : line.mid(8).split(QLatin1Char(' '), Qt::SkipEmptyParts)) {
      pids << pid.toLongLong();
    }
    QCOMPARE(pids.size(), 2 * (1 + 3) + 2);
    ::kill(static_cast<pid_t>(app.processId()), SIGKILL);
    QVERIFY(app.waitForFinished(10000));
    for (qint64 pid : pids) {
      QTRY_VERIFY2_WITH_TIMEOUT(!processExists(pid), qPrintable(QString::number(pid)), 10000);
    }
    const QStringList left = strays(data.path());
    QVERIFY2(left.isEmpty(), qPrintable(left.join(QLatin1Char('\n'))));
  }

  void demoFlagOpensTheDemoWindow() {
    QTemporaryDir data;
    QProcess app;
    auto env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("TIDELANE_DEMO_EXIT_WHEN_SHOWN"), QStringLiteral("1"));
    app.setProcessEnvironment(env);
    app.start(QDir(QStringLiteral(TIDELANE_BIN_DIR)).filePath(QStringLiteral("tidelane")),
              {QStringLiteral("--demo"), QStringLiteral("--data-dir"), data.path()});
    QVERIFY(app.waitForFinished(60000));
    QCOMPARE(app.exitStatus(), QProcess::NormalExit);
    QVERIFY2(app.exitCode() == 0, app.readAllStandardError().constData());
    QCOMPARE(QString::fromUtf8(app.readAllStandardOutput()).trimmed(),
             QStringLiteral("tidelane demo shown: Tidelane — Surge demo"));
  }
};

// `test_demo --demo-child DIR`: a demo in a process of its own, for the kill test. Prints
// "surging PID..." (every child) once its surge runs, then waits to be killed.
int runDemoChild(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  app::DemoController demo(smallDemo(QString::fromLocal8Bit(argv[2])));
  QObject::connect(&demo, &ui::monitor::DemoSource::stateChanged, [&demo](State state) {
    if (state == State::Surging) {
      QStringList pids;
      for (qint64 pid : demo.childPids()) pids << QString::number(pid);
      std::printf("surging %s\n", qPrintable(pids.join(QLatin1Char(' '))));
      std::fflush(stdout);
    }
    if (state == State::Failed) QCoreApplication::exit(1);
  });
  QObject::connect(&demo, &ui::monitor::DemoSource::failed, [](const QString& message) {
    std::printf("failed %s\n", qPrintable(message));
    std::fflush(stdout);
  });
  demo.run({400, ui::monitor::SurgePattern::Ramp});
  return QCoreApplication::exec();
}

int main(int argc, char** argv) {
  if (argc == 3 && qstrcmp(argv[1], "--demo-child") == 0) return runDemoChild(argc, argv);
  QApplication app(argc, argv);
  TestDemo test;
  QTEST_SET_MAIN_SOURCE_PATH
  return QTest::qExec(&test, argc, argv);
}
#include "test_demo.moc"
