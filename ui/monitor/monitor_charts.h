// MonitorCharts: Qt Charts under the lanes: throughput (served/s and tokens/s), the queue
// (waiting and in flight), and outcomes per second (accepted, served, degraded, rejected),
// over the model's history. The series come from MonitorHistory::series(); this widget
// only hands them to the charts, at most once per second of router time.
//
// Threading: GUI thread. The model must outlive the widget.
#pragma once

#include <QWidget>
#include <memory>
#include <vector>

QT_BEGIN_NAMESPACE
class QChart;
class QLineSeries;
class QValueAxis;
QT_END_NAMESPACE

namespace tidelane::ui::monitor {

class MonitorModel;

class MonitorCharts : public QWidget {
  Q_OBJECT

 public:
  explicit MonitorCharts(MonitorModel* model, QWidget* parent = nullptr);
  ~MonitorCharts() override;

  // Reloads every series from the history now (the screenshot tool and tests call it).
  void refresh();

 private:
  struct Chart;
  Chart* addChart(const QString& title, const QString& accessibleName);
  QLineSeries* addSeries(Chart* chart, const QString& name, const QColor& colour);

  MonitorModel* model_;
  std::vector<std::unique_ptr<Chart>> charts_;  // the chart views own the QCharts
  qint64 lastSecond_ = -1;
};

}  // namespace tidelane::ui::monitor
