#include "ui/monitor/lane_layout.h"

#include <algorithm>

namespace tidelane::ui::monitor {
namespace {

int roleRank(Role r) {
  switch (r) {
    case Role::Prefill:
      return 0;
    case Role::Decode:
      return 1;
    case Role::Mixed:
      break;
  }
  return 2;
}

// Natural order: runs of digits compare by value, so "low-9" < "low-10".
int naturalCompare(const QString& a, const QString& b) {
  qsizetype i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i].isDigit() && b[j].isDigit()) {
      qsizetype ei = i, ej = j;
      while (ei < a.size() && a[ei].isDigit()) ++ei;
      while (ej < b.size() && b[ej].isDigit()) ++ej;
      // Compare by value without overflow: strip leading zeros, then length, then digits.
      QStringView da = QStringView(a).mid(i, ei - i), db = QStringView(b).mid(j, ej - j);
      while (da.size() > 1 && da.front() == u'0') da = da.mid(1);
      while (db.size() > 1 && db.front() == u'0') db = db.mid(1);
      if (da.size() != db.size()) return da.size() < db.size() ? -1 : 1;
      if (const int c = da.compare(db); c != 0) return c;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j] ? -1 : 1;
      ++i;
      ++j;
    }
  }
  if (a.size() - i != b.size() - j) return (a.size() - i) < (b.size() - j) ? -1 : 1;
  return a.compare(b);  // "a01" vs "a1": still a strict order
}

}  // namespace

bool laneLessThan(const LaneKey& a, const LaneKey& b) {
  if (a.tier != b.tier) return static_cast<int>(a.tier) < static_cast<int>(b.tier);
  if (a.role != b.role) return roleRank(a.role) < roleRank(b.role);
  return naturalCompare(a.name, b.name) < 0;
}

int LaneLayout::indexOf(const QString& name) const {
  for (int i = 0; i < lanes.size(); ++i) {
    if (lanes[i].key.name == name) return i;
  }
  return -1;
}

int LaneLayout::laneAt(const QPointF& p) const {
  for (int i = 0; i < lanes.size(); ++i) {
    if (lanes[i].rect.contains(p)) return i;
  }
  return -1;
}

QRectF LaneLayout::flowRect(int lane) const {
  const QRectF r = lanes[lane].rect;
  const double label = std::min(kLabelWidth, r.width() / 3);
  return r.adjusted(label, 0, 0, 0);
}

double LaneLayout::tideX(double prefillShare) const {
  return tideGauge.left() + std::clamp(prefillShare, 0.0, 1.0) * tideGauge.width();
}

LaneLayout layoutLanes(QList<LaneKey> nodes, const QSizeF& size) {
  using L = LaneLayout;
  LaneLayout out;
  std::stable_sort(nodes.begin(), nodes.end(), laneLessThan);
  const double width = std::max(0.0, size.width() - 2 * L::kMargin);
  out.tideGauge = QRectF(L::kMargin, L::kMargin, width, L::kGaugeHeight);

  // Count groups and tier changes first: they fix the height left for lanes.
  int groups = 0, tierGaps = 0;
  for (int i = 0; i < nodes.size(); ++i) {
    if (i == 0 || nodes[i].tier != nodes[i - 1].tier || nodes[i].role != nodes[i - 1].role) {
      ++groups;
      if (i > 0 && nodes[i].tier != nodes[i - 1].tier) ++tierGaps;
    }
  }
  const double top = out.tideGauge.bottom() + L::kTierGap;
  const double fixed = groups * L::kHeaderHeight + tierGaps * L::kTierGap + L::kMargin;
  const double perLane =
      nodes.isEmpty() ? 0 : (size.height() - top - fixed) / nodes.size() - L::kLaneGap;
  out.laneHeight = std::clamp(perLane, L::kMinLaneHeight, L::kMaxLaneHeight);

  double y = top;
  for (int i = 0; i < nodes.size(); ++i) {
    const LaneKey& k = nodes[i];
    const bool newGroup = i == 0 || k.tier != nodes[i - 1].tier || k.role != nodes[i - 1].role;
    if (newGroup) {
      if (i > 0 && k.tier != nodes[i - 1].tier) y += L::kTierGap;
      out.groups.append({k.tier, k.role, QRectF(L::kMargin, y, width, L::kHeaderHeight),
                         static_cast<int>(out.lanes.size()), 0});
      y += L::kHeaderHeight;
    }
    out.lanes.append(
        {k, QRectF(L::kMargin, y, width, out.laneHeight), static_cast<int>(out.groups.size()) - 1});
    ++out.groups.back().laneCount;
    y += out.laneHeight + L::kLaneGap;
  }
  out.contentHeight = y + L::kMargin;
  return out;
}

LaneLayout layoutLanes(const MonitorFrame& frame, const QSizeF& size) {
  QList<LaneKey> keys;
  keys.reserve(frame.nodes.size());
  for (const auto& n : frame.nodes) keys.append({n.name, n.tier, n.role});
  return layoutLanes(std::move(keys), size);
}

}  // namespace tidelane::ui::monitor
