#include "ui/node/sparkline.h"

#include <QPainter>
#include <QPainterPath>
#include <algorithm>

namespace tidelane::ui::node {

Sparkline::Sparkline(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
}

void Sparkline::setValues(const QList<double>& values) {
  values_ = values;
  update();
}

void Sparkline::setRange(double lo, double hi) {
  lo_ = lo;
  hi_ = hi;
  update();
}

void Sparkline::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QRectF area = QRectF(rect()).adjusted(2, 3, -4, -3);
  p.fillRect(rect(), palette().color(QPalette::Base));
  if (values_.size() < 2 || area.width() <= 0) return;
  double lo = lo_, hi = hi_;
  if (hi <= lo) {
    const auto [mn, mx] = std::minmax_element(values_.begin(), values_.end());
    lo = *mn;
    hi = *mx;
    // A flat line sits in the middle rather than on an edge.
    if (hi - lo < 1e-9) {
      lo -= 1;
      hi += 1;
    }
  }
  const auto y = [&](double v) {
    const double t = std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
    return area.bottom() - t * area.height();
  };
  const double step = area.width() / double(values_.size() - 1);
  QPainterPath line;
  line.moveTo(area.left(), y(values_.first()));
  for (int i = 1; i < values_.size(); ++i) line.lineTo(area.left() + i * step, y(values_[i]));
  QPainterPath fill = line;
  fill.lineTo(area.right(), area.bottom());
  fill.lineTo(area.left(), area.bottom());
  fill.closeSubpath();
  QColor accent = palette().color(QPalette::Highlight);
  QColor shade = accent;
  shade.setAlpha(50);
  p.fillPath(fill, shade);
  p.setPen(QPen(accent, 1.5));
  p.drawPath(line);
  p.setBrush(accent);
  p.drawEllipse(QPointF(area.right(), y(values_.last())), 2.5, 2.5);
}

}  // namespace tidelane::ui::node
