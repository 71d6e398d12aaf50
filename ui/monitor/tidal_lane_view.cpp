#include "ui/monitor/tidal_lane_view.h"

#include <QHelpEvent>
#include <QKeyEvent>
#include <QLocale>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>
#include <algorithm>

#include "ui/monitor/monitor_model.h"

namespace tidelane::ui::monitor {
namespace {

constexpr double kMinZoom = 1.0;
constexpr double kMaxZoom = 8.0;

void paintGauge(QPainter& p, const LaneScene& s) {
  const QRectF g = s.layout.tideGauge;
  p.fillRect(QRectF(g.left(), g.top(), s.tideX - g.left(), g.height()), palette::kPrefill);
  p.fillRect(QRectF(s.tideX, g.top(), g.right() - s.tideX, g.height()), palette::kDecode);
  p.setPen(palette::kText);
  const QRectF text = g.adjusted(6, 0, -6, 0);
  const int share = static_cast<int>(std::lround(s.prefillShare * 100));
  p.drawText(text, Qt::AlignLeft | Qt::AlignVCenter, TidalLaneView::tr("prefill %1%").arg(share));
  p.drawText(text, Qt::AlignRight | Qt::AlignVCenter,
             TidalLaneView::tr("decode %1%").arg(100 - share));
  // The tide line itself, a little taller than the gauge so it reads as a marker.
  p.fillRect(QRectF(s.tideX - 1.5, g.top() - 3, 3, g.height() + 6), palette::kTideLine);
}

void paintLanes(QPainter& p, const LaneScene& s) {
  const auto& layout = s.layout;
  QFont small = p.font();
  small.setPointSizeF(std::max(6.0, small.pointSizeF() - 1));
  p.setFont(small);
  p.setPen(palette::kMutedText);
  for (const auto& g : layout.groups) {
    p.drawText(g.header.adjusted(2, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter,
               TidalLaneView::tr("%1 tier · %2 (%3)")
                   .arg(tierName(g.tier).toUpper(), roleName(g.role).toUpper())
                   .arg(g.laneCount));
  }
  const bool roomForName = layout.laneHeight >= 10;
  const bool roomForDetail = layout.laneHeight >= 30;
  for (const auto& v : s.lanes) {
    p.fillRect(v.rect, palette::kLane);
    p.fillRect(v.plate, palette::kPlate);
    // A thin bar in the water's colour on the plate, so a name reads with its level.
    p.fillRect(QRectF(v.plate.left(), v.plate.top(), 3, v.plate.height()), v.colour);
    if (!v.water.isEmpty()) {
      p.fillRect(v.water, v.colour);
      p.fillRect(QRectF(v.water.left(), v.water.top(), v.water.width(), 1),
                 v.colour.lighter(135));  // the surface
    }
    if (v.state == NodeState::Cordoned || v.state == NodeState::Draining) {
      p.setPen(QPen(QColor(0xf2, 0xb1, 0x34), 1, Qt::DashLine));
      p.drawRect(v.rect.adjusted(0.5, 0.5, -0.5, -0.5));
    }
    if (roomForName) {
      p.setPen(palette::kText);
      const QRectF label(v.plate.left() + 8, v.rect.top(), v.plate.width() - 12,
                         roomForDetail ? v.rect.height() / 2 + 2 : v.rect.height());
      p.drawText(label, Qt::AlignLeft | (roomForDetail ? Qt::AlignBottom : Qt::AlignVCenter),
                 v.name);
      if (roomForDetail) {
        p.setPen(palette::kMutedText);
        p.drawText(
            QRectF(label.left(), v.rect.center().y() + 1, label.width(), v.rect.height() / 2 - 1),
            Qt::AlignLeft | Qt::AlignTop,
            v.state == NodeState::Ready ? v.detail : stateName(v.state));
      }
    }
    if (v.arrivals > 0) {
      // New arrivals since the last frame: a gate at the lane's entry, taller for more.
      const double h = std::min(v.rect.height(), 4.0 + 3.0 * std::log2(1.0 + v.arrivals));
      p.fillRect(QRectF(v.plate.right(), v.rect.center().y() - h / 2, 3, h), palette::kParticle);
    }
  }
}

void paintRequests(QPainter& p, const LaneScene& s) {
  p.setRenderHint(QPainter::Antialiasing, true);
  // All dots in one call: drawing them one by one costs far more at 64 lanes.
  const double dot = std::clamp(s.layout.laneHeight * 0.18, 2.0, 5.0);
  p.setPen(QPen(palette::kParticle, dot, Qt::SolidLine, Qt::RoundCap));
  p.drawPoints(s.particles.constData(), static_cast<int>(s.particles.size()));
  const QLocale locale;
  p.setPen(Qt::NoPen);
  for (const auto& c : s.clusters) {
    p.setBrush(QColor(0xf5, 0xf9, 0xff, 225));
    p.drawRoundedRect(c.rect, c.rect.height() / 2, c.rect.height() / 2);
  }
  p.setPen(palette::kBackground);
  for (const auto& c : s.clusters) {
    if (c.rect.height() >= 9) p.drawText(c.rect, Qt::AlignCenter, locale.toString(c.count));
  }
  p.setBrush(Qt::NoBrush);
}

void paintArcs(QPainter& p, const LaneScene& s) {
  QList<QRectF> labels;  // arcs converging on one lane would stack their labels unreadably
  for (const auto& a : s.arcs) {
    QColor c = a.kind == ArcKind::Handoff ? palette::kHandoff : palette::kRedirect;
    c.setAlphaF(static_cast<float>(std::clamp(a.opacity, 0.0, 1.0)));
    // Two 1-pixel cosmetic strokes a pixel apart rather than one 2.5-pixel stroke: Qt draws
    // thin cosmetic lines with its fast line stroker, where a wide pen is filled as a polygon
    // spanning hundreds of scanlines (about 0.3 ms an arc; 40 arcs alone missed the 8 ms
    // frame budget).
    QPen pen(c, 1);
    pen.setCosmetic(true);
    p.setPen(pen);
    p.setBrush(Qt::NoBrush);
    p.drawPath(a.path);
    p.drawPath(a.path.translated(0, 1));
    // Arrow head pointing back into the new lane (the curve arrives from the right).
    QPolygonF head;
    head << a.end << a.end + QPointF(8, -4) << a.end + QPointF(8, 4);
    p.setBrush(c);
    p.drawPolygon(head);
    p.setBrush(Qt::NoBrush);
    const QRectF text =
        p.fontMetrics().boundingRect(a.text).translated(a.label.toPoint()).adjusted(-3, -1, 3, 1);
    if (std::any_of(labels.begin(), labels.end(),
                    [&](const QRectF& r) { return r.intersects(text); })) {
      continue;
    }
    labels.append(text);
    QColor backing = palette::kBackground;
    backing.setAlphaF(static_cast<float>(0.75 * std::clamp(a.opacity, 0.0, 1.0)));
    p.fillRect(text, backing);
    p.drawText(a.label, a.text);
  }
}

}  // namespace

TidalLaneView::TidalLaneView(MonitorModel* model, QWidget* parent)
    : QWidget(parent), model_(model) {
  setObjectName(QStringLiteral("tidalLaneView"));
  setAccessibleName(tr("Tidal lanes"));
  setAccessibleDescription(
      tr("One lane per node; water level is saturation, magenta arcs are redirects, cyan arcs "
         "are KV handoffs from prefill to decode, the tide line splits prefill from decode "
         "capacity."));
  setFocusPolicy(Qt::StrongFocus);
  setAttribute(Qt::WA_OpaquePaintEvent);
  setMouseTracking(false);
  frameTimer_.setInterval(16);
  frameTimer_.setTimerType(Qt::PreciseTimer);
  connect(&frameTimer_, &QTimer::timeout, this, qOverload<>(&QWidget::update));
  connect(model_, &MonitorModel::displayChanged, this, qOverload<>(&QWidget::update));
  connect(model_, &MonitorModel::liveChanged, this, &TidalLaneView::updateTimer);
}

LaneScene TidalLaneView::currentScene() const {
  const qint64 now = model_->now();
  const auto d = model_->display(now);
  return buildLaneScene(d.frame, d.prefillShare, d.redirects, size(), d.timeMs / 1000.0,
                        d.handoffs);
}

QTransform TidalLaneView::transform() const {
  return QTransform::fromTranslate(pan_.x(), pan_.y()).scale(zoom_, zoom_);
}

void TidalLaneView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette::kBackground);
  const LaneScene scene = currentScene();
  if (scene.lanes.isEmpty()) {
    p.setPen(palette::kMutedText);
    p.drawText(rect(), Qt::AlignCenter,
               model_->history().isEmpty() ? tr("Waiting for the router…")
                                           : tr("No nodes have joined the router."));
    return;
  }
  p.setTransform(transform());
  paintGauge(p, scene);
  paintLanes(p, scene);
  paintRequests(p, scene);
  paintArcs(p, scene);
  p.setPen(palette::kMutedText);
  p.drawText(scene.layout.groups.first().header, Qt::AlignRight | Qt::AlignVCenter,
             model_->isLive() ? scene.summary : tr("paused · %1").arg(scene.summary));
}

bool TidalLaneView::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(e);
    const LaneScene scene = currentScene();
    const int lane = scene.layout.laneAt(transform().inverted().map(QPointF(help->pos())));
    const auto d = model_->display(model_->now());
    const NodeFrame* node = lane >= 0 ? d.frame.node(scene.layout.lanes[lane].key.name) : nullptr;
    if (node) {
      QToolTip::showText(help->globalPos(), describeNode(*node), this);
    } else {
      QToolTip::hideText();
      e->ignore();
    }
    return true;
  }
  return QWidget::event(e);
}

void TidalLaneView::wheelEvent(QWheelEvent* e) {
  const double steps = e->angleDelta().y() / 120.0;
  if (e->modifiers() & Qt::ControlModifier) {
    zoomAround(std::pow(1.25, steps), e->position());
  } else if (zoom_ > kMinZoom) {
    pan_.ry() += steps * 60;
    clampPan();
    update();
  } else {
    e->ignore();
    return;
  }
  e->accept();
}

void TidalLaneView::keyPressEvent(QKeyEvent* e) {
  if (e->modifiers() & Qt::ControlModifier) {
    switch (e->key()) {
      case Qt::Key_Plus:
      case Qt::Key_Equal:
        zoomIn();
        return;
      case Qt::Key_Minus:
        zoomOut();
        return;
      case Qt::Key_0:
        resetZoom();
        return;
      default:
        break;
    }
  }
  QWidget::keyPressEvent(e);
}

void TidalLaneView::mousePressEvent(QMouseEvent* e) {
  dragFrom_ = e->position();
  QWidget::mousePressEvent(e);
}

void TidalLaneView::mouseMoveEvent(QMouseEvent* e) {
  if ((e->buttons() & Qt::LeftButton) && zoom_ > kMinZoom) {
    pan_ += e->position() - dragFrom_;
    dragFrom_ = e->position();
    clampPan();
    update();
  }
  QWidget::mouseMoveEvent(e);
}

void TidalLaneView::zoomIn() {
  zoomAround(1.25, rect().center());
}
void TidalLaneView::zoomOut() {
  zoomAround(0.8, rect().center());
}
void TidalLaneView::resetZoom() {
  zoomAround(kMinZoom / zoom_, rect().center());
}

void TidalLaneView::zoomAround(double factor, const QPointF& anchor) {
  const double z = std::clamp(zoom_ * factor, kMinZoom, kMaxZoom);
  if (z == zoom_) return;
  // Keep the scene point under the anchor where it is.
  const QPointF scenePoint = (anchor - pan_) / zoom_;
  zoom_ = z;
  pan_ = anchor - scenePoint * zoom_;
  clampPan();
  update();
  emit zoomChanged(zoom_);
}

void TidalLaneView::clampPan() {
  // The zoomed scene always covers the widget: no empty margin beyond its edges.
  const QSizeF scaled = QSizeF(size()) * zoom_;
  pan_.setX(std::clamp(pan_.x(), width() - scaled.width(), 0.0));
  pan_.setY(std::clamp(pan_.y(), height() - scaled.height(), 0.0));
}

void TidalLaneView::updateTimer() {
  if (isVisible() && model_->isLive()) {
    frameTimer_.start();
  } else {
    frameTimer_.stop();
  }
}

void TidalLaneView::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  updateTimer();
}

void TidalLaneView::hideEvent(QHideEvent* e) {
  QWidget::hideEvent(e);
  updateTimer();
}

}  // namespace tidelane::ui::monitor
