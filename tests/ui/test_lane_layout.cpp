// The lane layout and the data under the monitor, without a window: lanes grouped by tier
// (high, mid, low) then role (prefill, decode, mixed), names in natural order whatever order
// the router lists them in, equal and stable lane sizes; the tide share, interpolation,
// the history's per-second series and the JSON form of a frame.
#include <QJsonArray>
#include <QTest>
#include <random>

#include "ui/monitor/lane_layout.h"
#include "ui/monitor/monitor_frame.h"
#include "ui/monitor/monitor_history.h"

using namespace tidelane::ui::monitor;

namespace {

NodeFrame node(const QString& name, Tier tier, Role role, double level = 0.2, int maxBatch = 16) {
  NodeFrame n;
  n.name = name;
  n.tier = tier;
  n.role = role;
  n.state = NodeState::Ready;
  n.saturation.values[2] = level;
  n.maxBatch = maxBatch;
  return n;
}

MonitorFrame frameAt(qint64 ms, qint64 served, int queued) {
  MonitorFrame f;
  f.timestampMs = ms;
  f.counters.served = served;
  f.counters.accepted = served + queued;
  f.counters.queued = queued;
  return f;
}

}  // namespace

class TestLaneLayout : public QObject {
  Q_OBJECT

 private slots:
  void groupsByTierThenRoleInNaturalNameOrder() {
    QList<LaneKey> keys = {
        {"low-10", Tier::Low, Role::Decode},   {"mid-2", Tier::Mid, Role::Mixed},
        {"high-0", Tier::High, Role::Decode},  {"low-9", Tier::Low, Role::Decode},
        {"high-1", Tier::High, Role::Prefill}, {"mid-1", Tier::Mid, Role::Prefill},
        {"low-4", Tier::Low, Role::Mixed},     {"x", Tier::Unknown, Role::Mixed},
        {"high-2", Tier::High, Role::Mixed},
    };
    const LaneLayout l = layoutLanes(keys, QSizeF(1200, 800));
    QStringList names;
    for (const auto& lane : l.lanes) names << lane.key.name;
    QCOMPARE(names, QStringList({"high-1", "high-0", "high-2", "mid-1", "mid-2", "low-9", "low-10",
                                 "low-4", "x"}));
    QCOMPARE(l.groups.size(), 8);
    QCOMPARE(l.groups[0].tier, Tier::High);
    QCOMPARE(l.groups[0].role, Role::Prefill);
    QCOMPARE(l.groups[1].role, Role::Decode);
    QCOMPARE(l.groups[5].tier, Tier::Low);
    QCOMPARE(l.groups[5].laneCount, 2);  // low-9 and low-10 together
    // Each group's header sits above its first lane, and groups go down the page.
    for (int g = 0; g < l.groups.size(); ++g) {
      const auto& first = l.lanes[l.groups[g].firstLane];
      QCOMPARE(first.group, g);
      QVERIFY(l.groups[g].header.bottom() <= first.rect.top());
      if (g > 0) QVERIFY(l.groups[g].header.top() > l.groups[g - 1].header.top());
    }
  }

  void orderDoesNotDependOnInputOrder() {
    QList<LaneKey> keys;
    for (int i = 0; i < 64; ++i) {
      keys.append({QStringLiteral("node-%1").arg(i), static_cast<Tier>(i % 3),
                   static_cast<Role>((i / 3) % 3)});
    }
    const LaneLayout a = layoutLanes(keys, QSizeF(1600, 900));
    std::mt19937 rng(42);
    for (int round = 0; round < 5; ++round) {
      std::shuffle(keys.begin(), keys.end(), rng);
      const LaneLayout b = layoutLanes(keys, QSizeF(1600, 900));
      QCOMPARE(b.lanes.size(), a.lanes.size());
      for (int i = 0; i < a.lanes.size(); ++i) {
        QCOMPARE(b.lanes[i].key.name, a.lanes[i].key.name);
        QCOMPARE(b.lanes[i].rect, a.lanes[i].rect);
      }
    }
  }

  void lanesAreEqualNonOverlappingAndFit() {
    for (int count : {1, 4, 16, 64}) {
      QList<LaneKey> keys;
      for (int i = 0; i < count; ++i) {
        keys.append(
            {QStringLiteral("n%1").arg(i), static_cast<Tier>(i % 3), static_cast<Role>(i % 3)});
      }
      const QSizeF size(1600, 900);
      const LaneLayout l = layoutLanes(keys, size);
      QCOMPARE(l.lanes.size(), count);
      for (int i = 0; i < count; ++i) {
        const QRectF r = l.lanes[i].rect;
        QCOMPARE(r.height(), l.laneHeight);
        QCOMPARE(r.width(), size.width() - 2 * LaneLayout::kMargin);
        QVERIFY(r.top() >= l.tideGauge.bottom());
        if (i > 0) QVERIFY(r.top() >= l.lanes[i - 1].rect.bottom());
        QCOMPARE(l.laneAt(r.center()), i);
        QCOMPARE(l.indexOf(l.lanes[i].key.name), i);
      }
      QVERIFY2(l.contentHeight <= size.height(), qPrintable(QString::number(l.contentHeight)));
      QVERIFY(l.laneHeight <= LaneLayout::kMaxLaneHeight);
    }
    // A few nodes do not become giant lanes.
    QCOMPARE(
        layoutLanes(QList<LaneKey>{{"a", Tier::High, Role::Mixed}}, QSizeF(800, 900)).laneHeight,
        LaneLayout::kMaxLaneHeight);
  }

  void saturationAndTrafficDoNotMoveLanes() {
    MonitorFrame calm, busy;
    for (int i = 0; i < 12; ++i) {
      calm.nodes.append(
          node(QStringLiteral("n%1").arg(i), static_cast<Tier>(i % 3), Role::Mixed, 0.1));
      busy.nodes.append(
          node(QStringLiteral("n%1").arg(i), static_cast<Tier>(i % 3), Role::Mixed, 1.4));
      busy.nodes.back().active = 900;
    }
    const LaneLayout a = layoutLanes(calm, QSizeF(1000, 700));
    const LaneLayout b = layoutLanes(busy, QSizeF(1000, 700));
    for (int i = 0; i < a.lanes.size(); ++i) QCOMPARE(a.lanes[i].rect, b.lanes[i].rect);
  }

  void tideShareWeighsCapacityAndMixedCountsHalf() {
    MonitorFrame f;
    QCOMPARE(f.prefillShare(), 0.5);
    f.nodes = {node("p", Tier::High, Role::Prefill, 0, 32),
               node("d", Tier::High, Role::Decode, 0, 32), node("m", Tier::Mid, Role::Mixed, 0, 16),
               node("l", Tier::Low, Role::Decode, 0, 16)};
    QCOMPARE(f.prefillShare(), 40.0 / 96.0);
    f.nodes[0].state = NodeState::Down;  // a dead node carries no capacity
    QCOMPARE(f.prefillShare(), 8.0 / 64.0);
    const LaneLayout l = layoutLanes(f, QSizeF(1000, 600));
    QCOMPARE(l.tideX(0.25), l.tideGauge.left() + 0.25 * l.tideGauge.width());
  }

  void interpolationMovesNumbersAndKeepsTheNewestFacts() {
    MonitorFrame a, b;
    a.timestampMs = 1000;
    b.timestampMs = 1500;
    a.nodes = {node("n", Tier::High, Role::Prefill, 0.2)};
    b.nodes = {node("n", Tier::High, Role::Decode, 0.6), node("new", Tier::Low, Role::Mixed, 0.9)};
    a.nodes[0].active = 10;
    b.nodes[0].active = 30;
    const MonitorFrame m = interpolate(a, b, 0.5);
    QCOMPARE(m.timestampMs, 1250);
    QVERIFY(qFuzzyCompare(m.nodes[0].saturation.binding(), 0.4));
    QCOMPARE(m.nodes[0].active, 20);
    QCOMPARE(m.nodes[0].role, Role::Decode);
    QVERIFY(qFuzzyCompare(m.nodes[1].saturation.binding(), 0.9));
    QCOMPARE(interpolate(a, b, 1.0).nodes[0].active, 30);
    QCOMPARE(b.nodes[1].saturation.bindingIndex(), 2);
  }

  void historyKeepsTheWindowAndDerivesPerSecondSeries() {
    MonitorHistory h(10'000);
    // 30 s of frames every 250 ms: 40 served per second, a queue that grows by 1 a second.
    for (int i = 0; i <= 120; ++i) {
      MonitorFrame f = frameAt(1'000'000 + i * 250, i * 10, i / 4);
      f.flows.append({QStringLiteral("r%1").arg(i), QStringLiteral("n"), Stage::Whole});
      f.nodes = {node("n", Tier::High, Role::Mixed)};
      QVERIFY(h.append(f));
    }
    QVERIFY(!h.append(frameAt(1'000'000, 0, 0)));  // older than the newest: dropped
    QCOMPARE(h.lastMs(), 1'030'000);
    QVERIFY(h.firstMs() >= 1'020'000);
    QVERIFY(h.latest().flows.isEmpty());        // flows are not kept...
    QCOMPARE(h.latest().nodes[0].arrivals, 1);  // ...their count per node is
    const auto served = h.series(MonitorHistory::Series::Throughput);
    QCOMPARE(served.size(), 10);
    QCOMPARE(served.last().x(), 0.0);
    for (const auto& p : served) QCOMPARE(p.y(), 40.0);
    const auto queued = h.series(MonitorHistory::Series::Queued);
    QCOMPARE(queued.last().y(), 30.0);
    QCOMPARE(queued.first().x(), -10.0);
    QCOMPARE(h.indexAt(1'029'999), h.size() - 2);
    QCOMPARE(h.indexAt(0), 0);

    // A router restart (counters back to zero) is not a negative rate.
    h.append(frameAt(1'031'000, 0, 0));
    QCOMPARE(h.series(MonitorHistory::Series::Served).last().y(), 0.0);
  }

  void aSplitRequestArrivesOnceAtEachOfItsNodes() {
    // The router's flows for one split request: PREFILL on p, then its KV cache moving to d
    // and DECODE on d. Each node saw one arrival, and the KV crossed between them once.
    MonitorHistory h;
    MonitorFrame f = frameAt(5'000, 0, 0);
    f.nodes = {node("p", Tier::High, Role::Prefill), node("d", Tier::Low, Role::Decode)};
    f.flows = {{QStringLiteral("r1"), QStringLiteral("p"), Stage::Prefill},
               {QStringLiteral("r1"), QStringLiteral("d"), Stage::KvTransfer},
               {QStringLiteral("r1"), QStringLiteral("d"), Stage::Decode}};
    QVERIFY(h.append(f));
    QCOMPARE(h.latest().node(QStringLiteral("p"))->arrivals, 1);
    QCOMPARE(h.latest().node(QStringLiteral("d"))->arrivals, 1);
    QCOMPARE(h.latest().handoffs.size(), 1);
    QCOMPARE(h.latest().handoffs[0].count, 1);
  }

  void redirectsAgeAndFadeOut() {
    MonitorHistory h;
    MonitorFrame a = frameAt(10'000, 0, 0), b = frameAt(12'000, 0, 0), c = frameAt(15'000, 0, 0);
    a.redirects = {{"r1", "x", "y", "worker lost"}};
    b.redirects = {{"r2", "y", "z", "saturated"}};
    for (const auto& f : {a, b, c}) h.append(f);
    const auto recent = h.redirectsBefore(15'000, 4000);
    QCOMPARE(recent.size(), 1);
    QCOMPARE(recent[0].redirect.requestId, QStringLiteral("r2"));
    QCOMPARE(recent[0].ageMs, 3000);
    QCOMPARE(h.redirectsBefore(12'500, 4000).size(), 2);
  }

  void jsonRoundTripsAndRejectsNonsense() {
    MonitorFrame f = frameAt(1700000000123, 5, 2);
    f.policy = QStringLiteral("tidal");
    f.nodes = {node("n1", Tier::Mid, Role::Decode, 0.7)};
    f.nodes[0].gpus = {QStringLiteral("GPU 0")};
    f.flows = {{"r1", "n1", Stage::Decode}};
    f.redirects = {{"r0", "n0", "n1", "saturated"}};
    MonitorFrame g;
    QString error;
    QVERIFY2(fromJson(toJson(f), &g, &error), qPrintable(error));
    QCOMPARE(toJson(g), toJson(f));
    QCOMPARE(g.nodes[0].role, Role::Decode);
    QCOMPARE(g.flows[0].stage, Stage::Decode);

    QJsonObject bad = toJson(f);
    QJsonArray nodes = bad["nodes"].toArray();
    QJsonObject n = nodes[0].toObject();
    n["role"] = "sideways";
    nodes[0] = n;
    bad["nodes"] = nodes;
    QVERIFY(!fromJson(bad, &g, &error));
    QVERIFY(error.contains(QStringLiteral("n1")));
    QVERIFY(!fromJson(QJsonObject{{"nodes", QJsonArray()}}, &g, &error));
  }
};

QTEST_GUILESS_MAIN(TestLaneLayout)
#include "test_lane_layout.moc"
