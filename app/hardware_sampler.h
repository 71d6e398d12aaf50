// HardwareSampler: ui::node::HostSource over the worker's own HardwareProbe (router/worker,
// plain C++: /proc for CPU and memory, NVML through dlopen for GPUs), so the node panel and
// the worker's telemetry measure the same way.
//
// start() samples at once and then every `intervalMs`. Each sample runs on a private
// one-thread pool (QtConcurrent): NVML calls can block for tens of milliseconds and must not
// stall the GUI, and the probe is not thread-safe, so one thread owns it. A tick that finds
// the previous sample still running is skipped rather than queued.
//
// Threading: create, call and destroy in the GUI thread; `sampled` is emitted there. The
// destructor stops the timer and waits for a sample in progress.
#pragma once

#include <QFutureWatcher>
#include <QString>
#include <QThreadPool>
#include <QTimer>
#include <memory>

#include "ui/node/host_source.h"

namespace tidelane::v1 {
class HardwareInfo;
}
namespace tidelane::worker {
class HardwareProbe;
}

namespace tidelane::app {

class HardwareSampler : public ui::node::HostSource {
  Q_OBJECT

 public:
  // `nvmlLibrary`: what the probe dlopens (empty: libnvidia-ml.so.1); tests name a missing
  // library to take the no-GPU path on any machine.
  explicit HardwareSampler(const QString& nvmlLibrary = {}, QObject* parent = nullptr);
  ~HardwareSampler() override;

  void start(int intervalMs = 1000);
  void stop();
  bool isRunning() const { return timer_.isActive(); }

  static ui::node::HostSample toSample(const v1::HardwareInfo& info, const QString& gpuStatus,
                                       bool nvmlLoaded);

 private:
  void tick();

  QString nvmlLibrary_;
  QTimer timer_;
  QThreadPool pool_;
  QFutureWatcher<ui::node::HostSample> watcher_;
  // Created and used on the pool's thread only (dlopen/nvmlInit included); freed with the
  // sampler, after the pool is idle.
  std::shared_ptr<std::unique_ptr<worker::HardwareProbe>> probe_;
};

}  // namespace tidelane::app
