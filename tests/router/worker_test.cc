// The worker's hardware probe reads this machine's CPU and memory, and reports GPUs exactly
// when NVML is there (the test machine has none; the probe must say why, not fail).
#include <gtest/gtest.h>

#include <thread>

#include "router/worker/hardware_probe.h"

using tidelane::worker::HardwareProbe;

TEST(HardwareProbe, ReadsCpuAndMemoryAndExplainsMissingGpus) {
  HardwareProbe probe;
  probe.Sample();
  // Keep a core busy so the second sample sees some work.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  volatile std::uint64_t spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
  const auto info = probe.Sample();
  EXPECT_GT(info.cpu_utilisation(), 0.0);
  EXPECT_LE(info.cpu_utilisation(), 1.0);
  EXPECT_GT(info.memory_total_bytes(), 64ull << 20);
  EXPECT_LE(info.memory_used_bytes(), info.memory_total_bytes());
  const std::string status = probe.GpuStatus();
  ASSERT_FALSE(status.empty());
  if (status.rfind("NVML: ", 0) != 0) {
    EXPECT_EQ(info.gpus_size(), 0) << status;
  }
}
