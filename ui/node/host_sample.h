// HostSample: what this machine's hardware is doing at one moment, in plain Qt values (app/
// fills it from the worker's HardwareProbe; ui/ never sees protobuf or router/ headers).
//
// Value types only: copyable, no threads, no signals. Samples travel from the sampling thread
// to the GUI thread by value.
#pragma once

#include <QList>
#include <QMetaType>
#include <QString>

namespace tidelane::ui::node {

struct GpuSample {
  QString name;
  double utilisation = 0;  // 0..1
  qint64 memoryUsedBytes = 0;
  qint64 memoryTotalBytes = 0;
  double temperatureC = 0;
  double powerW = 0;
  int smClockMhz = 0;  // 0 = unknown
  int memoryClockMhz = 0;
};

struct HostSample {
  qint64 timestampMs = 0;       // local wall clock, ms since the Unix epoch
  double cpuUtilisation = 0;    // 0..1 over all cores, since the previous sample
  qint64 memoryUsedBytes = 0;   // total - available
  qint64 memoryTotalBytes = 0;  // 0 = could not be read
  QList<GpuSample> gpus;
  bool nvmlLoaded = false;  // NVML answered (there may still be no GPU)
  // Why there are no GPUs ("no NVIDIA driver: libnvidia-ml.so.1 not found"), or "NVML: 2 GPUs".
  QString gpuStatus;
};

}  // namespace tidelane::ui::node

Q_DECLARE_METATYPE(tidelane::ui::node::HostSample)
