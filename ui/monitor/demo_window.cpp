#include "ui/monitor/demo_window.h"

#include <QCloseEvent>
#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QShortcut>
#include <QVBoxLayout>

#include "ui/monitor/monitor_model.h"
#include "ui/monitor/tidal_lane_view.h"

namespace tidelane::ui::monitor {
namespace {

QString count(qint64 n) {
  return QLocale().toString(n);
}

QString secondsText(double s) {
  return QObject::tr("%1 s").arg(QLocale().toString(s, 'f', s < 10 ? 2 : 1));
}

constexpr int kScoreRows = 8;

}  // namespace

QList<DemoWindow::Row> DemoWindow::scoreRows(const DemoScore& s, const DemoScore& o) {
  const bool compare = s.final && o.final;
  auto higher = [compare](double a, double b) { return compare && a > b; };
  auto lower = [compare](double a, double b) { return compare && a < b; };
  return {
      {tr("Served"), tr("%1 of %2").arg(count(s.served), count(s.users)),
       higher(s.served, o.served)},
      {tr("p99 TTFT"), secondsText(s.ttftP99Ms / 1000.0), lower(s.ttftP99Ms, o.ttftP99Ms)},
      {tr("Degraded"), count(s.degraded), lower(s.degraded, o.degraded)},
      {tr("Rejected"), count(s.rejected), lower(s.rejected, o.rejected)},
      {tr("Lost"), s.lost < 0 ? tr("checking…") : count(s.lost), lower(s.lost, o.lost)},
      {tr("Paralysed node-seconds"), QLocale().toString(s.paralysedNodeSeconds, 'f', 1),
       lower(s.paralysedNodeSeconds, o.paralysedNodeSeconds)},
      {tr("Queued now"), count(s.queued), false},
      {tr("In flight now"), count(s.inFlight), false},
  };
}

DemoWindow::DemoWindow(DemoSource* demo, QWidget* parent)
    : QWidget(parent),
      demo_(demo),
      users_(new QComboBox(this)),
      pattern_(new QComboBox(this)),
      start_(new QPushButton(tr("Start surge"), this)),
      stop_(new QPushButton(tr("Stop"), this)),
      present_(new QPushButton(tr("Presenter mode"), this)),
      caption_(new QLabel(this)),
      status_(new QLabel(this)) {
  setWindowTitle(tr("Tidelane — Surge demo"));
  setObjectName(QStringLiteral("demoWindow"));
  resize(1400, 900);

  users_->setObjectName(QStringLiteral("demoUsers"));
  users_->setAccessibleName(tr("Users in the surge"));
  users_->addItem(tr("1,000 users"), 1000);
  users_->addItem(tr("10,000 users"), 10000);
  pattern_->setObjectName(QStringLiteral("demoPattern"));
  pattern_->setAccessibleName(tr("How the users arrive"));
  pattern_->addItem(tr("Flash crowd (2 s)"), int(SurgePattern::Flash));
  pattern_->addItem(tr("Ramp (20 s)"), int(SurgePattern::Ramp));
  pattern_->addItem(tr("Azure trace replay (20 s)"), int(SurgePattern::Trace));
  start_->setObjectName(QStringLiteral("demoStart"));
  start_->setAccessibleName(tr("Start the surge"));
  start_->setToolTip(tr("Starts both clusters if needed and fires the same surge at both"));
  start_->setDefault(true);
  stop_->setObjectName(QStringLiteral("demoStop"));
  stop_->setAccessibleName(tr("Stop the demo"));
  stop_->setToolTip(tr("Stops the surge and both clusters now"));
  present_->setObjectName(QStringLiteral("demoPresenter"));
  present_->setAccessibleName(tr("Presenter mode"));
  present_->setToolTip(tr("Full screen with large fonts (F11; Esc leaves)"));
  present_->setCheckable(true);
  caption_->setObjectName(QStringLiteral("demoCaption"));
  caption_->setAccessibleName(tr("What is happening"));
  caption_->setWordWrap(true);
  caption_->setText(demo_->caption());
  status_->setObjectName(QStringLiteral("demoStatus"));
  status_->setAccessibleName(tr("Demo status"));
  status_->setWordWrap(true);
  status_->setStyleSheet(QStringLiteral("color: #b00020;"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(users_);
  controls->addWidget(pattern_);
  controls->addWidget(start_);
  controls->addWidget(stop_);
  controls->addStretch(1);
  controls->addWidget(present_);

  auto* columns = new QHBoxLayout;
  for (int i = 0; i < 2; ++i) {
    Side& side = sides_[i];
    side.title = new QLabel(demo_->sideTitle(i), this);
    side.title->setObjectName(QStringLiteral("demoTitle%1").arg(i));
    side.title->setAlignment(Qt::AlignCenter);
    side.model = new MonitorModel(this);
    side.view = new TidalLaneView(side.model, this);
    side.view->setObjectName(QStringLiteral("demoLanes%1").arg(i));
    side.view->setAccessibleName(demo_->sideTitle(i));
    connect(demo_->monitor(i), &MonitorSource::frameReceived, side.model, &MonitorModel::addFrame);
    auto* board = new QGridLayout;
    for (int r = 0; r < kScoreRows; ++r) {
      auto* label = new QLabel(this);
      auto* value = new QLabel(this);
      value->setObjectName(QStringLiteral("score%1_%2").arg(i).arg(r));
      value->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
      label->setBuddy(value);
      board->addWidget(label, r / 2, (r % 2) * 2);
      board->addWidget(value, r / 2, (r % 2) * 2 + 1);
      side.labels << label;
      side.values << value;
    }
    board->setColumnStretch(1, 1);
    board->setColumnStretch(3, 1);
    board->setHorizontalSpacing(16);
    auto* column = new QVBoxLayout;
    column->addWidget(side.title);
    column->addWidget(side.view, 1);
    column->addLayout(board);
    columns->addLayout(column, 1);
    showScore(i);
  }

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(8, 8, 8, 8);
  layout->addLayout(controls);
  layout->addWidget(caption_);
  layout->addLayout(columns, 1);
  layout->addWidget(status_);

  connect(start_, &QPushButton::clicked, this, [this] {
    status_->clear();
    // The views start afresh so the picture is this surge's only.
    for (Side& s : sides_) s.model->clear();
    demo_->run(selectedSurge());
  });
  connect(stop_, &QPushButton::clicked, demo_, &DemoSource::stop);
  connect(present_, &QPushButton::toggled, this, &DemoWindow::setPresenting);
  auto* f11 = new QShortcut(QKeySequence(Qt::Key_F11), this);
  connect(f11, &QShortcut::activated, present_, &QPushButton::toggle);
  auto* esc = new QShortcut(QKeySequence(Qt::Key_Escape), this);
  connect(esc, &QShortcut::activated, this, [this] { present_->setChecked(false); });
  connect(demo_, &DemoSource::stateChanged, this, &DemoWindow::syncControls);
  connect(demo_, &DemoSource::scoreChanged, this, [this](int) {
    // Each side's "better" marks depend on the other's figures.
    showScore(0);
    showScore(1);
  });
  connect(demo_, &DemoSource::captionChanged, caption_, &QLabel::setText);
  connect(demo_, &DemoSource::failed, status_, &QLabel::setText);
  applyFonts();
  syncControls();
}

DemoWindow::~DemoWindow() = default;

SurgeSpec DemoWindow::selectedSurge() const {
  SurgeSpec s;
  s.users = users_->currentData().toInt();
  s.pattern = static_cast<SurgePattern>(pattern_->currentData().toInt());
  return s;
}

void DemoWindow::setSelectedSurge(const SurgeSpec& surge) {
  users_->setCurrentIndex(surge.users >= 5000 ? 1 : 0);
  pattern_->setCurrentIndex(pattern_->findData(int(surge.pattern)));
}

void DemoWindow::setPresenting(bool on) {
  if (present_->isChecked() != on) {
    present_->setChecked(on);  // comes back here through toggled
    return;
  }
  if (presenting_ == on) return;
  presenting_ = on;
  if (on) {
    showFullScreen();
  } else {
    showNormal();
  }
  applyFonts();
}

void DemoWindow::applyFonts() {
  // Sizes relative to the desktop's font, so a presenter's large-font desktop stays large.
  const double base = QFont().pointSizeF();
  const double k = presenting_ ? 1.6 : 1.0;
  auto sized = [&](double factor, bool bold) {
    QFont f;
    f.setPointSizeF(base * factor * k);
    f.setBold(bold);
    return f;
  };
  for (QWidget* w : {static_cast<QWidget*>(users_), static_cast<QWidget*>(pattern_),
                     static_cast<QWidget*>(start_), static_cast<QWidget*>(stop_),
                     static_cast<QWidget*>(present_), static_cast<QWidget*>(status_)}) {
    w->setFont(sized(1.0, false));
  }
  caption_->setFont(sized(presenting_ ? 1.5 : 1.2, true));
  for (Side& s : sides_) {
    s.title->setFont(sized(1.3, true));
    for (QLabel* l : s.labels) l->setFont(sized(1.0, false));
    for (QLabel* v : s.values) v->setFont(sized(1.25, true));
  }
}

void DemoWindow::showScore(int i) {
  const auto rows = scoreRows(demo_->score(i), demo_->score(1 - i));
  Side& side = sides_[i];
  for (int r = 0; r < kScoreRows && r < rows.size(); ++r) {
    side.labels[r]->setText(rows[r].label);
    side.values[r]->setText(rows[r].value);
    side.values[r]->setStyleSheet(rows[r].better ? QStringLiteral("color: #0a8a3a;") : QString());
    side.values[r]->setAccessibleName(
        tr("%1, %2: %3").arg(demo_->sideTitle(i), rows[r].label, rows[r].value));
  }
}

void DemoWindow::syncControls() {
  using State = DemoSource::State;
  const State s = demo_->state();
  const bool busy = s == State::Starting || s == State::Surging;
  start_->setEnabled(!busy);
  users_->setEnabled(!busy);
  pattern_->setEnabled(!busy);
  stop_->setEnabled(s != State::Idle && s != State::Failed);
  for (Side& side : sides_) side.model->setLive(true);
}

void DemoWindow::closeEvent(QCloseEvent* event) {
  demo_->stop();
  QWidget::closeEvent(event);
}

}  // namespace tidelane::ui::monitor
