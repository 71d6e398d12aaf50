#include "app/hardware_sampler.h"

#include <QDateTime>
#include <QtConcurrent/QtConcurrentRun>

#include "router/worker/hardware_probe.h"

namespace tidelane::app {

HardwareSampler::HardwareSampler(const QString& nvmlLibrary, QObject* parent)
    : ui::node::HostSource(parent),
      nvmlLibrary_(nvmlLibrary.isEmpty() ? QStringLiteral("libnvidia-ml.so.1") : nvmlLibrary),
      probe_(std::make_shared<std::unique_ptr<worker::HardwareProbe>>()) {
  qRegisterMetaType<ui::node::HostSample>();
  pool_.setMaxThreadCount(1);
  pool_.setExpiryTimeout(-1);  // one long-lived thread: NVML handles stay on it
  connect(&timer_, &QTimer::timeout, this, &HardwareSampler::tick);
  connect(&watcher_, &QFutureWatcher<ui::node::HostSample>::finished, this, [this] {
    if (watcher_.future().isValid() && watcher_.future().resultCount() > 0) {
      emit sampled(watcher_.result());
    }
  });
}

HardwareSampler::~HardwareSampler() {
  stop();
  pool_.waitForDone();
}

void HardwareSampler::start(int intervalMs) {
  timer_.start(intervalMs);
  tick();
}

void HardwareSampler::stop() {
  timer_.stop();
}

void HardwareSampler::tick() {
  if (watcher_.isRunning()) return;
  watcher_.setFuture(
      QtConcurrent::run(&pool_, [probe = probe_, library = nvmlLibrary_.toStdString()] {
        // dlopen and nvmlInit happen here, on the pool's thread, not at construction.
        if (!*probe) *probe = std::make_unique<worker::HardwareProbe>(library);
        const v1::HardwareInfo info = (*probe)->Sample();
        ui::node::HostSample s =
            toSample(info, QString::fromStdString((*probe)->GpuStatus()), (*probe)->NvmlLoaded());
        s.timestampMs = QDateTime::currentMSecsSinceEpoch();
        return s;
      }));
}

ui::node::HostSample HardwareSampler::toSample(const v1::HardwareInfo& info,
                                               const QString& gpuStatus, bool nvmlLoaded) {
  ui::node::HostSample s;
  s.cpuUtilisation = info.cpu_utilisation();
  s.memoryUsedBytes = static_cast<qint64>(info.memory_used_bytes());
  s.memoryTotalBytes = static_cast<qint64>(info.memory_total_bytes());
  s.gpuStatus = gpuStatus;
  s.nvmlLoaded = nvmlLoaded;
  for (const auto& g : info.gpus()) {
    ui::node::GpuSample gpu;
    gpu.name = QString::fromStdString(g.name());
    gpu.utilisation = g.utilisation();
    gpu.memoryUsedBytes = static_cast<qint64>(g.memory_used_bytes());
    gpu.memoryTotalBytes = static_cast<qint64>(g.memory_total_bytes());
    gpu.temperatureC = g.temperature_c();
    gpu.powerW = g.power_w();
    gpu.smClockMhz = static_cast<int>(g.sm_clock_mhz());
    gpu.memoryClockMhz = static_cast<int>(g.memory_clock_mhz());
    s.gpus.append(gpu);
  }
  return s;
}

}  // namespace tidelane::app
