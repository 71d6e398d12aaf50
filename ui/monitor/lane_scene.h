// LaneScene: everything the tidal-lane view draws for one moment, computed from a frame
// (already interpolated), the tide share, the recent redirects and KV handoffs and the
// layout. Pure functions: the widget only paints what this says, and tests can ask where
// things are.
//
// Requests are drawn as particles, at most kMaxParticles a lane: a lane with more shows a
// cluster labelled with its count instead of one object per request, so 10,000 requests
// in flight cost the same to draw as 700.
#pragma once

#include <QColor>
#include <QList>
#include <QPainterPath>
#include <QPointF>
#include <QString>

#include "ui/monitor/lane_layout.h"
#include "ui/monitor/monitor_frame.h"
#include "ui/monitor/monitor_history.h"

namespace tidelane::ui::monitor {

// The palette, fixed so screenshots and pixel tests agree.
namespace palette {
inline const QColor kBackground{0x12, 0x18, 0x22};
inline const QColor kLane{0x1f, 0x29, 0x37};
inline const QColor kPlate{0x17, 0x1f, 0x2b};  // a lane's name plate
inline const QColor kText{0xe6, 0xed, 0xf3};
inline const QColor kMutedText{0x8b, 0x9b, 0xae};
inline const QColor kPrefill{0x7b, 0x61, 0xff};  // the prefill side of the tide gauge
inline const QColor kDecode{0x1e, 0x88, 0xc7};   // the decode side
inline const QColor kTideLine{0xff, 0xff, 0xff};
inline const QColor kRedirect{0xff, 0x3d, 0xd0};  // arcs: a colour no water level takes
// KV handoff arcs: a pure cyan. Water between the blue and green stops is a dull teal, and
// its lightened surface line a paler cyan that keeps some red; this has none (and none of
// kRedirect's red either).
inline const QColor kHandoff{0x00, 0xe5, 0xff};
inline const QColor kParticle{0xf5, 0xf9, 0xff};
inline const QColor kDown{0x4a, 0x4f, 0x57};
}  // namespace palette

// Water colour for a saturation level: calm blue through green and amber to red at 1.
QColor saturationColour(double level);

struct LaneVisual {
  QRectF rect;
  QRectF plate;  // left part with the name, never flooded so the name stays readable
  QRectF water;  // the filled part of the flow area, from its bottom
  QColor colour;
  QString name;
  QString detail;  // the binding dimension: "KV cache 93%"
  NodeState state = NodeState::Unknown;
  int active = 0;
  int arrivals = 0;
};

struct RequestCluster {
  QRectF rect;
  int count = 0;
};

enum class ArcKind {
  Redirect,  // a request moved away from a node (failed, saturated, drained)
  Handoff,   // a request's KV cache went from its prefill node to its decode node
};

struct RedirectArc {
  QPainterPath path;
  QPointF end;    // the arrow head, on the new lane
  QPointF label;  // where the reason goes
  QString text;   // reason or "KV handoff", "×N" when several share the lanes
  double opacity = 1;
  ArcKind kind = ArcKind::Redirect;
};

struct LaneScene {
  static constexpr int kMaxParticles = 12;
  static constexpr qint64 kRedirectFadeMs = 4000;
  static constexpr int kMaxArcs = 48;

  LaneLayout layout;
  QList<LaneVisual> lanes;   // same order as layout.lanes
  QList<QPointF> particles;  // request dots
  QList<RequestCluster> clusters;
  QList<RedirectArc> arcs;  // redirects first, then handoffs; kMaxArcs in all
  double prefillShare = 0.5;
  double tideX = 0;
  QString policy;
  // Redirects and handoffs still within the fade window (a "×N" arc counts N).
  int redirectCount = 0;
  int handoffCount = 0;
  // "in flight 10,000 · queued 120 · policy tidal", then "· 3 redirects · 40 KV handoffs"
  // while arcs are showing, as the arcs' legend.
  QString summary;
};

// `phaseSeconds` moves the particles (the display time; fixed when paused).
LaneScene buildLaneScene(const MonitorFrame& frame, double prefillShare,
                         const QList<MonitorHistory::AgedRedirect>& redirects, const QSizeF& size,
                         double phaseSeconds,
                         const QList<MonitorHistory::AgedHandoff>& handoffs = {});

// The tooltip for a node: binding dimension, the whole vector, hardware, requests.
QString describeNode(const NodeFrame& node);

}  // namespace tidelane::ui::monitor
