// A stand-in for libnvidia-ml.so.1 with two fixed GPUs, so the probe's NVML path (dlopen,
// symbol lookup, every figure including clocks) is exercised on machines without a GPU.
// Signatures follow nvml.h (NVML API v2); every call returns NVML_SUCCESS (0).
#include <cstring>

extern "C" {

struct utilization_t {
  unsigned int gpu, memory;
};
struct memory_t {
  unsigned long long total, free, used;
};

static int devices[2];

int nvmlInit_v2(void) {
  return 0;
}
int nvmlShutdown(void) {
  return 0;
}
int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void** dev) {
  if (i >= 2) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *dev = &devices[i];
  return 0;
}
static unsigned int index_of(void* dev) {
  return static_cast<unsigned int>(static_cast<int*>(dev) - devices);
}
int nvmlDeviceGetName(void* dev, char* name, unsigned int length) {
  (void)dev;
  std::strncpy(name, "Fake GPU", length - 1);
  return 0;
}
int nvmlDeviceGetUtilizationRates(void* dev, utilization_t* u) {
  u->gpu = 40 + 10 * index_of(dev);
  u->memory = 20;
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* dev, memory_t* m) {
  (void)dev;
  m->total = 24ull << 30;
  m->used = 6ull << 30;
  m->free = m->total - m->used;
  return 0;
}
int nvmlDeviceGetTemperature(void* dev, int sensor, unsigned int* c) {
  (void)dev;
  *c = sensor == 0 ? 65 : 0;
  return 0;
}
int nvmlDeviceGetPowerUsage(void* dev, unsigned int* mw) {
  (void)dev;
  *mw = 215600;
  return 0;
}
int nvmlDeviceGetClockInfo(void* dev, int type, unsigned int* mhz) {
  (void)dev;
  if (type == 1)
    *mhz = 1755;  // NVML_CLOCK_SM
  else if (type == 2)
    *mhz = 9501;  // NVML_CLOCK_MEM
  else
    return 2;
  return 0;
}

}  // extern "C"
