#include "ui/monitor/lane_scene.h"

#include <QCoreApplication>
#include <QHash>
#include <QLocale>
#include <algorithm>
#include <cmath>

namespace tidelane::ui::monitor {
namespace {

QString trm(const char* s) {
  return QCoreApplication::translate("tidelane::ui::monitor", s);
}

QColor mix(const QColor& a, const QColor& b, double t) {
  const auto m = [t](int x, int y) { return static_cast<int>(std::lround(x + (y - x) * t)); };
  return QColor(m(a.red(), b.red()), m(a.green(), b.green()), m(a.blue(), b.blue()));
}

QString percent(double v) {
  return QStringLiteral("%1%").arg(std::lround(v * 100));
}

QString gib(qint64 bytes) {
  return QLocale().toString(bytes / double(1ll << 30), 'f', 1);
}

// Arcs between the same two lanes are drawn as one labelled with their count; the newest
// sets the text and how faded it is.
struct ArcPairs {
  struct Pair {
    QString from;
    QString to;
    QString text;
    qint64 ageMs = 0;
    int count = 0;
  };
  QList<Pair> pairs;  // in order of first appearance
  QHash<QString, qsizetype> index;

  void add(const QString& from, const QString& to, const QString& text, qint64 ageMs, int count) {
    if (ageMs >= LaneScene::kRedirectFadeMs) return;
    const QString key = from + QChar(0) + to;
    auto it = index.constFind(key);
    if (it == index.constEnd()) {
      it = index.insert(key, pairs.size());
      pairs.append({from, to, text, ageMs, 0});
    }
    Pair& p = pairs[*it];
    if (ageMs < p.ageMs) {
      p.text = text;
      p.ageMs = ageMs;
    }
    p.count += count;
  }
};

}  // namespace

QColor saturationColour(double level) {
  // Stops chosen so that "calm" is clearly blue/green and anything near 1 clearly red.
  struct Stop {
    double at;
    QColor colour;
  };
  static const Stop stops[] = {{0.0, QColor(0x2a, 0x8c, 0xe8)},
                               {0.45, QColor(0x23, 0xb5, 0x8a)},
                               {0.7, QColor(0xf2, 0xb1, 0x34)},
                               {0.9, QColor(0xe6, 0x39, 0x46)},
                               {1.0, QColor(0xd0, 0x1c, 0x2c)}};
  level = std::clamp(level, 0.0, 1.0);
  for (std::size_t i = 1; i < std::size(stops); ++i) {
    if (level <= stops[i].at) {
      const double t = (level - stops[i - 1].at) / (stops[i].at - stops[i - 1].at);
      return mix(stops[i - 1].colour, stops[i].colour, t);
    }
  }
  return stops[std::size(stops) - 1].colour;
}

QString describeNode(const NodeFrame& n) {
  const int b = n.saturation.bindingIndex();
  QString s =
      trm("<b>%1</b> — %2 tier, %3 lane, %4")
          .arg(n.name.toHtmlEscaped(), tierName(n.tier), roleName(n.role), stateName(n.state));
  s += QStringLiteral("<br>") +
       trm("Binding: <b>%1 %2</b>")
           .arg(Saturation::dimensionName(b), percent(n.saturation.binding()));
  s += QStringLiteral("<table>");
  for (int i = 0; i < Saturation::kDimensions; ++i) {
    s += QStringLiteral("<tr><td>%1</td><td align=right>%2</td></tr>")
             .arg(Saturation::dimensionName(i),
                  percent(n.saturation.values[static_cast<std::size_t>(i)]));
  }
  s += QStringLiteral("</table>");
  s += trm("Requests: %1 running of %2 · %3 served · %4 tokens/s")
           .arg(n.active)
           .arg(n.maxBatch)
           .arg(n.servedTotal)
           .arg(QLocale().toString(n.tokensPerSecond, 'f', 0));
  if (!n.model.isEmpty())
    s += QStringLiteral("<br>") + trm("Model: %1").arg(n.model.toHtmlEscaped());
  s += QStringLiteral("<br>") +
       trm("CPU %1 · memory %2 / %3 GiB")
           .arg(percent(n.cpuUtilisation), gib(n.memoryUsedBytes), gib(n.memoryTotalBytes));
  for (const auto& g : n.gpus) s += QStringLiteral("<br>") + g.toHtmlEscaped();
  return s;
}

LaneScene buildLaneScene(const MonitorFrame& frame, double prefillShare,
                         const QList<MonitorHistory::AgedRedirect>& redirects, const QSizeF& size,
                         double phaseSeconds, const QList<MonitorHistory::AgedHandoff>& handoffs) {
  LaneScene scene;
  scene.layout = layoutLanes(frame, size);
  scene.prefillShare = std::clamp(prefillShare, 0.0, 1.0);
  scene.tideX = scene.layout.tideX(scene.prefillShare);
  scene.policy = frame.policy;
  const QLocale locale;
  scene.summary =
      trm("%1 in flight · %2 queued · policy %3")
          .arg(locale.toString(frame.counters.inFlight), locale.toString(frame.counters.queued),
               frame.policy.isEmpty() ? trm("unknown") : frame.policy);

  QHash<QString, const NodeFrame*> byName;
  for (const auto& n : frame.nodes) byName.insert(n.name, &n);

  const auto& layout = scene.layout;
  scene.lanes.reserve(layout.lanes.size());
  for (int i = 0; i < layout.lanes.size(); ++i) {
    const NodeFrame& n = *byName.value(layout.lanes[i].key.name);
    LaneVisual v;
    v.rect = layout.lanes[i].rect;
    const QRectF flowArea = layout.flowRect(i);
    v.plate = QRectF(v.rect.topLeft(), QPointF(flowArea.left(), v.rect.bottom()));
    const double level = std::clamp(n.saturation.binding(), 0.0, 1.0);
    const double h = std::round(v.rect.height() * level);
    v.water = QRectF(flowArea.left(), v.rect.bottom() - h, flowArea.width(), h);
    v.colour = n.state == NodeState::Down ? palette::kDown : saturationColour(level);
    v.name = n.name;
    v.detail = trm("%1 %2").arg(Saturation::dimensionName(n.saturation.bindingIndex()),
                                percent(n.saturation.binding()));
    v.state = n.state;
    v.active = n.active;
    v.arrivals = n.arrivals;
    scene.lanes.append(v);

    // Particles drift left to right along the middle of the lane; faster on a node that
    // produces more tokens, so a busy fast lane looks busy.
    if (n.active <= 0 || n.state == NodeState::Down) continue;
    const QRectF flow = layout.flowRect(i);
    const double speed = 0.12 + 0.3 * std::min(1.0, n.tokensPerSecond / 400.0);
    const double y = flow.center().y();
    if (n.active <= LaneScene::kMaxParticles) {
      for (int p = 0; p < n.active; ++p) {
        const double f = std::fmod(double(p) / n.active + phaseSeconds * speed, 1.0);
        scene.particles.append({flow.left() + f * flow.width() * 0.8, y});
      }
    } else {
      // A stream of a few dots towards the cluster, which carries the count.
      const double clusterWidth = std::min(72.0, flow.width() * 0.2);
      const double h = std::clamp(v.rect.height() * 0.6, 6.0, 18.0);
      scene.clusters.append(
          {QRectF(flow.right() - clusterWidth - 4, y - h / 2, clusterWidth, h), n.active});
      const double streamWidth = flow.width() - clusterWidth - 8;
      for (int p = 0; p < 6; ++p) {
        const double f = std::fmod(p / 6.0 + phaseSeconds * speed, 1.0);
        scene.particles.append({flow.left() + f * streamWidth, y});
      }
    }
  }

  ArcPairs redirectPairs;
  for (const auto& r : redirects) {
    redirectPairs.add(r.redirect.fromNode, r.redirect.toNode, r.redirect.reason, r.ageMs, 1);
  }
  ArcPairs handoffPairs;
  for (const auto& h : handoffs) {
    handoffPairs.add(h.handoff.fromNode, h.handoff.toNode, trm("KV handoff"), h.ageMs,
                     std::max(1, h.handoff.count));
  }

  const auto addArc = [&](const ArcPairs::Pair& p, ArcKind kind) {
    if (scene.arcs.size() >= LaneScene::kMaxArcs) return;
    const int a = layout.indexOf(p.from);
    const int b = layout.indexOf(p.to);
    if (b < 0 || a == b) return;
    // Handoffs leave and land further left than redirects, so a redirect and a handoff
    // between the same two lanes are two arcs rather than one drawn over the other.
    const double along = kind == ArcKind::Handoff ? 0.35 : 0.55;
    const QRectF fb = layout.flowRect(b);
    const QPointF end(fb.left() + fb.width() * along, fb.center().y());
    // A node that died mid-answer has left the frame by the time its redirects are seen:
    // its arc comes in from the header of the new lane's group, named in the label.
    const QPointF start =
        a >= 0 ? QPointF(layout.flowRect(a).left() + layout.flowRect(a).width() * along,
                         layout.flowRect(a).center().y())
               : QPointF(fb.left(), layout.groups[layout.lanes[b].group].header.center().y());
    const double bulge = std::min(160.0, 40 + 0.35 * std::abs(end.y() - start.y()));
    RedirectArc arc;
    arc.kind = kind;
    arc.path.moveTo(start);
    arc.path.cubicTo(start + QPointF(bulge, 0), end + QPointF(bulge, 0), end);
    arc.end = end;
    arc.label = arc.path.pointAtPercent(0.5) + QPointF(6, 0);
    arc.text = a >= 0 ? p.text : trm("%1 (from %2, gone)").arg(p.text, p.from);
    if (p.count > 1) arc.text = trm("%1 ×%2").arg(arc.text).arg(p.count);
    arc.opacity = 1.0 - double(p.ageMs) / LaneScene::kRedirectFadeMs;
    scene.arcs.append(arc);
  };
  for (const auto& p : redirectPairs.pairs) {
    scene.redirectCount += p.count;
    addArc(p, ArcKind::Redirect);
  }
  for (const auto& p : handoffPairs.pairs) {
    scene.handoffCount += p.count;
    addArc(p, ArcKind::Handoff);
  }
  if (scene.redirectCount > 0) {
    scene.summary += scene.redirectCount == 1
                         ? trm(" · 1 redirect")
                         : trm(" · %1 redirects").arg(locale.toString(scene.redirectCount));
  }
  if (scene.handoffCount > 0) {
    scene.summary += scene.handoffCount == 1
                         ? trm(" · 1 KV handoff")
                         : trm(" · %1 KV handoffs").arg(locale.toString(scene.handoffCount));
  }
  return scene;
}

}  // namespace tidelane::ui::monitor
