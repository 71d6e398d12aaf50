// TidalLaneView: the tidal-lane picture. One horizontal lane per node, its water level the
// node's binding saturation (calm blue to red), requests flowing along it, redirects as
// fading arcs from the old lane to the new, KV handoffs as fading arcs (another colour) from
// the prefill lane to the decode lane, and the tide gauge on top with the line that splits
// prefill from decode capacity.
//
// It only paints: what to draw comes from MonitorModel::display() through buildLaneScene().
// While the model is live and the view visible, a 60 fps timer repaints so interpolation
// and particles move; paused, it repaints only when the model changes.
//
// Zoom: Ctrl+wheel (around the pointer), Ctrl+= / Ctrl+- / Ctrl+0, or the zoom slots;
// zoomed in, the wheel or a drag pans. Hovering a lane shows the node's tooltip.
//
// Threading: GUI thread. The model must outlive the view.
#pragma once

#include <QPointF>
#include <QTimer>
#include <QWidget>

#include "ui/monitor/lane_scene.h"

namespace tidelane::ui::monitor {

class MonitorModel;

class TidalLaneView : public QWidget {
  Q_OBJECT

 public:
  explicit TidalLaneView(MonitorModel* model, QWidget* parent = nullptr);

  double zoom() const { return zoom_; }
  // The scene as it would be painted now at the view's size (tests look up positions).
  LaneScene currentScene() const;

  QSize sizeHint() const override { return {1000, 560}; }
  QSize minimumSizeHint() const override { return {320, 200}; }

 public slots:
  void zoomIn();
  void zoomOut();
  void resetZoom();

 signals:
  void zoomChanged(double zoom);

 protected:
  void paintEvent(QPaintEvent* event) override;
  bool event(QEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void showEvent(QShowEvent* event) override;
  void hideEvent(QHideEvent* event) override;

 private:
  void zoomAround(double factor, const QPointF& anchor);
  void clampPan();
  void updateTimer();
  QTransform transform() const;

  MonitorModel* model_;
  QTimer frameTimer_;
  double zoom_ = 1.0;
  QPointF pan_;  // widget pixels the zoomed scene is moved by
  QPointF dragFrom_;
};

}  // namespace tidelane::ui::monitor
