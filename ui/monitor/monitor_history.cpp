#include "ui/monitor/monitor_history.h"

#include <algorithm>
#include <iterator>

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

// One record per (from, to) pair, in order of first appearance; the newest request names it.
void mergeByLanes(const QList<HandoffEvent>& found, QList<HandoffEvent>* into) {
  QHash<QString, qsizetype> at;
  for (qsizetype i = 0; i < into->size(); ++i) {
    at.insert((*into)[i].fromNode + QChar(0) + (*into)[i].toNode, i);
  }
  for (const auto& h : found) {
    const QString key = h.fromNode + QChar(0) + h.toNode;
    const auto it = at.constFind(key);
    if (it != at.constEnd()) {
      HandoffEvent& merged = (*into)[*it];
      merged.count += h.count;
      merged.requestId = h.requestId;
      merged.timestampMs = std::max(merged.timestampMs, h.timestampMs);
    } else if (into->size() < MonitorHistory::kMaxHandoffsPerFrame) {
      at.insert(key, into->size());
      into->append(h);
    }
  }
}

}  // namespace

HandoffTracker::HandoffTracker(int capacity) : capacity_(std::max(1, capacity)) {}

void HandoffTracker::clear() {
  index_.clear();
  order_.clear();
}

QList<HandoffEvent> HandoffTracker::observe(const QList<FlowEvent>& flows, qint64 timestampMs) {
  QList<HandoffEvent> out;
  // Prefills first: a request prefilled and sent on to decode between two frames has both
  // flows in one frame, and their order within it is not promised.
  for (const auto& f : flows) {
    if (f.stage != Stage::Prefill) continue;
    const auto it = index_.constFind(f.requestId);
    if (it != index_.constEnd()) {
      // Prefilled again (its first prefill node failed): the newest node is where the KV is.
      (*it)->node = f.toNode;
      order_.splice(order_.end(), order_, *it);
      continue;
    }
    order_.push_back({f.requestId, f.toNode});
    index_.insert(f.requestId, std::prev(order_.end()));
    if (index_.size() > capacity_) {
      index_.remove(order_.front().requestId);
      order_.pop_front();
    }
  }
  for (const auto& f : flows) {
    if (f.stage != Stage::Decode) continue;
    const auto it = index_.find(f.requestId);
    if (it == index_.end()) continue;
    if ((*it)->node != f.toNode) out.append({f.requestId, (*it)->node, f.toNode, timestampMs});
    order_.erase(*it);
    index_.erase(it);
  }
  return out;
}

bool MonitorHistory::append(MonitorFrame frame) {
  if (!frames_.empty() && frame.timestampMs < frames_.back().timestampMs) return false;
  if (!frame.flows.isEmpty()) {
    mergeByLanes(handoffTracker_.observe(frame.flows, frame.timestampMs), &frame.handoffs);
    frame.countArrivals();
    frame.flows.clear();
    frame.flows.squeeze();
  }
  if (frame.redirects.size() > kMaxRedirectsPerFrame) {
    frame.redirects.resize(kMaxRedirectsPerFrame);
  }
  if (frame.handoffs.size() > kMaxHandoffsPerFrame) frame.handoffs.resize(kMaxHandoffsPerFrame);
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

QList<MonitorHistory::AgedHandoff> MonitorHistory::handoffsBefore(qint64 t, qint64 windowMs) const {
  QList<AgedHandoff> out;
  for (int i = indexAt(t); i >= 0; --i) {
    const MonitorFrame& f = at(i);
    const qint64 age = t - f.timestampMs;
    if (age >= windowMs) break;
    if (age < 0) continue;
    for (const auto& h : f.handoffs) out.append({h, age});
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
