#include "ui/node/node_panel_model.h"

#include <QLocale>
#include <algorithm>

namespace tidelane::ui::node {

namespace m = monitor;

NodePanelModel::NodePanelModel(m::MonitorSource* monitor, HostSource* host, QObject* parent)
    : QObject(parent), monitor_(monitor) {
  if (host) connect(host, &HostSource::sampled, this, &NodePanelModel::addHostSample);
  if (monitor) {
    connect(monitor, &m::MonitorSource::frameReceived, this, &NodePanelModel::addFrame);
    connect(monitor, &m::MonitorSource::nodeStateReported, this, &NodePanelModel::onStateReported);
    connect(monitor, &m::MonitorSource::connectionChanged, this,
            [this](bool connected, const QString& why) {
              // Kept apart from message(): retries repeat this every few seconds and must
              // not hide the answer to the operator's last click.
              connected_ = connected;
              connectionError_ = connected ? QString() : why;
              emit workerChanged();
            });
  }
}

// --- this machine

void NodePanelModel::addHostSample(const HostSample& sample) {
  latest_ = sample;
  history_.append(sample);
  // Samples come at 1 Hz, so the window is small; a clock step backwards must not keep old
  // samples forever, hence the bound on the count as well.
  const qint64 oldest = sample.timestampMs - kHistoryMs;
  while (!history_.isEmpty() &&
         (history_.first().timestampMs < oldest || history_.size() > 4 * kHistoryMs / 1000)) {
    history_.removeFirst();
  }
  emit hardwareChanged();
}

QString NodePanelModel::noGpuText() const {
  if (!latest_.gpus.isEmpty()) return {};
  if (!hasSample()) return tr("Looking for NVIDIA GPUs…");
  if (!latest_.nvmlLoaded) {
    return tr("No NVIDIA GPU found (NVML not available: %1)").arg(latest_.gpuStatus);
  }
  return tr("No NVIDIA GPU found (%1)").arg(latest_.gpuStatus);
}

QList<double> NodePanelModel::cpuSeries() const {
  QList<double> out;
  out.reserve(history_.size());
  for (const auto& s : history_) out.append(s.cpuUtilisation);
  return out;
}

QList<double> NodePanelModel::memorySeries() const {
  QList<double> out;
  out.reserve(history_.size());
  for (const auto& s : history_) {
    out.append(s.memoryTotalBytes > 0 ? double(s.memoryUsedBytes) / double(s.memoryTotalBytes)
                                      : 0.0);
  }
  return out;
}

QList<double> NodePanelModel::gpuSeries(int gpu, GpuMetric metric) const {
  QList<double> out;
  if (gpu < 0 || gpu >= gpuCount()) return out;
  out.reserve(history_.size());
  for (const auto& s : history_) {
    // A sample from before a GPU appeared (or after one vanished) has no value for it; the
    // series simply starts later.
    if (gpu >= s.gpus.size()) continue;
    const GpuSample& g = s.gpus[gpu];
    switch (metric) {
      case GpuMetric::Utilisation:
        out.append(g.utilisation);
        break;
      case GpuMetric::Memory:
        out.append(g.memoryTotalBytes > 0 ? double(g.memoryUsedBytes) / double(g.memoryTotalBytes)
                                          : 0.0);
        break;
      case GpuMetric::Temperature:
        out.append(g.temperatureC);
        break;
      case GpuMetric::Power:
        out.append(g.powerW);
        break;
      case GpuMetric::SmClock:
        out.append(g.smClockMhz);
        break;
      case GpuMetric::MemoryClock:
        out.append(g.memoryClockMhz);
        break;
    }
  }
  return out;
}

// --- the worker node

void NodePanelModel::setLocalNode(const QString& name) {
  local_ = name;
  // Without a local worker (a remote router) the bundled worker's name means nothing there:
  // the next frame's first node is shown until the user picks.
  selected_ = name;
  if (selected_.isEmpty() && !names_.isEmpty()) selected_ = names_.first();
  refreshNode();
}

void NodePanelModel::selectNode(const QString& name) {
  if (name == selected_) return;
  selected_ = name;
  pending_ = false;  // an answer about the previous node is still shown as a message
  refreshNode();
}

void NodePanelModel::addFrame(const m::MonitorFrame& frame) {
  lastFrame_ = frame;
  haveFrame_ = true;
  connected_ = true;
  connectionError_.clear();
  QStringList names;
  names.reserve(frame.nodes.size());
  for (const auto& n : frame.nodes) names.append(n.name);
  names.sort();
  names_ = names;
  // Connected to a remote router (no local worker): show the first node until the user picks.
  if (selected_.isEmpty() && !names_.isEmpty()) selected_ = names_.first();
  refreshNode();
}

void NodePanelModel::refreshNode() {
  node_.reset();
  if (haveFrame_ && !selected_.isEmpty()) {
    if (const auto* n = lastFrame_.node(selected_)) node_ = *n;
  }
  emit workerChanged();
}

NodePanelModel::WorkerState NodePanelModel::workerState() const {
  if (!haveFrame_ || selected_.isEmpty()) return WorkerState::Unknown;
  if (!node_) return WorkerState::Gone;
  switch (node_->state) {
    case m::NodeState::Ready:
      return WorkerState::Ready;
    case m::NodeState::Draining:
      return WorkerState::Draining;
    case m::NodeState::Cordoned:
      return WorkerState::Cordoned;
    case m::NodeState::Down:
      return WorkerState::Gone;
    case m::NodeState::Unknown:
      break;
  }
  return WorkerState::Unknown;
}

bool NodePanelModel::canDrain() const {
  return !pending_ && workerState() == WorkerState::Ready;
}

bool NodePanelModel::canCordon() const {
  const auto s = workerState();
  return !pending_ && (s == WorkerState::Ready || s == WorkerState::Draining);
}

bool NodePanelModel::canResume() const {
  const auto s = workerState();
  return !pending_ && (s == WorkerState::Draining || s == WorkerState::Cordoned);
}

void NodePanelModel::requestState(m::NodeState state) {
  if (selected_.isEmpty()) {
    setMessage(tr("No node selected."), true);
    return;
  }
  if (!monitor_) {
    setMessage(tr("Not connected to a router."), true);
    return;
  }
  pending_ = true;
  setMessage(state == m::NodeState::Ready      ? tr("Resuming %1…").arg(selected_)
             : state == m::NodeState::Draining ? tr("Draining %1…").arg(selected_)
                                               : tr("Cordoning %1…").arg(selected_),
             false);
  monitor_->requestNodeState(selected_, state);
}

void NodePanelModel::onStateReported(const QString& node, m::NodeState state,
                                     const QString& error) {
  pending_ = false;
  const QString verb = state == m::NodeState::Ready      ? tr("resume")
                       : state == m::NodeState::Draining ? tr("drain")
                                                         : tr("cordon");
  if (!error.isEmpty()) {
    setMessage(tr("Could not %1 %2: %3").arg(verb, node, error), true);
  } else {
    setMessage(state == m::NodeState::Ready ? tr("%1 resumed: it takes new requests.").arg(node)
               : state == m::NodeState::Draining ? tr("%1 is draining: it finishes what it has "
                                                      "and takes nothing new.")
                                                       .arg(node)
                                                 : tr("%1 cordoned: it takes nothing new until "
                                                      "resumed.")
                                                       .arg(node),
               false);
  }
}

void NodePanelModel::setMessage(const QString& text, bool error) {
  message_ = text;
  messageIsError_ = error;
  emit workerChanged();
}

QString NodePanelModel::bytesText(qint64 bytes) {
  const double gib = double(1ll << 30);
  if (bytes >= (1ll << 30)) return tr("%1 GiB").arg(QLocale().toString(bytes / gib, 'f', 1));
  return tr("%1 MiB").arg(QLocale().toString(bytes / double(1 << 20), 'f', 0));
}

QString NodePanelModel::workerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::Ready:
      return tr("ready");
    case WorkerState::Draining:
      return tr("draining");
    case WorkerState::Cordoned:
      return tr("cordoned");
    case WorkerState::Gone:
      return tr("gone");
    case WorkerState::Unknown:
      break;
  }
  return tr("unknown");
}

}  // namespace tidelane::ui::node
