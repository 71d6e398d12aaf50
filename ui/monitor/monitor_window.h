// MonitorWindow: the monitor as one window: a control row (pause/live, the time line to
// scrub over the history, zoom), the tidal-lane view, and the charts beneath. Fed by a
// MonitorSource; owns its model.
//
// Threading: GUI thread. `source` must outlive the window (or be null until setSource).
#pragma once

#include <QPointer>
#include <QWidget>

#include "ui/monitor/monitor_source.h"

class QComboBox;
class QLabel;
class QPushButton;
class QSlider;
class QTabWidget;

namespace tidelane::ui::monitor {

class MonitorCharts;
class MonitorModel;
class TidalLaneView;

class MonitorWindow : public QWidget {
  Q_OBJECT

 public:
  explicit MonitorWindow(MonitorSource* source, QWidget* parent = nullptr);
  ~MonitorWindow() override;

  MonitorModel* model() { return model_; }
  TidalLaneView* laneView() { return view_; }
  MonitorCharts* charts() { return charts_; }
  // Adds the node panel (ui/node, which the app builds) as a "Node" tab beside the lanes; the
  // window takes ownership. The tab bar shows only once there is a second tab.
  void setNodePanel(QWidget* panel);
  QWidget* nodePanel() const { return nodePanel_; }
  // Brings the "Node" tab to the front (no effect without a node panel).
  void showNodeTab();

 public slots:
  void showStatus(const QString& message);

 private:
  void syncControls();

  QPointer<MonitorSource> source_;
  MonitorModel* model_;
  TidalLaneView* view_;
  MonitorCharts* charts_;
  QPushButton* pause_;
  QSlider* timeline_;
  QLabel* timeLabel_;
  QLabel* status_;
  QComboBox* policy_;
  QTabWidget* tabs_ = nullptr;
  QWidget* nodePanel_ = nullptr;
};

}  // namespace tidelane::ui::monitor
