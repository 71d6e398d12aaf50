// MonitorModel: what the monitor shows and when. Holds the history of frames, follows the
// newest one (live) or a moment picked on the time line (paused), and interpolates between
// frames so levels and the tide line glide instead of jumping every 250-500 ms.
//
// Threading: GUI thread only. Feed it with addFrame (connected to a MonitorSource).
#pragma once

#include <QElapsedTimer>
#include <QObject>

#include "ui/monitor/monitor_frame.h"
#include "ui/monitor/monitor_history.h"

namespace tidelane::ui::monitor {

class MonitorModel : public QObject {
  Q_OBJECT

 public:
  explicit MonitorModel(QObject* parent = nullptr);

  const MonitorHistory& history() const { return history_; }
  bool isLive() const { return live_; }

  // Interpolation on (the default) glides between frames over the time between them; off,
  // the newest frame shows at once (tests, screenshots).
  void setInterpolation(bool on) { interpolate_ = on; }

  // Milliseconds on the model's monotonic clock; what display() takes.
  qint64 now() const { return clock_.elapsed(); }

  struct Display {
    MonitorFrame frame;  // interpolated
    double prefillShare = 0.5;
    QList<MonitorHistory::AgedRedirect> redirects;  // within LaneScene's fade window
    QList<MonitorHistory::AgedHandoff> handoffs;    // the same, for KV handoffs
    qint64 timeMs = 0;                              // router time being shown
  };
  Display display(qint64 nowMs) const;
  // True while a transition is under way (the view keeps animating).
  bool isAnimating(qint64 nowMs) const;

  // Position of the cursor on the time line, 0 (oldest frame) to 1 (newest).
  double cursorFraction() const;

 public slots:
  void addFrame(const tidelane::ui::monitor::MonitorFrame& frame);
  // Live follows the newest frame; not live (paused) freezes the view where it is.
  void setLive(bool live);
  // Pauses and shows the moment at `fraction` of the history (0 oldest, 1 newest).
  void scrubTo(double fraction);
  void clear();

 signals:
  void frameAdded();  // the history changed (charts)
  void displayChanged();
  void liveChanged(bool live);

 private:
  qint64 displayTime(qint64 nowMs) const;

  MonitorHistory history_;
  QElapsedTimer clock_;
  bool live_ = true;
  bool interpolate_ = true;
  // Live transition: from what was on screen when the newest frame came, to that frame.
  MonitorFrame from_;
  double fromShare_ = 0.5;
  qint64 transitionStart_ = 0;
  qint64 transitionMs_ = 0;
  qint64 cursorMs_ = 0;      // router time of the frame shown while paused
  qint64 pauseExtraMs_ = 0;  // how far the live glide had gone past it when paused
};

}  // namespace tidelane::ui::monitor
