#include "ui/monitor/monitor_window.h"

#include <QComboBox>
#include <QDateTime>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QShortcut>
#include <QSignalBlocker>
#include <QSlider>
#include <QSplitter>
#include <QTabWidget>
#include <QVBoxLayout>

#include "ui/monitor/monitor_charts.h"
#include "ui/monitor/monitor_model.h"
#include "ui/monitor/tidal_lane_view.h"

namespace tidelane::ui::monitor {
namespace {
constexpr int kTimelineSteps = 1000;
}

MonitorWindow::MonitorWindow(MonitorSource* source, QWidget* parent)
    : QWidget(parent),
      source_(source),
      model_(new MonitorModel(this)),
      view_(new TidalLaneView(model_, this)),
      charts_(new MonitorCharts(model_, this)),
      pause_(new QPushButton(this)),
      timeline_(new QSlider(Qt::Horizontal, this)),
      timeLabel_(new QLabel(this)),
      status_(new QLabel(this)),
      policy_(new QComboBox(this)) {
  setWindowTitle(tr("Tidelane — Monitor"));
  setObjectName(QStringLiteral("monitorWindow"));
  resize(1280, 860);

  pause_->setObjectName(QStringLiteral("pause"));
  pause_->setAccessibleName(tr("Pause or resume the live view"));
  pause_->setCheckable(true);
  timeline_->setObjectName(QStringLiteral("timeline"));
  timeline_->setAccessibleName(tr("Time line"));
  timeline_->setToolTip(tr("Drag to look back over the last minutes"));
  timeline_->setRange(0, kTimelineSteps);
  timeline_->setValue(kTimelineSteps);
  timeLabel_->setObjectName(QStringLiteral("timeLabel"));
  timeLabel_->setMinimumWidth(90);
  auto* zoomOut = new QPushButton(tr("−"), this);
  auto* zoomIn = new QPushButton(tr("+"), this);
  auto* zoomFit = new QPushButton(tr("Fit"), this);
  zoomOut->setAccessibleName(tr("Zoom out"));
  zoomIn->setAccessibleName(tr("Zoom in"));
  zoomFit->setAccessibleName(tr("Reset zoom"));
  zoomOut->setToolTip(tr("Zoom out (Ctrl+-)"));
  zoomIn->setToolTip(tr("Zoom in (Ctrl+= or Ctrl+wheel)"));
  zoomFit->setToolTip(tr("Show every lane (Ctrl+0)"));
  for (auto* b : {zoomOut, zoomIn}) b->setFixedWidth(32);
  policy_->setObjectName(QStringLiteral("policy"));
  policy_->setAccessibleName(tr("Routing policy"));
  policy_->setToolTip(tr("Switch the router's routing policy live (for demos and experiments)"));
  policy_->setEnabled(false);  // until the router says which policies it has
  status_->setObjectName(QStringLiteral("monitorStatus"));
  status_->setAccessibleName(tr("Monitor status"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(pause_);
  controls->addWidget(timeline_, 1);
  controls->addWidget(timeLabel_);
  controls->addSpacing(12);
  controls->addWidget(zoomOut);
  controls->addWidget(zoomIn);
  controls->addWidget(zoomFit);
  controls->addSpacing(12);
  auto* policyLabel = new QLabel(tr("Policy:"), this);
  policyLabel->setBuddy(policy_);
  controls->addWidget(policyLabel);
  controls->addWidget(policy_);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(view_);
  split->addWidget(charts_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  split->setChildrenCollapsible(false);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 6, 6, 6);
  layout->addLayout(controls);
  tabs_ = new QTabWidget(this);
  tabs_->setObjectName(QStringLiteral("monitorTabs"));
  tabs_->setAccessibleName(tr("Monitor views"));
  tabs_->setTabBarAutoHide(true);
  tabs_->setDocumentMode(true);
  tabs_->addTab(split, tr("&Cluster"));
  layout->addWidget(tabs_, 1);
  layout->addWidget(status_);

  connect(pause_, &QPushButton::toggled, model_, [this](bool paused) { model_->setLive(!paused); });
  connect(timeline_, &QSlider::sliderMoved, model_,
          [this](int v) { model_->scrubTo(double(v) / kTimelineSteps); });
  connect(zoomIn, &QPushButton::clicked, view_, &TidalLaneView::zoomIn);
  connect(zoomOut, &QPushButton::clicked, view_, &TidalLaneView::zoomOut);
  connect(zoomFit, &QPushButton::clicked, view_, &TidalLaneView::resetZoom);
  connect(model_, &MonitorModel::liveChanged, this, &MonitorWindow::syncControls);
  connect(model_, &MonitorModel::frameAdded, this, &MonitorWindow::syncControls);
  connect(model_, &MonitorModel::displayChanged, this, &MonitorWindow::syncControls);
  auto* space = new QShortcut(QKeySequence(Qt::Key_Space), this);
  connect(space, &QShortcut::activated, pause_, &QPushButton::toggle);

  if (source_) {
    connect(source_, &MonitorSource::frameReceived, model_, &MonitorModel::addFrame);
    connect(source_, &MonitorSource::connectionChanged, this,
            [this](bool connected, const QString& message) {
              showStatus(connected ? tr("Watching the %1").arg(source_->describe()) : message);
            });
    showStatus(tr("Connecting to the %1…").arg(source_->describe()));
    connect(source_, &MonitorSource::policiesReported, this,
            [this](const QString& current, const QStringList& available, const QString& error) {
              if (!error.isEmpty()) {
                showStatus(tr("Policy not changed: %1").arg(error));
                return;
              }
              const QSignalBlocker block(policy_);
              policy_->clear();
              policy_->addItems(available);
              policy_->setCurrentText(current);
              policy_->setEnabled(!available.isEmpty());
            });
    connect(policy_, &QComboBox::textActivated, source_,
            [this](const QString& name) { source_->requestPolicy(name); });
    source_->requestPolicy(QString());  // ask which policies there are
  }
  syncControls();
}

MonitorWindow::~MonitorWindow() = default;

void MonitorWindow::setNodePanel(QWidget* panel) {
  if (!panel || nodePanel_) return;
  nodePanel_ = panel;
  tabs_->addTab(panel, tr("&Node"));
}

void MonitorWindow::showNodeTab() {
  if (nodePanel_) tabs_->setCurrentWidget(nodePanel_);
}

void MonitorWindow::showStatus(const QString& message) {
  status_->setText(message);
}

void MonitorWindow::syncControls() {
  const bool live = model_->isLive();
  {
    const QSignalBlocker block(pause_);
    pause_->setChecked(!live);
  }
  pause_->setText(live ? tr("Pause") : tr("Live"));
  if (!timeline_->isSliderDown()) {
    timeline_->setValue(static_cast<int>(std::lround(model_->cursorFraction() * kTimelineSteps)));
  }
  const auto& h = model_->history();
  if (h.isEmpty()) {
    timeLabel_->setText(tr("no data"));
  } else if (live) {
    timeLabel_->setText(tr("live"));
  } else {
    const qint64 shown = model_->display(model_->now()).timeMs;
    timeLabel_->setText(tr("%1 s ago").arg((h.lastMs() - shown) / 1000.0, 0, 'f', 1));
  }
}

}  // namespace tidelane::ui::monitor
