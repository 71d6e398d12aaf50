#include "ui/monitor/monitor_charts.h"

#include <QChart>
#include <QChartView>
#include <QHBoxLayout>
#include <QLineSeries>
#include <QValueAxis>
#include <cmath>

#include "ui/monitor/monitor_model.h"

namespace tidelane::ui::monitor {
namespace {

// A round upper bound for an axis (1, 2, 5 × 10^n), so labels stay readable.
double niceCeiling(double v) {
  if (v <= 1) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

}  // namespace

struct MonitorCharts::Chart {
  QChart* chart = nullptr;
  QValueAxis* x = nullptr;
  QValueAxis* y = nullptr;
  QList<QPair<MonitorHistory::Series, QLineSeries*>> series;
};

MonitorCharts::MonitorCharts(MonitorModel* model, QWidget* parent)
    : QWidget(parent), model_(model) {
  setObjectName(QStringLiteral("monitorCharts"));
  setAccessibleName(tr("Monitor charts"));
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(4);
  using S = MonitorHistory::Series;

  Chart* throughput = addChart(tr("Throughput"), tr("Throughput chart"));
  throughput->series.append(
      {S::Throughput, addSeries(throughput, tr("served/s"), QColor(0x23, 0xb5, 0x8a))});

  Chart* ttft = addChart(tr("Time to first token (ms)"), tr("Time to first token chart"));
  ttft->series.append({S::TtftP50, addSeries(ttft, tr("p50"), QColor(0x23, 0xb5, 0x8a))});
  ttft->series.append({S::TtftP99, addSeries(ttft, tr("p99"), QColor(0xe6, 0x39, 0x46))});

  Chart* queue = addChart(tr("Queue"), tr("Queue length chart"));
  queue->series.append({S::Queued, addSeries(queue, tr("queued"), QColor(0xf2, 0xb1, 0x34))});
  queue->series.append({S::InFlight, addSeries(queue, tr("in flight"), QColor(0x2a, 0x8c, 0xe8))});

  Chart* outcomes = addChart(tr("Outcomes per second"), tr("Outcomes chart"));
  outcomes->series.append(
      {S::Accepted, addSeries(outcomes, tr("accepted"), QColor(0x2a, 0x8c, 0xe8))});
  outcomes->series.append({S::Served, addSeries(outcomes, tr("served"), QColor(0x23, 0xb5, 0x8a))});
  outcomes->series.append(
      {S::Degraded, addSeries(outcomes, tr("degraded"), QColor(0xf2, 0xb1, 0x34))});
  outcomes->series.append(
      {S::Rejected, addSeries(outcomes, tr("rejected"), QColor(0xe6, 0x39, 0x46))});

  // Per-second series change once a second: refreshing on every frame would only redraw
  // the same points.
  connect(model_, &MonitorModel::frameAdded, this, [this] {
    const qint64 second = model_->history().isEmpty() ? -1 : model_->history().lastMs() / 1000;
    if (second != lastSecond_) refresh();
  });
}

MonitorCharts::~MonitorCharts() = default;

MonitorCharts::Chart* MonitorCharts::addChart(const QString& title, const QString& accessibleName) {
  charts_.push_back(std::make_unique<Chart>());
  Chart* c = charts_.back().get();
  c->chart = new QChart;
  c->chart->setTheme(QChart::ChartThemeDark);
  c->chart->setTitle(title);
  c->chart->setMargins(QMargins(2, 2, 2, 2));
  c->chart->legend()->setAlignment(Qt::AlignBottom);
  c->chart->setAnimationOptions(QChart::NoAnimation);
  c->x = new QValueAxis;
  c->x->setTitleText(tr("seconds"));
  c->x->setLabelFormat(QStringLiteral("%d"));
  c->x->setRange(-10, 0);
  c->y = new QValueAxis;
  c->y->setLabelFormat(QStringLiteral("%d"));
  c->y->setRange(0, 1);
  c->chart->addAxis(c->x, Qt::AlignBottom);
  c->chart->addAxis(c->y, Qt::AlignLeft);
  auto* view = new QChartView(c->chart, this);  // the view owns the chart
  view->setRenderHint(QPainter::Antialiasing);
  view->setAccessibleName(accessibleName);
  view->setMinimumHeight(230);
  layout()->addWidget(view);
  return c;
}

QLineSeries* MonitorCharts::addSeries(Chart* c, const QString& name, const QColor& colour) {
  auto* s = new QLineSeries;
  s->setName(name);
  s->setColor(colour);
  c->chart->addSeries(s);
  s->attachAxis(c->x);
  s->attachAxis(c->y);
  return s;
}

void MonitorCharts::refresh() {
  const MonitorHistory& h = model_->history();
  lastSecond_ = h.isEmpty() ? -1 : h.lastMs() / 1000;
  const double span = std::max(10.0, std::ceil((h.lastMs() - h.firstMs()) / 1000.0));
  for (const auto& c : charts_) {
    double top = 0;
    for (const auto& [which, series] : c->series) {
      const QList<QPointF> points = h.series(which);
      for (const auto& p : points) top = std::max(top, p.y());
      series->replace(points);
    }
    c->x->setRange(-span, 0);
    c->y->setRange(0, niceCeiling(top * 1.1));
  }
}

}  // namespace tidelane::ui::monitor
