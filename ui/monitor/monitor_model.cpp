#include "ui/monitor/monitor_model.h"

#include <algorithm>

#include "ui/monitor/lane_scene.h"

namespace tidelane::ui::monitor {

MonitorModel::MonitorModel(QObject* parent) : QObject(parent) {
  clock_.start();
}

void MonitorModel::addFrame(const MonitorFrame& frame) {
  const qint64 nowMs = now();
  // What is on screen now becomes the start of the next transition, so a frame arriving
  // mid-glide continues from where the glide got to.
  Display current;
  const bool hadFrame = !history_.isEmpty();
  if (hadFrame && live_) current = display(nowMs);
  const qint64 previousMs = hadFrame ? history_.lastMs() : frame.timestampMs;
  if (!history_.append(frame)) return;
  if (live_) {
    from_ = hadFrame ? current.frame : history_.latest();
    fromShare_ = hadFrame ? current.prefillShare : history_.latest().prefillShare();
    transitionStart_ = nowMs;
    transitionMs_ =
        interpolate_ ? std::clamp<qint64>(frame.timestampMs - previousMs, 100, 1000) : 0;
  }
  emit frameAdded();
  if (live_) emit displayChanged();
}

void MonitorModel::setLive(bool live) {
  if (live == live_) return;
  if (!live && !history_.isEmpty()) {
    // Freeze on the frame on screen; keep the glide's extra time for the particles and the
    // arcs' ages so nothing jumps back when pausing.
    const qint64 shown = displayTime(now());
    cursorMs_ = history_.lastMs();
    pauseExtraMs_ = shown - cursorMs_;
  }
  live_ = live;
  if (live) transitionMs_ = 0;  // jump back to the newest frame
  emit liveChanged(live_);
  emit displayChanged();
}

void MonitorModel::scrubTo(double fraction) {
  if (history_.isEmpty()) return;
  const bool wasLive = live_;
  live_ = false;
  fraction = std::clamp(fraction, 0.0, 1.0);
  cursorMs_ = history_.firstMs() +
              static_cast<qint64>(fraction * double(history_.lastMs() - history_.firstMs()));
  pauseExtraMs_ = 0;
  if (wasLive) emit liveChanged(false);
  emit displayChanged();
}

void MonitorModel::clear() {
  history_.clear();
  transitionMs_ = 0;
  emit frameAdded();
  emit displayChanged();
}

double MonitorModel::cursorFraction() const {
  if (history_.isEmpty() || live_) return 1.0;
  const qint64 span = history_.lastMs() - history_.firstMs();
  return span > 0 ? double(cursorMs_ - history_.firstMs()) / double(span) : 1.0;
}

qint64 MonitorModel::displayTime(qint64 nowMs) const {
  if (history_.isEmpty()) return 0;
  if (!live_) return cursorMs_ + pauseExtraMs_;
  // Live: the newest frame's time plus how far the glide towards it has gone, so arcs age
  // smoothly and particles keep moving between frames.
  return history_.lastMs() + std::clamp<qint64>(nowMs - transitionStart_, 0, 1000);
}

bool MonitorModel::isAnimating(qint64 nowMs) const {
  return live_ && transitionMs_ > 0 && nowMs - transitionStart_ < transitionMs_;
}

MonitorModel::Display MonitorModel::display(qint64 nowMs) const {
  Display d;
  if (history_.isEmpty()) return d;
  d.timeMs = displayTime(nowMs);
  if (live_) {
    const MonitorFrame& to = history_.latest();
    const double t =
        transitionMs_ > 0 ? double(nowMs - transitionStart_) / double(transitionMs_) : 1.0;
    if (t >= 1.0) {
      d.frame = to;
      d.prefillShare = to.prefillShare();
    } else {
      d.frame = interpolate(from_, to, t);
      d.prefillShare = fromShare_ + (to.prefillShare() - fromShare_) * std::max(0.0, t);
    }
    // Age redirects from the newest frame's own time: they are shown as they arrive.
    d.redirects = history_.redirectsBefore(history_.lastMs(), LaneScene::kRedirectFadeMs);
    d.handoffs = history_.handoffsBefore(history_.lastMs(), LaneScene::kRedirectFadeMs);
    const qint64 glide = d.timeMs - history_.lastMs();
    for (auto& r : d.redirects) r.ageMs += glide;
    for (auto& h : d.handoffs) h.ageMs += glide;
  } else {
    // Paused or scrubbing: between the two frames around the cursor.
    const int i = history_.indexAt(cursorMs_);
    const MonitorFrame& a = history_.at(i);
    if (i + 1 < history_.size() && cursorMs_ > a.timestampMs) {
      const MonitorFrame& b = history_.at(i + 1);
      const double t = double(cursorMs_ - a.timestampMs) / double(b.timestampMs - a.timestampMs);
      d.frame = interpolate(a, b, t);
      d.prefillShare = a.prefillShare() + (b.prefillShare() - a.prefillShare()) * t;
    } else {
      d.frame = a;
      d.prefillShare = a.prefillShare();
    }
    d.redirects = history_.redirectsBefore(cursorMs_, LaneScene::kRedirectFadeMs);
    d.handoffs = history_.handoffsBefore(cursorMs_, LaneScene::kRedirectFadeMs);
    for (auto& r : d.redirects) r.ageMs += pauseExtraMs_;
    for (auto& h : d.handoffs) h.ageMs += pauseExtraMs_;
  }
  return d;
}

}  // namespace tidelane::ui::monitor
