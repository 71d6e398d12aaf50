#include "router/worker/hardware_probe.h"

#include <dlfcn.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tidelane::worker {
namespace {

// The few NVML declarations we use (nvml.h, NVML API v2); NVML returns 0 on success.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlUtilization_t {  // NOLINT(readability-identifier-naming): NVML's own name
  unsigned int gpu;
  unsigned int memory;
};
struct nvmlMemory_t {  // NOLINT(readability-identifier-naming): NVML's own name
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr int kNvmlTemperatureGpu = 0;
constexpr int kNvmlClockSm = 1;   // nvmlClockType_t NVML_CLOCK_SM
constexpr int kNvmlClockMem = 2;  // nvmlClockType_t NVML_CLOCK_MEM

}  // namespace

struct HardwareProbe::Nvml {
  void* lib = nullptr;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*) = nullptr;
  // Optional: very old drivers lack it, and the rest is still worth reporting.
  nvmlReturn_t (*clock)(nvmlDevice_t, int, unsigned int*) = nullptr;

  template <typename F>
  bool Load(F& fn, const char* symbol) {
    fn = reinterpret_cast<F>(dlsym(lib, symbol));
    return fn != nullptr;
  }
  ~Nvml() {
    if (shutdown) shutdown();
    if (lib) dlclose(lib);
  }
};

HardwareProbe::HardwareProbe(const std::string& nvmlLibrary) {
  auto nvml = std::make_unique<Nvml>();
  nvml->lib = dlopen(nvmlLibrary.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!nvml->lib) {
    gpu_status_ = "no NVIDIA driver: " + nvmlLibrary + " not found";
    return;
  }
  const bool ok = nvml->Load(nvml->init, "nvmlInit_v2") &&
                  nvml->Load(nvml->count, "nvmlDeviceGetCount_v2") &&
                  nvml->Load(nvml->handle, "nvmlDeviceGetHandleByIndex_v2") &&
                  nvml->Load(nvml->name, "nvmlDeviceGetName") &&
                  nvml->Load(nvml->utilization, "nvmlDeviceGetUtilizationRates") &&
                  nvml->Load(nvml->memory, "nvmlDeviceGetMemoryInfo") &&
                  nvml->Load(nvml->temperature, "nvmlDeviceGetTemperature") &&
                  nvml->Load(nvml->power, "nvmlDeviceGetPowerUsage");
  if (!ok) {
    gpu_status_ = "NVML library lacks expected functions";
    return;
  }
  if (nvml->init() != 0) {
    gpu_status_ = "NVML could not initialise (driver not loaded?)";
    return;
  }
  nvml->Load(nvml->shutdown, "nvmlShutdown");
  nvml->Load(nvml->clock, "nvmlDeviceGetClockInfo");
  unsigned int n = 0;
  nvml->count(&n);
  gpu_status_ = "NVML: " + std::to_string(n) + (n == 1 ? " GPU" : " GPUs");
  nvml_ = std::move(nvml);
}

HardwareProbe::~HardwareProbe() = default;

std::string HardwareProbe::GpuStatus() const {
  return gpu_status_;
}

v1::HardwareInfo HardwareProbe::Sample() {
  v1::HardwareInfo info;
  // /proc/stat "cpu user nice system idle iowait irq softirq steal ...": busy = all - idle -
  // iowait.
  std::ifstream stat("/proc/stat");
  std::string label;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                steal = 0;
  if (stat >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal &&
      label == "cpu") {
    const std::uint64_t total = user + nice + system + idle + iowait + irq + softirq + steal;
    const std::uint64_t busy = total - idle - iowait;
    if (last_total_ > 0 && total > last_total_) {
      info.set_cpu_utilisation(static_cast<double>(busy - last_busy_) /
                               static_cast<double>(total - last_total_));
    }
    last_busy_ = busy;
    last_total_ = total;
  }
  // /proc/meminfo, in kB.
  std::ifstream meminfo("/proc/meminfo");
  std::uint64_t total_kb = 0, available_kb = 0;
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream in(line);
    std::string key;
    std::uint64_t kb = 0;
    in >> key >> kb;
    if (key == "MemTotal:") total_kb = kb;
    if (key == "MemAvailable:") available_kb = kb;
  }
  info.set_memory_total_bytes(total_kb * 1024);
  info.set_memory_used_bytes((total_kb - std::min(total_kb, available_kb)) * 1024);

  if (nvml_) {
    unsigned int n = 0;
    nvml_->count(&n);
    for (unsigned int i = 0; i < n; ++i) {
      nvmlDevice_t dev = nullptr;
      if (nvml_->handle(i, &dev) != 0) continue;
      auto* gpu = info.add_gpus();
      char name[96] = {};
      if (nvml_->name(dev, name, sizeof name) == 0) gpu->set_name(name);
      nvmlUtilization_t u{};
      if (nvml_->utilization(dev, &u) == 0) gpu->set_utilisation(u.gpu / 100.0);
      nvmlMemory_t m{};
      if (nvml_->memory(dev, &m) == 0) {
        gpu->set_memory_total_bytes(m.total);
        gpu->set_memory_used_bytes(m.used);
      }
      unsigned int celsius = 0;
      if (nvml_->temperature(dev, kNvmlTemperatureGpu, &celsius) == 0)
        gpu->set_temperature_c(celsius);
      unsigned int milliwatts = 0;
      if (nvml_->power(dev, &milliwatts) == 0) gpu->set_power_w(milliwatts / 1000.0);
      unsigned int mhz = 0;
      if (nvml_->clock && nvml_->clock(dev, kNvmlClockSm, &mhz) == 0) gpu->set_sm_clock_mhz(mhz);
      mhz = 0;
      if (nvml_->clock && nvml_->clock(dev, kNvmlClockMem, &mhz) == 0)
        gpu->set_memory_clock_mhz(mhz);
    }
  }
  return info;
}

}  // namespace tidelane::worker
