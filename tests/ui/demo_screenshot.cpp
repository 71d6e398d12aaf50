// demo_screenshot: runs the surge demo as a presenter would (default clusters, the surge given
// on the command line), saves the window mid-surge and at the end, and prints the scoreboard
// as JSON lines. Not a test: it makes docs/screenshot-demo.png.
// Usage: demo_screenshot OUT.png [USERS] [flash|ramp|trace] [SECONDS_INTO_SURGE] [shot-only]
// (shot-only: press Stop right after the mid-surge shot instead of waiting for the end)
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <cstdio>

#include "app/demo_controller.h"
#include "ui/monitor/demo_window.h"

using namespace tidelane;

namespace {

QJsonObject toJson(const ui::monitor::DemoScore& s) {
  return {{"users", s.users},
          {"served", s.served},
          {"ttft_p99_ms", s.ttftP99Ms},
          {"degraded", s.degraded},
          {"rejected", s.rejected},
          {"failed", s.failed},
          {"lost", s.lost},
          {"paralysed_node_seconds", s.paralysedNodeSeconds},
          {"queued", s.queued},
          {"in_flight", s.inFlight},
          {"final", s.final}};
}

}  // namespace

int main(int argc, char** argv) {
  QApplication qapp(argc, argv);
  const QStringList args = qapp.arguments();
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: demo_screenshot OUT.png [USERS] [flash|ramp|trace] [SECONDS]\n");
    return 2;
  }
  const QString out = args[1];
  ui::monitor::SurgeSpec surge;
  surge.users = args.size() > 2 ? args[2].toInt() : 1000;
  const QString pattern = args.size() > 3 ? args[3] : QStringLiteral("flash");
  surge.pattern = pattern == QLatin1String("ramp")    ? ui::monitor::SurgePattern::Ramp
                  : pattern == QLatin1String("trace") ? ui::monitor::SurgePattern::Trace
                                                      : ui::monitor::SurgePattern::Flash;
  const double shotAt = args.size() > 4 ? args[4].toDouble() : 3.0;
  const bool shotOnly = args.size() > 5 && args[5] == QLatin1String("shot-only");

  QTemporaryDir data;
  app::DemoController::Options o;
  o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
  o.dataDir = data.path();
  o.tracePath = app::DemoController::findTrace(o.binDir);
  app::DemoController demo(o);
  ui::monitor::DemoWindow window(&demo);
  window.resize(1600, 900);
  window.setSelectedSurge(surge);
  window.show();
  if (!QTest::qWaitForWindowExposed(&window)) return 1;
  QObject::connect(&demo, &ui::monitor::DemoSource::failed, [](const QString& m) {
    std::fprintf(stderr, "demo failed: %s\n", qPrintable(m));
    QCoreApplication::exit(1);
  });
  QElapsedTimer clock;
  bool shot = false;
  QTimer tick;
  QObject::connect(&tick, &QTimer::timeout, [&] {
    if (demo.state() == ui::monitor::DemoSource::State::Surging) {
      if (!clock.isValid()) clock.start();
      if (!shot && clock.elapsed() >= shotAt * 1000) {
        window.grab().save(out);
        shot = true;
        std::printf("{\"shot_at_s\": %.1f, \"caption\": %s}\n", clock.elapsed() / 1000.0,
                    QJsonDocument(QJsonObject{{"c", demo.caption()}})
                        .toJson(QJsonDocument::Compact)
                        .constData());
        if (shotOnly) {
          QElapsedTimer stopping;
          stopping.start();
          demo.stop();
          std::printf("stopped in %lld ms\n", stopping.elapsed());
          QCoreApplication::quit();
          return;
        }
      }
    }
    if (clock.isValid() && clock.elapsed() % 2000 < 250) {
      for (int i = 0; i < 2; ++i) {
        std::printf(
            "%.1f %d %s\n", clock.elapsed() / 1000.0, i,
            QJsonDocument(toJson(demo.score(i))).toJson(QJsonDocument::Compact).constData());
      }
      std::fflush(stdout);
    }
    if (demo.state() == ui::monitor::DemoSource::State::Finished) {
      for (int i = 0; i < 2; ++i) {
        std::printf(
            "final %d %s\n", i,
            QJsonDocument(toJson(demo.score(i))).toJson(QJsonDocument::Compact).constData());
      }
      std::printf("caption: %s\n", qPrintable(demo.caption()));
      QString end = out;
      end.replace(QStringLiteral(".png"), QStringLiteral("-end.png"));
      window.grab().save(end);
      QCoreApplication::quit();
    }
  });
  tick.start(250);
  demo.run(surge);
  return QApplication::exec();
}
