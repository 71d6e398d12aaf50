// NodePanel: the node operator's view. "This machine": a card for the CPU, one for the
// memory and one per NVIDIA GPU (utilisation, memory, temperature, power, SM and memory
// clocks), each figure with a two-minute sparkline, or a line saying why there is no GPU.
// "Worker": the node the bundled worker registered as (or the one picked in the combo when
// the router is remote) as the router sees it, with Drain / Cordon / Resume buttons enabled
// only where they apply, and the answer to the last one.
//
// All state is in the NodePanelModel, which the panel owns; the widget only paints it and
// forwards clicks.
//
// Ownership/threading: GUI thread. `monitor` and `host` are not owned; either may be null.
#pragma once

#include <QList>
#include <QWidget>

#include "ui/monitor/monitor_source.h"
#include "ui/node/host_source.h"

class QComboBox;
class QGridLayout;
class QLabel;
class QPushButton;

namespace tidelane::ui::node {

class NodePanelModel;
class Sparkline;

class NodePanel : public QWidget {
  Q_OBJECT

 public:
  explicit NodePanel(monitor::MonitorSource* monitor, HostSource* host, QWidget* parent = nullptr);
  ~NodePanel() override;

  NodePanelModel* model() { return model_; }

 private:
  struct Metric {
    QLabel* value = nullptr;
    Sparkline* spark = nullptr;
  };
  struct GpuCard {
    QWidget* frame = nullptr;
    QLabel* title = nullptr;
    QList<Metric> metrics;  // in NodePanelModel::GpuMetric order
  };

  Metric addMetric(QGridLayout* grid, int row, const QString& label, const QString& objectName);
  void rebuildGpuCards();
  void syncHardware();
  void syncWorker();

  NodePanelModel* model_;
  QLabel* gpuStatus_;
  QWidget* gpuArea_;
  QList<GpuCard> gpuCards_;
  QStringList gpuNames_;  // the cards' GPUs, to rebuild only when the set changes
  Metric cpu_;
  Metric memory_;
  QComboBox* nodes_;
  QLabel* state_;
  QLabel* modelName_;
  QLabel* lane_;
  QLabel* active_;
  QLabel* served_;
  QLabel* tokens_;
  QPushButton* drain_;
  QPushButton* cordon_;
  QPushButton* resume_;
  QLabel* message_;
  QLabel* connection_;
};

}  // namespace tidelane::ui::node
