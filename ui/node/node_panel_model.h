// NodePanelModel: what the node panel shows, and the operator's intent, without a widget.
//
// Two halves:
// - this machine's hardware: HostSamples from a HostSource, kept for the last kHistoryMs so
//   every metric has a sparkline series, and the line saying why there is no GPU;
// - one worker node as the router sees it: the node named by setLocalNode (the bundled
//   worker) unless the user picked another with selectNode (a remote router), fed by the
//   MonitorSource's frames; requestState asks the router to drain, cordon or resume it
//   and message() says how that went.
//
// Ownership: `monitor` and `host` are not owned and may be null (tests feed addFrame and
// addHostSample); if they are destroyed first the model simply stops hearing from them.
// Threading: GUI thread only.
#pragma once

#include <QList>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QStringList>
#include <optional>

#include "ui/monitor/monitor_frame.h"
#include "ui/monitor/monitor_source.h"
#include "ui/node/host_sample.h"
#include "ui/node/host_source.h"

namespace tidelane::ui::node {

class NodePanelModel : public QObject {
  Q_OBJECT

 public:
  static constexpr qint64 kHistoryMs = 120'000;  // sparklines show the last two minutes

  enum class GpuMetric { Utilisation, Memory, Temperature, Power, SmClock, MemoryClock };
  // The worker as the panel shows it: Unknown until the first frame, Gone when the router
  // no longer lists it (or lists it as down).
  enum class WorkerState { Unknown, Ready, Draining, Cordoned, Gone };

  explicit NodePanelModel(monitor::MonitorSource* monitor = nullptr, HostSource* host = nullptr,
                          QObject* parent = nullptr);

  // --- this machine
  void addHostSample(const HostSample& sample);
  // The newest sample; a default one (no memory, no GPUs) before the first.
  const HostSample& latest() const { return latest_; }
  bool hasSample() const { return !history_.isEmpty(); }
  int gpuCount() const { return static_cast<int>(latest_.gpus.size()); }
  // "No NVIDIA GPU found (NVML not available: …)" when there is none, else empty.
  QString noGpuText() const;
  // Oldest first, one value per sample within kHistoryMs: CPU and memory as 0..1 shares;
  // GPU metrics in their own unit (share, share of memory, °C, W, MHz). Empty for a GPU
  // index that the newest sample does not have.
  QList<double> cpuSeries() const;
  QList<double> memorySeries() const;
  QList<double> gpuSeries(int gpu, GpuMetric metric) const;

  // --- the worker node
  // The bundled worker's node name; empty when the router is remote (the user picks).
  void setLocalNode(const QString& name);
  QString localNode() const { return local_; }
  // The node shown from now on (the user's pick overrides the local one until the next
  // setLocalNode).
  void selectNode(const QString& name);
  QString selectedNode() const { return selected_; }
  void addFrame(const monitor::MonitorFrame& frame);
  QStringList nodeNames() const { return names_; }  // every node in the newest frame, sorted
  WorkerState workerState() const;
  // The selected node in the newest frame; nullopt when absent.
  const std::optional<monitor::NodeFrame>& node() const { return node_; }
  bool connected() const { return connected_; }
  // Why the monitor stream is down ("… bearer token not accepted …"); empty while frames flow.
  QString connectionError() const { return connectionError_; }

  // Which transitions apply now: drain a ready node; cordon a ready or draining one; resume
  // a draining or cordoned one. None while a request is in flight or without a node.
  bool canDrain() const;
  bool canCordon() const;
  bool canResume() const;
  bool requestPending() const { return pending_; }
  // Asks the router (through the MonitorSource) to move the selected node to `state`; the
  // answer arrives as a message, the state itself with the next frames.
  void requestState(monitor::NodeState state);
  QString message() const { return message_; }
  bool messageIsError() const { return messageIsError_; }

  // "12.1 GiB", "512 MiB".
  static QString bytesText(qint64 bytes);
  static QString workerStateName(WorkerState state);

 signals:
  void hardwareChanged();
  void workerChanged();  // the node, the names, the pending flag or the message changed

 private:
  void setMessage(const QString& text, bool error);
  void onStateReported(const QString& node, monitor::NodeState state, const QString& error);
  void refreshNode();

  QPointer<monitor::MonitorSource> monitor_;
  QList<HostSample> history_;
  HostSample latest_;
  QString local_;
  QString selected_;
  QStringList names_;
  std::optional<monitor::NodeFrame> node_;
  monitor::MonitorFrame lastFrame_;
  bool haveFrame_ = false;
  bool connected_ = false;
  QString connectionError_;
  bool pending_ = false;
  QString message_;
  bool messageIsError_ = false;
};

}  // namespace tidelane::ui::node
