// The tidal-lane view painted under a real X server: frames built here (and one recorded
// from a real router in a surge, tests/ui/data/surge-frames.json) are rendered into a
// QImage with QWidget::render and checked pixel by pixel at the lane positions the layout
// gives: a saturated node's water is red up to its level, an idle node's is calm blue/green
// and low, a redirect's arc is drawn between its two lanes and fades away, a KV handoff
// (prefilled on one node, decoded on another) is an arc of its own colour from the prefill
// lane to the decode lane, the tide line sits where the prefill share puts it.
//
// TIDELANE_SCREENSHOT=PATH saves the monitor window on the recorded surge as a PNG.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QTest>

#include "ui/monitor/lane_scene.h"
#include "ui/monitor/monitor_charts.h"
#include "ui/monitor/monitor_model.h"
#include "ui/monitor/monitor_window.h"
#include "ui/monitor/tidal_lane_view.h"

using namespace tidelane::ui::monitor;

namespace {

NodeFrame node(const QString& name, Tier tier, Role role, double level, int active, int maxBatch) {
  NodeFrame n;
  n.name = name;
  n.tier = tier;
  n.role = role;
  n.state = NodeState::Ready;
  n.saturation.values[1] = level * 0.5;
  n.saturation.values[2] = level;  // KV cache binds
  n.active = active;
  n.maxBatch = maxBatch;
  n.tokensPerSecond = 120;
  n.model = QStringLiteral("tidelane-synthetic");
  return n;
}

// hot: high prefill at 95%; calm: high decode at 15%; a mixed mid node; a low decode node.
MonitorFrame testFrame(qint64 ms) {
  MonitorFrame f;
  f.timestampMs = ms;
  f.policy = QStringLiteral("tidal");
  f.nodes = {node("hot", Tier::High, Role::Prefill, 0.95, 40, 32),
             node("calm", Tier::High, Role::Decode, 0.15, 2, 32),
             node("mid-1", Tier::Mid, Role::Mixed, 0.5, 8, 16),
             node("low-1", Tier::Low, Role::Decode, 0.3, 3, 16)};
  f.counters.inFlight = 53;
  return f;
}

bool isHot(QRgb c) {
  return qRed(c) > 180 && qGreen(c) < 110 && qBlue(c) < 110;
}
bool isCalm(QRgb c) {
  return qBlue(c) > qRed(c) + 40 && qGreen(c) > qRed(c);
}
bool isRedirect(QRgb c) {
  return qRed(c) > 200 && qBlue(c) > 150 && qGreen(c) < 120;
}
// Pure cyan: water is dull in green and blue, and the pale cyan of a blue-green water's
// lightened surface keeps a red of 45 or more.
bool isHandoff(QRgb c) {
  return qRed(c) < 30 && qGreen(c) > 190 && qBlue(c) > 190;
}
bool near(QRgb c, const QColor& want, int tolerance = 12) {
  return std::abs(qRed(c) - want.red()) <= tolerance &&
         std::abs(qGreen(c) - want.green()) <= tolerance &&
         std::abs(qBlue(c) - want.blue()) <= tolerance;
}
QString describe(QRgb c) {
  return QStringLiteral("rgb(%1,%2,%3)").arg(qRed(c)).arg(qGreen(c)).arg(qBlue(c));
}

QImage render(QWidget& w) {
  QImage image(w.size(), QImage::Format_RGB32);
  image.fill(Qt::black);
  w.render(&image);
  return image;
}

// How many of the points at fractions `along` the arc show `colour` (within a pixel: the
// arc is antialiased).
template <typename Predicate>
int pointsAlong(const QImage& image, const QPainterPath& path, const QList<double>& along,
                Predicate colour) {
  int found = 0;
  for (double t : along) {
    const QPointF p = path.pointAtPercent(t);
    bool hit = false;
    for (int dx = -1; dx <= 1 && !hit; ++dx) {
      for (int dy = -1; dy <= 1 && !hit; ++dy) {
        hit = colour(image.pixel(int(p.x()) + dx, int(p.y()) + dy));
      }
    }
    found += hit;
  }
  return found;
}

int countPixels(const QImage& image, bool (*colour)(QRgb)) {
  int n = 0;
  for (int y = 0; y < image.height(); ++y) {
    for (int x = 0; x < image.width(); ++x) {
      n += colour(image.pixel(x, y));
    }
  }
  return n;
}

FlowEvent flow(const QString& id, const QString& to, Stage stage) {
  return {id, to, stage};
}

}  // namespace

class TestTidalLaneView : public QObject {
  Q_OBJECT

 private slots:
  void saturatedLaneIsRedToItsLevelAndIdleLaneIsCalm() {
    MonitorModel model;
    model.setInterpolation(false);
    TidalLaneView view(&model);
    view.resize(900, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    model.addFrame(testFrame(1'000'000));
    const LaneScene scene = view.currentScene();
    const QImage image = render(view);
    const auto& layout = scene.layout;

    const int hot = layout.indexOf(QStringLiteral("hot"));
    const int calm = layout.indexOf(QStringLiteral("calm"));
    QVERIFY(hot >= 0 && calm >= 0);
    QVERIFY(layout.lanes[hot].rect.top() < layout.lanes[calm].rect.top());  // prefill first

    // Sample left of the arcs and away from the particle row in the middle of the lane.
    const QRectF hotRect = layout.lanes[hot].rect;
    const int x = static_cast<int>(layout.flowRect(hot).left() + 20);
    const double waterTop = hotRect.bottom() - std::round(hotRect.height() * 0.95);
    for (double f : {0.05, 0.25, 0.75, 0.9}) {
      const int y = static_cast<int>(hotRect.bottom() - f * hotRect.height());
      if (std::abs(y - hotRect.center().y()) < 5) continue;
      QVERIFY2(
          isHot(image.pixel(x, y)),
          qPrintable(
              QStringLiteral("hot lane at %1%: %2").arg(f * 100).arg(describe(image.pixel(x, y)))));
    }
    // Above the water: the empty lane.
    QVERIFY2(near(image.pixel(x, static_cast<int>(waterTop) - 2), palette::kLane),
             qPrintable(describe(image.pixel(x, static_cast<int>(waterTop) - 2))));

    const QRectF calmRect = layout.lanes[calm].rect;
    const QRgb low = image.pixel(x, static_cast<int>(calmRect.bottom()) - 2);
    QVERIFY2(isCalm(low), qPrintable(describe(low)));
    const QRgb above =
        image.pixel(x, static_cast<int>(calmRect.bottom() - 0.4 * calmRect.height()));
    QVERIFY2(near(above, palette::kLane), qPrintable(describe(above)));

    // The level follows the frame: the calm node saturates, its lane turns red.
    MonitorFrame later = testFrame(1'000'500);
    later.nodes[1].saturation.values[4] = 0.98;  // decode latency now binds
    model.addFrame(later);
    const QImage after = render(view);
    const QRgb nowHot =
        after.pixel(x, static_cast<int>(calmRect.bottom() - 0.7 * calmRect.height()));
    QVERIFY2(isHot(nowHot), qPrintable(describe(nowHot)));
  }

  void redirectArcRunsBetweenTheTwoLanesAndFades() {
    MonitorModel model;
    model.setInterpolation(false);
    TidalLaneView view(&model);
    view.resize(900, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    MonitorFrame f = testFrame(2'000'000);
    f.redirects = {{"r1", "hot", "low-1", "saturated"}};
    model.addFrame(f);
    const LaneScene scene = view.currentScene();
    QCOMPARE(scene.arcs.size(), 1);
    QCOMPARE(scene.arcs[0].text, QStringLiteral("saturated"));
    const QImage image = render(view);

    const QRectF from = scene.layout.lanes[scene.layout.indexOf("hot")].rect;
    const QRectF to = scene.layout.lanes[scene.layout.indexOf("low-1")].rect;
    // Between the two lanes, along the arc, the redirect colour shows.
    int found = 0;
    for (double t : {0.3, 0.5, 0.7}) {
      const QPointF p = scene.arcs[0].path.pointAtPercent(t);
      QVERIFY(p.y() > from.center().y() && p.y() < to.center().y());
      bool hit = false;
      for (int dx = -1; dx <= 1 && !hit; ++dx) {
        for (int dy = -1; dy <= 1 && !hit; ++dy) {
          hit = isRedirect(image.pixel(int(p.x()) + dx, int(p.y()) + dy));
        }
      }
      found += hit;
    }
    QCOMPARE(found, 3);
    // Not drawn where there is no arc: the same point on the calm lane's left.
    QVERIFY(!isRedirect(image.pixel(int(scene.layout.flowRect(0).left() + 5), int(to.top() + 3))));

    // A redirect away from a node that has died (and left the frame) still shows, coming in
    // from the new lane's group header, and says where it came from.
    MonitorFrame gone = testFrame(2'000'500);
    gone.redirects = {{"r2", "high-7", "calm", "worker failed"}};
    model.addFrame(gone);
    const LaneScene withGone = view.currentScene();
    QCOMPARE(withGone.arcs.size(), 2);
    QVERIFY(withGone.arcs[0].text.contains(QStringLiteral("high-7")) ||
            withGone.arcs[1].text.contains(QStringLiteral("high-7")));

    // Five seconds later with no new redirect, the arcs have faded out.
    model.addFrame(testFrame(2'005'000));
    QCOMPARE(view.currentScene().arcs.size(), 0);
    const QImage later = render(view);
    const QPointF mid = scene.arcs[0].path.pointAtPercent(0.5);
    QVERIFY(!isRedirect(later.pixel(int(mid.x()), int(mid.y()))));
  }

  void handoffArcRunsFromThePrefillLaneToTheDecodeLane() {
    MonitorModel model;
    model.setInterpolation(false);
    TidalLaneView view(&model);
    view.resize(900, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    // Prefilled on "hot" in one snapshot, decoding on "calm" in the next.
    MonitorFrame prefilled = testFrame(7'000'000);
    prefilled.flows = {flow("q1", "hot", Stage::Prefill)};
    model.addFrame(prefilled);
    QVERIFY(view.currentScene().arcs.isEmpty());
    MonitorFrame decoding = testFrame(7'000'500);
    decoding.flows = {flow("q1", "calm", Stage::Decode)};
    model.addFrame(decoding);

    const LaneScene scene = view.currentScene();
    QCOMPARE(scene.arcs.size(), 1);
    QCOMPARE(scene.arcs[0].kind, ArcKind::Handoff);
    QCOMPARE(scene.arcs[0].text, QStringLiteral("KV handoff"));
    QCOMPARE(scene.handoffCount, 1);
    QVERIFY2(scene.summary.contains(QStringLiteral("1 KV handoff")), qPrintable(scene.summary));
    const QRectF from = scene.layout.lanes[scene.layout.indexOf("hot")].rect;
    const QRectF to = scene.layout.lanes[scene.layout.indexOf("calm")].rect;
    QVERIFY(qAbs(scene.arcs[0].path.pointAtPercent(0).y() - from.center().y()) < 1);
    QVERIFY(qAbs(scene.arcs[0].end.y() - to.center().y()) < 1);

    // Sampled where the arc crosses the gap between the two lanes: over a lane the arc's
    // antialiased edge blends with the water.
    QList<double> between;
    for (int i = 1; i < 40; ++i) {
      const double y = scene.arcs[0].path.pointAtPercent(i / 40.0).y();
      if (y > from.bottom() + 1 && y < to.top() - 1) between.append(i / 40.0);
    }
    QVERIFY(between.size() >= 3);
    const QImage image = render(view);
    QCOMPARE(pointsAlong(image, scene.arcs[0].path, between, isHandoff), between.size());
    QCOMPARE(pointsAlong(image, scene.arcs[0].path, between, isRedirect), 0);  // its own colour

    // Two more requests between the same lanes, prefilled and decoded between two
    // snapshots (both flows in one, decode listed first): one arc, counted.
    MonitorFrame both = testFrame(7'001'000);
    both.flows = {flow("q2", "calm", Stage::Decode), flow("q2", "hot", Stage::Prefill),
                  flow("q3", "hot", Stage::Prefill), flow("q3", "calm", Stage::Decode)};
    model.addFrame(both);
    const LaneScene counted = view.currentScene();
    QCOMPARE(counted.arcs.size(), 1);
    QCOMPARE(counted.arcs[0].text, QStringLiteral("KV handoff ×3"));
    QVERIFY2(counted.summary.contains(QStringLiteral("3 KV handoffs")),
             qPrintable(counted.summary));

    // A redirect between the same lanes is a second arc, in the redirect colour.
    MonitorFrame redirected = testFrame(7'001'500);
    redirected.redirects = {{"q9", "hot", "calm", "saturated"}};
    model.addFrame(redirected);
    const LaneScene mixed = view.currentScene();
    QCOMPARE(mixed.arcs.size(), 2);
    QCOMPARE(mixed.arcs[0].kind, ArcKind::Redirect);
    QCOMPARE(mixed.arcs[1].kind, ArcKind::Handoff);
    QVERIFY(mixed.arcs[0].end != mixed.arcs[1].end);

    // It fades like a redirect: gone once the fade window has passed without new ones.
    model.addFrame(testFrame(7'001'500 + LaneScene::kRedirectFadeMs + 500));
    QVERIFY(view.currentScene().arcs.isEmpty());
    QCOMPARE(countPixels(render(view), isHandoff), 0);
  }

  void decodeOnThePrefillNodeIsNoHandoff() {
    MonitorModel model;
    model.setInterpolation(false);
    TidalLaneView view(&model);
    view.resize(900, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    MonitorFrame prefilled = testFrame(8'000'000);
    prefilled.flows = {flow("m1", "mid-1", Stage::Prefill)};
    model.addFrame(prefilled);
    MonitorFrame decoding = testFrame(8'000'500);
    // The same node; and a decode whose prefill was never seen (the monitor started late).
    decoding.flows = {flow("m1", "mid-1", Stage::Decode), flow("m0", "calm", Stage::Decode)};
    model.addFrame(decoding);
    const LaneScene scene = view.currentScene();
    QVERIFY(scene.arcs.isEmpty());
    QCOMPARE(scene.handoffCount, 0);
    QVERIFY(model.history().latest().handoffs.isEmpty());
    QCOMPARE(countPixels(render(view), isHandoff), 0);
    // Settled by its first decode: a later decode flow elsewhere is no handoff either.
    MonitorFrame moved = testFrame(8'001'000);
    moved.flows = {flow("m1", "low-1", Stage::Decode)};
    model.addFrame(moved);
    QVERIFY(view.currentScene().arcs.isEmpty());
  }

  void handoffMemoryStaysBounded() {
    MonitorHistory history;
    const int capacity = HandoffTracker::kDefaultCapacity;
    // 60,000 distinct requests prefilled on four nodes, none decoded yet.
    constexpr int kFrames = 120;
    constexpr int kPerFrame = 500;
    for (int i = 0; i < kFrames; ++i) {
      MonitorFrame f = testFrame(9'000'000 + i * 250);
      for (int r = 0; r < kPerFrame; ++r) {
        f.flows.append(flow(QStringLiteral("p%1").arg(i * kPerFrame + r),
                            QStringLiteral("pre-%1").arg(r % 4), Stage::Prefill));
      }
      history.append(f);
      QVERIFY(history.trackedRequests() <= capacity);
    }
    QCOMPARE(history.trackedRequests(), capacity);
    // The oldest were forgotten, the newest are remembered.
    MonitorFrame decodes = testFrame(9'000'000 + kFrames * 250);
    const int newest = kFrames * kPerFrame - 1;
    decodes.flows = {flow("p0", "dec-0", Stage::Decode),
                     flow(QStringLiteral("p%1").arg(newest), "dec-0", Stage::Decode)};
    history.append(decodes);
    QCOMPARE(history.latest().handoffs.size(), 1);
    QCOMPARE(history.latest().handoffs[0].requestId, QStringLiteral("p%1").arg(newest));
    QCOMPARE(history.latest().handoffs[0].fromNode, QStringLiteral("pre-%1").arg(newest % 4));
    QCOMPARE(history.trackedRequests(), capacity - 1);  // decoded: settled, forgotten

    // Thousands of handoffs in one frame are kept as one record per pair of lanes.
    MonitorFrame many = testFrame(9'100'000);
    for (int r = 0; r < 4000; ++r) {
      const QString id = QStringLiteral("h%1").arg(r);
      many.flows.append(flow(id, QStringLiteral("pre-%1").arg(r % 2), Stage::Prefill));
      many.flows.append(flow(id, QStringLiteral("dec-%1").arg(r % 3), Stage::Decode));
    }
    history.append(many);
    QCOMPARE(history.latest().handoffs.size(), 6);
    int total = 0;
    for (const auto& h : history.latest().handoffs) total += h.count;
    QCOMPARE(total, 4000);
    QVERIFY(history.latest().flows.isEmpty());
    history.clear();
    QCOMPARE(history.trackedRequests(), 0);

    // The tracker on its own, small, forgets the least recently prefilled first.
    HandoffTracker tracker(2);
    tracker.observe({flow("a", "n1", Stage::Prefill), flow("b", "n1", Stage::Prefill)}, 1);
    tracker.observe({flow("a", "n2", Stage::Prefill)}, 2);  // prefilled again: now newest
    tracker.observe({flow("c", "n1", Stage::Prefill)}, 3);  // "b" goes
    QCOMPARE(tracker.size(), 2);
    const auto found =
        tracker.observe({flow("a", "n3", Stage::Decode), flow("b", "n3", Stage::Decode),
                         flow("c", "n1", Stage::Decode)},
                        4);
    QCOMPARE(found.size(), 1);
    QCOMPARE(found[0].requestId, QStringLiteral("a"));
    QCOMPARE(found[0].fromNode, QStringLiteral("n2"));
    QCOMPARE(found[0].toNode, QStringLiteral("n3"));
    QCOMPARE(found[0].timestampMs, 4);
    QCOMPARE(tracker.size(), 0);
  }

  void tideLineSitsAtThePrefillShare() {
    MonitorModel model;
    model.setInterpolation(false);
    TidalLaneView view(&model);
    view.resize(900, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    model.addFrame(testFrame(3'000'000));
    const LaneScene scene = view.currentScene();
    // Prefill capacity 32 + half of the mixed 16; decode 32 + 16 + the other half.
    const double share = 40.0 / 96.0;
    QCOMPARE(scene.prefillShare, share);
    const QRectF g = scene.layout.tideGauge;
    const int x = static_cast<int>(g.left() + share * g.width());
    const int y = static_cast<int>(g.center().y());
    const QImage image = render(view);
    QVERIFY2(near(image.pixel(x, y), palette::kTideLine, 30),
             qPrintable(describe(image.pixel(x, y))));
    QVERIFY2(near(image.pixel(x - 10, y), palette::kPrefill),
             qPrintable(describe(image.pixel(x - 10, y))));
    QVERIFY2(near(image.pixel(x + 10, y), palette::kDecode),
             qPrintable(describe(image.pixel(x + 10, y))));

    // The lane controller moves the mid node to prefill: the line moves right.
    MonitorFrame moved = testFrame(3'000'500);
    moved.nodes[2].role = Role::Prefill;
    model.addFrame(moved);
    const int x2 = static_cast<int>(g.left() + (48.0 / 96.0) * g.width());
    const QImage after = render(view);
    QVERIFY(near(after.pixel(x2, y), palette::kTideLine, 30));
    QVERIFY(near(after.pixel(x, y), palette::kPrefill));
  }

  void tideLineGlidesWhenInterpolating() {
    MonitorModel model;  // interpolation on
    model.addFrame(testFrame(4'000'000));
    MonitorFrame moved = testFrame(4'000'500);
    moved.nodes[2].role = Role::Prefill;
    // Times are passed in, not waited for: `before` is no later than the glide's start.
    const qint64 before = model.now();
    model.addFrame(moved);
    QCOMPARE(model.display(before).prefillShare, 40.0 / 96.0);  // it starts where it was
    QVERIFY(model.isAnimating(before));
    // Once the glide has had its time (the gap between the frames), it has arrived.
    QCOMPARE(model.display(before + 100'000).prefillShare, 48.0 / 96.0);
    QVERIFY(!model.isAnimating(before + 100'000));
  }

  void pauseFreezesAndScrubShowsThePast() {
    MonitorModel model;
    model.setInterpolation(false);
    for (int i = 0; i < 10; ++i) {
      MonitorFrame f = testFrame(5'000'000 + i * 500);
      f.nodes[0].active = i;
      model.addFrame(f);
    }
    model.setLive(false);
    model.addFrame(testFrame(5'005'000));  // arrives while paused: kept, not shown
    QCOMPARE(model.history().size(), 11);
    QCOMPARE(model.display(model.now()).frame.nodes[0].active, 9);
    model.scrubTo(0.0);
    QCOMPARE(model.display(model.now()).frame.timestampMs, 5'000'000);
    QCOMPARE(model.display(model.now()).frame.nodes[0].active, 0);
    model.setLive(true);
    QCOMPARE(model.display(model.now()).frame.timestampMs, 5'005'000);
  }

  void thousandsOfRequestsAreOneLabelledCluster() {
    MonitorFrame f = testFrame(6'000'000);
    f.nodes[0].active = 5000;
    const LaneScene scene = buildLaneScene(f, f.prefillShare(), {}, QSizeF(900, 600), 0);
    QCOMPARE(scene.clusters.size(), 1);  // the others have a dozen or fewer: dots
    QCOMPARE(scene.clusters[0].count, 5000);
    QVERIFY(
        scene.lanes[scene.layout.indexOf("hot")].rect.contains(scene.clusters[0].rect.center()));
    QVERIFY(scene.particles.size() <= scene.lanes.size() * LaneScene::kMaxParticles);
  }

  void recordedSurgeRendersInTheMonitorWindow() {
    QFile file(QStringLiteral(TIDELANE_SOURCE_DIR "/tests/ui/data/surge-frames.json"));
    QVERIFY2(file.open(QIODevice::ReadOnly), qPrintable(file.errorString()));
    const QJsonArray frames = QJsonDocument::fromJson(file.readAll()).array();
    QVERIFY(frames.size() >= 10);

    MonitorWindow window(nullptr);
    window.model()->setInterpolation(false);
    window.resize(1400, 900);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    int maxActive = 0;
    for (const auto& v : frames) {
      MonitorFrame f;
      QString error;
      QVERIFY2(fromJson(v.toObject(), &f, &error), qPrintable(error));
      maxActive = std::max(maxActive, f.totalActive());
      window.model()->addFrame(f);
    }
    window.charts()->refresh();
    QVERIFY(maxActive > 0);
    const LaneScene scene = window.laneView()->currentScene();
    QCOMPARE(scene.lanes.size(), window.model()->history().latest().nodes.size());
    QVERIFY(scene.lanes.size() >= 8);
    // Recorded just after two workers were killed mid-surge: their requests' redirects show.
    QVERIFY(!scene.arcs.isEmpty());

    const QString shot = qEnvironmentVariable("TIDELANE_SCREENSHOT");
    if (!shot.isEmpty()) QVERIFY(window.grab().save(shot));
  }
};

QTEST_MAIN(TestTidalLaneView)
#include "test_tidal_lane_view.moc"
