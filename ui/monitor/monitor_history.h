// MonitorHistory: the last few minutes of frames, for pause and time scrub, and the
// per-second series the charts draw.
//
// Frames are kept in arrival order (timestamps never go backwards: a frame older than the
// newest replaces nothing and is dropped). Per-request flows are dropped on the way in
// (NodeFrame::arrivals keeps their count per node) and redirects are capped per frame, so
// ten minutes at 4 frames a second of a 64-node, 10,000-user surge stay a few MB.
//
// Plain value class; not thread-safe (the GUI thread owns it).
#pragma once

#include <QList>
#include <QPointF>
#include <deque>

#include "ui/monitor/monitor_frame.h"

namespace tidelane::ui::monitor {

class MonitorHistory {
 public:
  static constexpr qint64 kDefaultWindowMs = 10 * 60 * 1000;
  static constexpr int kMaxRedirectsPerFrame = 256;

  explicit MonitorHistory(qint64 windowMs = kDefaultWindowMs) : windowMs_(windowMs) {}

  // Appends a frame and forgets those older than the window. Returns false (and keeps
  // nothing) when the frame is older than the newest one held.
  bool append(MonitorFrame frame);
  void clear() { frames_.clear(); }

  bool isEmpty() const { return frames_.empty(); }
  int size() const { return static_cast<int>(frames_.size()); }
  const MonitorFrame& at(int i) const { return frames_[static_cast<std::size_t>(i)]; }
  const MonitorFrame& latest() const { return frames_.back(); }
  qint64 firstMs() const { return frames_.empty() ? 0 : frames_.front().timestampMs; }
  qint64 lastMs() const { return frames_.empty() ? 0 : frames_.back().timestampMs; }

  // Index of the newest frame at or before `timestampMs` (the first frame when it is earlier
  // than all of them); -1 when empty.
  int indexAt(qint64 timestampMs) const;

  // Redirects that happened in (t - windowMs, t], each with its age at t in ms, newest
  // first; for arcs that fade.
  struct AgedRedirect {
    RedirectEvent redirect;
    qint64 ageMs = 0;
  };
  QList<AgedRedirect> redirectsBefore(qint64 timestampMs, qint64 windowMs) const;

  enum class Series {
    Throughput,       // served per second
    Accepted,         // per second
    Served,           // per second (same as Throughput, for the outcome chart)
    Degraded,         // per second
    Rejected,         // per second
    Queued,           // waiting in the front door (a level, not a rate)
    InFlight,         // running on nodes (a level)
    TokensPerSecond,  // sum over nodes (a level)
    TtftP50,          // ms, the router's last 10 s (a level)
    TtftP99,          // ms (a level)
  };
  // One point per whole second of history: x = seconds relative to the newest frame (<= 0),
  // y = the value over the second ending there. Rates are counter differences over the
  // frames' own timestamps; a counter that goes backwards (the router restarted) counts 0.
  QList<QPointF> series(Series which) const;

 private:
  qint64 windowMs_;
  std::deque<MonitorFrame> frames_;
};

}  // namespace tidelane::ui::monitor
