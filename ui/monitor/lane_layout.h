// Lane layout: where each node's lane goes. A pure function of the nodes' names, tiers and
// roles and the size to fill, so it is tested without a window and the lanes do not jump
// when saturation or traffic changes.
//
// From the top: the tide gauge (the prefill/decode split), then one group per (tier, role)
// that has nodes, tiers High, Mid, Low (then Unknown), roles PREFILL, DECODE, MIXED within
// a tier, each group a header line and its lanes sorted by name (digits compared as
// numbers, so low-9 comes before low-10). Every lane has the same height: what the area
// allows, between kMinLaneHeight and kMaxLaneHeight.
#pragma once

#include <QList>
#include <QRectF>
#include <QSizeF>
#include <QString>

#include "ui/monitor/monitor_frame.h"

namespace tidelane::ui::monitor {

struct LaneKey {
  QString name;
  Tier tier = Tier::Unknown;
  Role role = Role::Mixed;
};

struct LaneGroup {
  Tier tier = Tier::Unknown;
  Role role = Role::Mixed;
  QRectF header;  // the line naming the group
  int firstLane = 0;
  int laneCount = 0;
};

struct LaneRect {
  LaneKey key;
  QRectF rect;
  int group = 0;  // index into LaneLayout::groups
};

struct LaneLayout {
  static constexpr double kMargin = 8;
  static constexpr double kGaugeHeight = 18;
  static constexpr double kHeaderHeight = 16;
  static constexpr double kTierGap = 8;
  static constexpr double kLaneGap = 2;
  static constexpr double kMinLaneHeight = 4;
  static constexpr double kMaxLaneHeight = 56;
  static constexpr double kLabelWidth = 170;  // left part of a lane: its name plate

  QRectF tideGauge;  // strip at the top: prefill share on the left, decode on the right
  QList<LaneGroup> groups;
  QList<LaneRect> lanes;  // top to bottom
  double laneHeight = 0;
  double contentHeight = 0;  // bottom of the last lane plus the margin

  int indexOf(const QString& name) const;  // -1 when absent
  int laneAt(const QPointF& p) const;      // lane under p, -1 when none
  // The part of a lane where requests flow (right of its label).
  QRectF flowRect(int lane) const;
  // x of the tide line for a prefill share in [0,1].
  double tideX(double prefillShare) const;
};

LaneLayout layoutLanes(QList<LaneKey> nodes, const QSizeF& size);
LaneLayout layoutLanes(const MonitorFrame& frame, const QSizeF& size);

// Order of lanes: tier, then role, then name (numbers in names compared by value).
bool laneLessThan(const LaneKey& a, const LaneKey& b);

}  // namespace tidelane::ui::monitor
