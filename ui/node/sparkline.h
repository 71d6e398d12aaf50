// Sparkline: a tiny line chart of recent values (oldest left, newest right) with no axes,
// for the node panel's cards. Qt Charts would be far too heavy for a dozen of these.
//
// Threading: GUI thread.
#pragma once

#include <QList>
#include <QWidget>

namespace tidelane::ui::node {

class Sparkline : public QWidget {
  Q_OBJECT

 public:
  explicit Sparkline(QWidget* parent = nullptr);

  // The values to draw. Without a fixed range the line spans the values' own min..max.
  void setValues(const QList<double>& values);
  // Draws against [lo, hi] (e.g. 0..1 for a share), so a flat 10% does not look full.
  void setRange(double lo, double hi);
  const QList<double>& values() const { return values_; }

  QSize sizeHint() const override { return {140, 28}; }
  QSize minimumSizeHint() const override { return {60, 18}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  QList<double> values_;
  double lo_ = 0;
  double hi_ = 0;  // hi_ <= lo_: automatic
};

}  // namespace tidelane::ui::node
