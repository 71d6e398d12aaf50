// MonitorHistory: the last few minutes of frames, for pause and time scrub, and the
// per-second series the charts draw.
//
// Frames are kept in arrival order (timestamps never go backwards: a frame older than the
// newest replaces nothing and is dropped). Per-request flows are dropped on the way in
// (NodeFrame::arrivals keeps their count per node, MonitorFrame::handoffs the KV handoffs
// they reveal) and redirects and handoffs are capped per frame, so ten minutes at 4 frames
// a second of a 64-node, 10,000-user surge stay a few MB.
//
// Plain value classes; not thread-safe (the GUI thread owns them).
#pragma once

#include <QHash>
#include <QList>
#include <QPointF>
#include <deque>
#include <list>

#include "ui/monitor/monitor_frame.h"

namespace tidelane::ui::monitor {

// Finds KV handoffs in the flows of successive frames: remembers the node each request was
// prefilled on and reports a handoff when its DECODE flow lands on another node (in the
// same frame or a later one). A decode on the prefill node is no handoff. A request is
// reported once: its first DECODE flow settles it, and a later move of the decode is a
// redirect, which the router reports itself.
//
// Bounded: at most `capacity` requests are remembered, the least recently prefilled
// forgotten first. A request whose decode starts after that many newer prefills shows no
// arc, which at the default (minutes of a surge at thousands of requests a second is far
// fewer prefills than that between a prefill and its decode) costs nothing visible.
class HandoffTracker {
 public:
  static constexpr int kDefaultCapacity = 20'000;

  explicit HandoffTracker(int capacity = kDefaultCapacity);

  // The handoffs the flows of one frame complete, in flow order, each with `timestampMs`.
  QList<HandoffEvent> observe(const QList<FlowEvent>& flows, qint64 timestampMs);
  void clear();

  int size() const { return static_cast<int>(index_.size()); }
  int capacity() const { return capacity_; }

 private:
  struct Prefilled {
    QString requestId;
    QString node;
  };
  using Order = std::list<Prefilled>;  // least recently prefilled first

  int capacity_;
  Order order_;
  QHash<QString, Order::iterator> index_;
};

class MonitorHistory {
 public:
  static constexpr qint64 kDefaultWindowMs = 10 * 60 * 1000;
  static constexpr int kMaxRedirectsPerFrame = 256;
  // Pairs of lanes, not requests: handoffs are merged per pair on the way in.
  static constexpr int kMaxHandoffsPerFrame = 256;

  explicit MonitorHistory(qint64 windowMs = kDefaultWindowMs,
                          int trackedRequests = HandoffTracker::kDefaultCapacity)
      : windowMs_(windowMs), handoffTracker_(trackedRequests) {}

  // Appends a frame and forgets those older than the window. Returns false (and keeps
  // nothing) when the frame is older than the newest one held. The handoffs its flows
  // complete are added to the frame's `handoffs`, one per pair of lanes.
  bool append(MonitorFrame frame);
  void clear() {
    frames_.clear();
    handoffTracker_.clear();
  }
  // Requests whose prefill node is remembered for handoffs (at most the tracker's capacity).
  int trackedRequests() const { return handoffTracker_.size(); }

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

  // The same for KV handoffs.
  struct AgedHandoff {
    HandoffEvent handoff;
    qint64 ageMs = 0;
  };
  QList<AgedHandoff> handoffsBefore(qint64 timestampMs, qint64 windowMs) const;

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
  HandoffTracker handoffTracker_;
};

}  // namespace tidelane::ui::monitor
