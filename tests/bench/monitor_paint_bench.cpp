// One frame of the tidal-lane view at 64 nodes and 10,000 requests in flight (with 40
// recent redirects), painted into a 1600×900 QImage: the scene built from the frame and
// every lane, particle, cluster, arc and label drawn. Target: < 8 ms a frame.
// Built with the tests, not run by CTest:
//   QT_QPA_PLATFORM=offscreen build/agent-mon/bin/monitor_paint_bench -iterations 200
#include <QImage>
#include <QTest>

#include "ui/monitor/lane_scene.h"
#include "ui/monitor/monitor_model.h"
#include "ui/monitor/tidal_lane_view.h"

using namespace tidelane::ui::monitor;

namespace {

MonitorFrame surgeFrame(qint64 ms, int nodes, int requests) {
  MonitorFrame f;
  f.timestampMs = ms;
  f.policy = QStringLiteral("tidal");
  int left = requests;
  for (int i = 0; i < nodes; ++i) {
    NodeFrame n;
    const Tier tier = i % 8 == 0 ? Tier::High : (i % 8 < 4 ? Tier::Mid : Tier::Low);
    n.name = QStringLiteral("%1-%2").arg(tierName(tier)).arg(i);
    n.tier = tier;
    n.role = static_cast<Role>(i % 3);
    n.state = i == 5 ? NodeState::Cordoned : NodeState::Ready;
    for (int d = 0; d < Saturation::kDimensions; ++d) {
      n.saturation.values[static_cast<std::size_t>(d)] = ((i * 7 + d * 13) % 100) / 100.0;
    }
    n.maxBatch = tier == Tier::High ? 64 : 32;
    // Uneven load, summing to `requests`.
    n.active = i + 1 == nodes ? left : std::min(left, requests / nodes + (i % 5) * 20 - 40);
    left -= n.active;
    n.tokensPerSecond = 50 + 10 * (i % 30);
    n.arrivals = i % 7;
    n.model = QStringLiteral("tidelane-synthetic");
    f.nodes.append(n);
  }
  for (int r = 0; r < 40; ++r) {
    f.redirects.append({QStringLiteral("r%1").arg(r), f.nodes[(r * 3) % nodes].name,
                        f.nodes[(r * 11 + 5) % nodes].name, QStringLiteral("saturated")});
  }
  f.counters.inFlight = requests;
  f.counters.queued = 1200;
  return f;
}

}  // namespace

class MonitorPaintBench : public QObject {
  Q_OBJECT

 private slots:
  void paint64Nodes10000Requests() {
    MonitorModel model;
    model.setInterpolation(false);
    const MonitorFrame frame = surgeFrame(1'000'000, 64, 10'000);
    QCOMPARE(frame.totalActive(), 10'000);
    model.addFrame(frame);
    TidalLaneView view(&model);
    view.resize(1600, 900);
    QImage image(1600, 900, QImage::Format_ARGB32_Premultiplied);
    QCOMPARE(view.currentScene().lanes.size(), 64);
    QCOMPARE(view.currentScene().arcs.size(), 40);
    QBENCHMARK {
      view.render(&image);
    }
  }

  // The same without redirect arcs, to see what the arcs cost.
  void paint64Nodes10000RequestsNoArcs() {
    MonitorModel model;
    model.setInterpolation(false);
    MonitorFrame frame = surgeFrame(1'000'000, 64, 10'000);
    frame.redirects.clear();
    model.addFrame(frame);
    TidalLaneView view(&model);
    view.resize(1600, 900);
    QImage image(1600, 900, QImage::Format_ARGB32_Premultiplied);
    QBENCHMARK {
      view.render(&image);
    }
  }

  void buildSceneOnly() {
    const MonitorFrame frame = surgeFrame(1'000'000, 64, 10'000);
    MonitorHistory history;
    history.append(frame);
    const auto redirects = history.redirectsBefore(frame.timestampMs, LaneScene::kRedirectFadeMs);
    QBENCHMARK {
      const LaneScene scene =
          buildLaneScene(frame, frame.prefillShare(), redirects, QSizeF(1600, 900), 1.5);
      QVERIFY(!scene.lanes.isEmpty());
    }
  }

  void interpolateAndBuild() {
    // What a live repaint does besides painting: interpolate two frames, then the scene.
    MonitorModel model;
    model.addFrame(surgeFrame(1'000'000, 64, 10'000));
    model.addFrame(surgeFrame(1'000'250, 64, 9'000));
    const qint64 now = model.now();
    QBENCHMARK {
      const auto d = model.display(now + 50);
      const LaneScene scene =
          buildLaneScene(d.frame, d.prefillShare, d.redirects, QSizeF(1600, 900), d.timeMs / 1e3);
      QVERIFY(!scene.lanes.isEmpty());
    }
  }
};

QTEST_MAIN(MonitorPaintBench)
#include "monitor_paint_bench.moc"
