// HardwareProbe: what this machine's hardware is doing, for telemetry and the node panel:
// CPU utilisation and memory from /proc, and every NVIDIA GPU through NVML, which is loaded
// at run time (dlopen of libnvidia-ml.so.1) so the worker runs, and says so, where there is
// no GPU or driver.
//
// Threading: Sample is not thread-safe (it keeps the previous CPU counters); call it from one
// thread (the worker's telemetry thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tidelane/v1/monitor.pb.h"

namespace tidelane::worker {

class HardwareProbe {
 public:
  // `nvmlLibrary` is what dlopen is asked for; tests name a missing one to take the no-GPU
  // path on any machine.
  explicit HardwareProbe(const std::string& nvmlLibrary = "libnvidia-ml.so.1");
  ~HardwareProbe();
  HardwareProbe(const HardwareProbe&) = delete;
  HardwareProbe& operator=(const HardwareProbe&) = delete;

  // The current state. CPU utilisation is measured since the previous Sample (0 the first time).
  v1::HardwareInfo Sample();

  // "NVML: 2 GPUs" or why there are none ("no NVIDIA driver: libnvidia-ml.so.1 not found").
  std::string GpuStatus() const;
  // NVML was loaded and initialised (there may still be no GPU).
  bool NvmlLoaded() const { return nvml_ != nullptr; }

 private:
  struct Nvml;
  std::unique_ptr<Nvml> nvml_;
  std::string gpu_status_;
  std::uint64_t last_busy_ = 0;
  std::uint64_t last_total_ = 0;
};

}  // namespace tidelane::worker
