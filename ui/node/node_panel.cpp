#include "ui/node/node_panel.h"

#include <QComboBox>
#include <QFormLayout>
#include <QFrame>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <cmath>

#include "ui/node/node_panel_model.h"
#include "ui/node/sparkline.h"

namespace tidelane::ui::node {
namespace {

using GpuMetric = NodePanelModel::GpuMetric;
constexpr GpuMetric kGpuMetrics[] = {GpuMetric::Utilisation, GpuMetric::Memory,
                                     GpuMetric::Temperature, GpuMetric::Power,
                                     GpuMetric::SmClock,     GpuMetric::MemoryClock};

QFrame* card(QWidget* parent, const QString& objectName, QLabel** title, QGridLayout** grid) {
  auto* frame = new QFrame(parent);
  frame->setObjectName(objectName);
  frame->setFrameShape(QFrame::StyledPanel);
  *grid = new QGridLayout(frame);
  (*grid)->setColumnStretch(2, 1);
  *title = new QLabel(frame);
  QFont bold = (*title)->font();
  bold.setBold(true);
  (*title)->setFont(bold);
  (*grid)->addWidget(*title, 0, 0, 1, 3);
  return frame;
}

QString percent(double share) {
  return QObject::tr("%1%").arg(std::lround(share * 100));
}

}  // namespace

NodePanel::NodePanel(monitor::MonitorSource* monitor, HostSource* host, QWidget* parent)
    : QWidget(parent),
      model_(new NodePanelModel(monitor, host, this)),
      gpuStatus_(new QLabel(this)),
      gpuArea_(new QWidget(this)),
      nodes_(new QComboBox(this)),
      state_(new QLabel(this)),
      modelName_(new QLabel(this)),
      lane_(new QLabel(this)),
      active_(new QLabel(this)),
      served_(new QLabel(this)),
      tokens_(new QLabel(this)),
      drain_(new QPushButton(tr("&Drain"), this)),
      cordon_(new QPushButton(tr("C&ordon"), this)),
      resume_(new QPushButton(tr("&Resume"), this)),
      message_(new QLabel(this)),
      connection_(new QLabel(this)) {
  setObjectName(QStringLiteral("nodePanel"));
  setAccessibleName(tr("Node panel"));

  // --- this machine
  auto* machine = new QGroupBox(tr("This machine"), this);
  auto* machineLayout = new QVBoxLayout(machine);
  gpuStatus_->setObjectName(QStringLiteral("gpuStatus"));
  gpuStatus_->setAccessibleName(tr("GPU status"));
  gpuStatus_->setWordWrap(true);
  gpuStatus_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  machineLayout->addWidget(gpuStatus_);

  auto* hostCards = new QHBoxLayout;
  QLabel* title = nullptr;
  QGridLayout* grid = nullptr;
  auto* cpuCard = card(machine, QStringLiteral("cpuCard"), &title, &grid);
  title->setText(tr("CPU"));
  cpu_ = addMetric(grid, 1, tr("Utilisation"), QStringLiteral("cpuValue"));
  cpu_.spark->setRange(0, 1);
  hostCards->addWidget(cpuCard, 1);
  auto* memoryCard = card(machine, QStringLiteral("memoryCard"), &title, &grid);
  title->setText(tr("Memory (RAM)"));
  memory_ = addMetric(grid, 1, tr("Used"), QStringLiteral("memoryValue"));
  memory_.spark->setRange(0, 1);
  hostCards->addWidget(memoryCard, 1);
  machineLayout->addLayout(hostCards);
  new QVBoxLayout(gpuArea_);
  gpuArea_->layout()->setContentsMargins(0, 0, 0, 0);
  machineLayout->addWidget(gpuArea_);

  // --- the worker
  auto* worker = new QGroupBox(tr("Worker"), this);
  auto* form = new QFormLayout(worker);
  nodes_->setObjectName(QStringLiteral("workerNode"));
  nodes_->setAccessibleName(tr("Worker node"));
  nodes_->setToolTip(tr("The node shown: the bundled worker, or any node of a remote router"));
  nodes_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  form->addRow(tr("&Node:"), nodes_);
  const struct {
    QLabel* label;
    const char* objectName;
    QString caption;
  } fields[] = {{state_, "workerState", tr("State:")},
                {modelName_, "workerModel", tr("Model:")},
                {lane_, "workerLane", tr("Lane role:")},
                {active_, "workerActive", tr("Active requests:")},
                {served_, "workerServed", tr("Requests served:")},
                {tokens_, "workerTokens", tr("Tokens/s:")}};
  for (const auto& f : fields) {
    f.label->setObjectName(QString::fromLatin1(f.objectName));
    f.label->setAccessibleName(QString(f.caption).remove(QLatin1Char(':')));
    f.label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    form->addRow(f.caption, f.label);
  }
  drain_->setObjectName(QStringLiteral("drainButton"));
  drain_->setAccessibleName(tr("Drain the node"));
  drain_->setToolTip(tr("Finish the requests it has and take nothing new"));
  cordon_->setObjectName(QStringLiteral("cordonButton"));
  cordon_->setAccessibleName(tr("Cordon the node"));
  cordon_->setToolTip(tr("Take nothing new until resumed"));
  resume_->setObjectName(QStringLiteral("resumeButton"));
  resume_->setAccessibleName(tr("Resume the node"));
  resume_->setToolTip(tr("Take new requests again"));
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(drain_);
  buttons->addWidget(cordon_);
  buttons->addWidget(resume_);
  buttons->addStretch(1);
  form->addRow(buttons);
  message_->setObjectName(QStringLiteral("nodeMessage"));
  message_->setAccessibleName(tr("Node operation result"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  form->addRow(message_);
  connection_->setObjectName(QStringLiteral("nodeConnection"));
  connection_->setAccessibleName(tr("Connection to the router"));
  connection_->setWordWrap(true);
  form->addRow(connection_);

  auto* content = new QWidget(this);
  auto* contentLayout = new QVBoxLayout(content);
  contentLayout->addWidget(worker);
  contentLayout->addWidget(machine);
  contentLayout->addStretch(1);
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setWidget(content);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(scroll);

  connect(model_, &NodePanelModel::hardwareChanged, this, &NodePanel::syncHardware);
  connect(model_, &NodePanelModel::workerChanged, this, &NodePanel::syncWorker);
  connect(nodes_, &QComboBox::textActivated, model_, &NodePanelModel::selectNode);
  connect(drain_, &QPushButton::clicked, model_,
          [this] { model_->requestState(monitor::NodeState::Draining); });
  connect(cordon_, &QPushButton::clicked, model_,
          [this] { model_->requestState(monitor::NodeState::Cordoned); });
  connect(resume_, &QPushButton::clicked, model_,
          [this] { model_->requestState(monitor::NodeState::Ready); });
  syncHardware();
  syncWorker();
}

NodePanel::~NodePanel() = default;

NodePanel::Metric NodePanel::addMetric(QGridLayout* grid, int row, const QString& label,
                                       const QString& objectName) {
  Metric m;
  auto* caption = new QLabel(label, grid->parentWidget());
  m.value = new QLabel(grid->parentWidget());
  m.value->setObjectName(objectName);
  m.value->setAccessibleName(label);
  m.value->setMinimumWidth(
      m.value->fontMetrics().horizontalAdvance(QStringLiteral("00.0/000.0 GiB")));
  m.spark = new Sparkline(grid->parentWidget());
  m.spark->setObjectName(objectName + QStringLiteral("Spark"));
  m.spark->setAccessibleName(tr("%1, last two minutes").arg(label));
  grid->addWidget(caption, row, 0);
  grid->addWidget(m.value, row, 1);
  grid->addWidget(m.spark, row, 2);
  return m;
}

void NodePanel::rebuildGpuCards() {
  for (auto& c : gpuCards_) delete c.frame;
  gpuCards_.clear();
  gpuNames_.clear();
  const auto& gpus = model_->latest().gpus;
  const QString captions[] = {tr("Utilisation"), tr("Memory"),   tr("Temperature"),
                              tr("Power"),       tr("SM clock"), tr("Memory clock")};
  const char* names[] = {"Util", "Memory", "Temperature", "Power", "SmClock", "MemoryClock"};
  for (int i = 0; i < gpus.size(); ++i) {
    GpuCard c;
    QGridLayout* grid = nullptr;
    c.frame = card(gpuArea_, QStringLiteral("gpuCard%1").arg(i), &c.title, &grid);
    c.frame->setAccessibleName(tr("GPU %1").arg(i));
    for (int k = 0; k < 6; ++k) {
      c.metrics.append(addMetric(grid, k + 1, captions[k],
                                 QStringLiteral("gpu%1%2").arg(i).arg(QLatin1String(names[k]))));
    }
    c.metrics[0].spark->setRange(0, 1);
    c.metrics[1].spark->setRange(0, 1);
    gpuArea_->layout()->addWidget(c.frame);
    gpuCards_.append(c);
    gpuNames_.append(gpus[i].name);
  }
}

void NodePanel::syncHardware() {
  const HostSample& s = model_->latest();
  QStringList names;
  for (const auto& g : s.gpus) names.append(g.name);
  if (names != gpuNames_) rebuildGpuCards();

  const QString noGpu = model_->noGpuText();
  gpuStatus_->setText(noGpu);
  gpuStatus_->setVisible(!noGpu.isEmpty());

  if (model_->hasSample()) {
    cpu_.value->setText(percent(s.cpuUtilisation));
    memory_.value->setText(s.memoryTotalBytes > 0
                               ? tr("%1 / %2").arg(NodePanelModel::bytesText(s.memoryUsedBytes),
                                                   NodePanelModel::bytesText(s.memoryTotalBytes))
                               : tr("unknown"));
  } else {
    cpu_.value->setText(tr("…"));
    memory_.value->setText(tr("…"));
  }
  cpu_.spark->setValues(model_->cpuSeries());
  memory_.spark->setValues(model_->memorySeries());

  const QLocale locale;
  for (int i = 0; i < gpuCards_.size() && i < s.gpus.size(); ++i) {
    const GpuSample& g = s.gpus[i];
    GpuCard& c = gpuCards_[i];
    c.title->setText(tr("GPU %1: %2").arg(i).arg(g.name));
    const QString mhz = tr("%1 MHz");
    const QString texts[] = {percent(g.utilisation),
                             tr("%1 / %2").arg(NodePanelModel::bytesText(g.memoryUsedBytes),
                                               NodePanelModel::bytesText(g.memoryTotalBytes)),
                             tr("%1 °C").arg(locale.toString(g.temperatureC, 'f', 0)),
                             tr("%1 W").arg(locale.toString(g.powerW, 'f', 0)),
                             g.smClockMhz > 0 ? mhz.arg(g.smClockMhz) : tr("unknown"),
                             g.memoryClockMhz > 0 ? mhz.arg(g.memoryClockMhz) : tr("unknown")};
    for (int k = 0; k < 6; ++k) {
      c.metrics[k].value->setText(texts[k]);
      c.metrics[k].spark->setValues(model_->gpuSeries(i, kGpuMetrics[k]));
    }
  }
}

void NodePanel::syncWorker() {
  {
    const QSignalBlocker block(nodes_);
    QStringList items = model_->nodeNames();
    const QString selected = model_->selectedNode();
    // The bundled worker stays listed while it is gone, so the user sees which one it was.
    if (!selected.isEmpty() && !items.contains(selected)) items.prepend(selected);
    QStringList current;
    for (int i = 0; i < nodes_->count(); ++i) current.append(nodes_->itemText(i));
    if (current != items) {
      nodes_->clear();
      nodes_->addItems(items);
    }
    nodes_->setCurrentText(selected);
  }
  const auto state = model_->workerState();
  QString stateText = NodePanelModel::workerStateName(state);
  if (model_->selectedNode().isEmpty()) stateText = tr("no node yet");
  state_->setText(stateText);
  const auto& n = model_->node();
  const QString none = tr("—");
  modelName_->setText(n && !n->model.isEmpty() ? n->model : none);
  lane_->setText(n ? monitor::roleName(n->role) : none);
  const QLocale locale;
  active_->setText(n ? locale.toString(n->active) : none);
  served_->setText(n ? locale.toString(n->servedTotal) : none);
  tokens_->setText(n ? locale.toString(n->tokensPerSecond, 'f', 1) : none);
  drain_->setEnabled(model_->canDrain());
  cordon_->setEnabled(model_->canCordon());
  resume_->setEnabled(model_->canResume());
  message_->setText(model_->message());
  QPalette pal = palette();
  if (model_->messageIsError()) pal.setColor(QPalette::WindowText, QColor(0xb0, 0x20, 0x20));
  message_->setPalette(pal);
  connection_->setText(model_->connectionError());
  connection_->setVisible(!model_->connectionError().isEmpty());
}

}  // namespace tidelane::ui::node
