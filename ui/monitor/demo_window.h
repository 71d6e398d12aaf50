// DemoWindow: the surge demo on one screen. Controls on top (users, arrival pattern, Start,
// Stop, presenter mode), the caption line narrating what happens, the naive and the tidal
// cluster's tidal-lane views side by side, and a scoreboard under each (served, p99 TTFT,
// degraded, rejected, lost, paralysed node-seconds, queued, in flight; the better figure of
// the two in green once the surge is over).
//
// Presenter mode (F11 or the button; Esc leaves it): full screen, large fonts, the caption
// prominent. Closing the window stops the demo. Shows; holds no logic: what to run, the
// figures and the caption come from the DemoSource.
//
// Threading: GUI thread. `demo` must outlive the window.
#pragma once

#include <QWidget>
#include <array>

#include "ui/monitor/demo_source.h"

class QComboBox;
class QLabel;
class QPushButton;

namespace tidelane::ui::monitor {

class MonitorModel;
class TidalLaneView;

class DemoWindow : public QWidget {
  Q_OBJECT

 public:
  explicit DemoWindow(DemoSource* demo, QWidget* parent = nullptr);
  ~DemoWindow() override;

  bool isPresenting() const { return presenting_; }
  TidalLaneView* laneView(int side) { return sides_[side].view; }
  MonitorModel* model(int side) { return sides_[side].model; }
  // The surge the controls describe now; setSelectedSurge picks one (users rounded to the
  // nearest choice).
  SurgeSpec selectedSurge() const;
  void setSelectedSurge(const SurgeSpec& surge);

  // The scoreboard's rows for one side: (label, value) in display order. `other` is the
  // other side's score, to mark the better figure once both are final.
  struct Row {
    QString label;
    QString value;
    bool better = false;
  };
  static QList<Row> scoreRows(const DemoScore& score, const DemoScore& other);

 public slots:
  void setPresenting(bool on);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  struct Side {
    QLabel* title = nullptr;
    MonitorModel* model = nullptr;
    TidalLaneView* view = nullptr;
    QList<QLabel*> labels;
    QList<QLabel*> values;
  };
  void syncControls();
  void showScore(int side);
  void applyFonts();

  DemoSource* demo_;
  std::array<Side, 2> sides_;
  QComboBox* users_;
  QComboBox* pattern_;
  QPushButton* start_;
  QPushButton* stop_;
  QPushButton* present_;
  QLabel* caption_;
  QLabel* status_;
  bool presenting_ = false;
};

}  // namespace tidelane::ui::monitor
