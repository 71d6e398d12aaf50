#include "ui/monitor/monitor_history.h"

#include <algorithm>

namespace tidelane::ui::monitor {
namespace {

qint64 counterOf(const MonitorFrame& f, MonitorHistory::Series s) {
  switch (s) {
    case MonitorHistory::Series::Throughput:
    case MonitorHistory::Series::Served:
      return f.counters.served;
    case MonitorHistory::Series::Accepted:
      return f.counters.accepted;
    case MonitorHistory::Series::Degraded:
      return f.counters.degraded;
    case MonitorHistory::Series::Rejected:
      return f.counters.rejected;
    default:
      return 0;
  }
}

double levelOf(const MonitorFrame& f, MonitorHistory::Series s) {
  switch (s) {
    case MonitorHistory::Series::Queued:
      return f.counters.queued;
    case MonitorHistory::Series::InFlight:
      return f.counters.inFlight;
    case MonitorHistory::Series::TtftP50:
      return f.counters.ttftP50Ms;
    case MonitorHistory::Series::TtftP99:
      return f.counters.ttftP99Ms;
    case MonitorHistory::Series::TokensPerSecond: {
      double sum = 0;
      for (const auto& n : f.nodes) sum += n.tokensPerSecond;
      return sum;
    }
    default:
      return 0;
  }
}

bool isLevel(MonitorHistory::Series s) {
  return s == MonitorHistory::Series::Queued || s == MonitorHistory::Series::InFlight ||
         s == MonitorHistory::Series::TokensPerSecond || s == MonitorHistory::Series::TtftP50 ||
         s == MonitorHistory::Series::TtftP99;
}

}  // namespace

bool MonitorHistory::append(MonitorFrame frame) {
  if (!frames_.empty() && frame.timestampMs < frames_.back().timestampMs) return false;
  if (!frame.flows.isEmpty()) {
    frame.countArrivals();
    frame.flows.clear();
    frame.flows.squeeze();
  }
  if (frame.redirects.size() > kMaxRedirectsPerFrame) {
    frame.redirects.resize(kMaxRedirectsPerFrame);
  }
  frames_.push_back(std::move(frame));
  const qint64 oldest = frames_.back().timestampMs - windowMs_;
  while (frames_.size() > 1 && frames_.front().timestampMs < oldest) frames_.pop_front();
  return true;
}

int MonitorHistory::indexAt(qint64 timestampMs) const {
  if (frames_.empty()) return -1;
  const auto it =
      std::upper_bound(frames_.begin(), frames_.end(), timestampMs,
                       [](qint64 t, const MonitorFrame& f) { return t < f.timestampMs; });
  return std::max(0, static_cast<int>(it - frames_.begin()) - 1);
}

QList<MonitorHistory::AgedRedirect> MonitorHistory::redirectsBefore(qint64 t,
                                                                    qint64 windowMs) const {
  QList<AgedRedirect> out;
  for (int i = indexAt(t); i >= 0; --i) {
    const MonitorFrame& f = at(i);
    const qint64 age = t - f.timestampMs;
    if (age >= windowMs) break;
    if (age < 0) continue;
    for (const auto& r : f.redirects) out.append({r, age});
  }
  return out;
}

QList<QPointF> MonitorHistory::series(Series which) const {
  QList<QPointF> points;
  if (frames_.size() < 2) return points;
  const qint64 last = frames_.back().timestampMs;
  // Sample the newest frame at or before each whole second, counting back from the newest
  // frame, so the points do not shift sideways as frames arrive within a second.
  const qint64 first = frames_.front().timestampMs;
  const int seconds = static_cast<int>((last - first) / 1000);
  points.reserve(seconds + 1);
  const MonitorFrame* previous = nullptr;
  for (int k = seconds; k >= 0; --k) {
    const qint64 t = last - qint64(k) * 1000;
    const MonitorFrame& f = at(indexAt(t));
    const double x = -double(k);
    if (isLevel(which)) {
      points.append({x, levelOf(f, which)});
    } else if (previous) {
      const double dt = (f.timestampMs - previous->timestampMs) / 1000.0;
      const qint64 delta = counterOf(f, which) - counterOf(*previous, which);
      points.append({x, dt > 0 && delta > 0 ? double(delta) / dt : 0.0});
    }
    previous = &f;
  }
  return points;
}

}  // namespace tidelane::ui::monitor
