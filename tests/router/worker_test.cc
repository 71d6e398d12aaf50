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

// The no-driver path on any machine: a library that is not there is reported by name, CPU and
// memory are still read, and there are no GPUs.
TEST(HardwareProbe, SaysWhyWhenNvmlIsMissing) {
  HardwareProbe probe("libnvidia-ml-absent-for-test.so.1");
  EXPECT_FALSE(probe.NvmlLoaded());
  EXPECT_EQ(probe.GpuStatus(), "no NVIDIA driver: libnvidia-ml-absent-for-test.so.1 not found");
  const auto info = probe.Sample();
  EXPECT_EQ(info.gpus_size(), 0);
  EXPECT_GT(info.memory_total_bytes(), 64ull << 20);
  EXPECT_LE(info.memory_used_bytes(), info.memory_total_bytes());
}

#ifdef TIDELANE_FAKE_NVML
// The NVML path against a stand-in library (tests/router/fake_nvml.c) with two GPUs: every
// figure the node panel shows, clocks included, comes through with NVML's units converted.
TEST(HardwareProbe, ReadsEveryGpuFigureThroughNvml) {
  HardwareProbe probe(TIDELANE_FAKE_NVML);
  ASSERT_TRUE(probe.NvmlLoaded()) << probe.GpuStatus();
  EXPECT_EQ(probe.GpuStatus(), "NVML: 2 GPUs");
  const auto info = probe.Sample();
  ASSERT_EQ(info.gpus_size(), 2);
  const auto& g = info.gpus(1);
  EXPECT_EQ(g.name(), "Fake GPU");
  EXPECT_DOUBLE_EQ(g.utilisation(), 0.5);
  EXPECT_EQ(g.memory_total_bytes(), 24ull << 30);
  EXPECT_EQ(g.memory_used_bytes(), 6ull << 30);
  EXPECT_DOUBLE_EQ(g.temperature_c(), 65);
  EXPECT_DOUBLE_EQ(g.power_w(), 215.6);
  EXPECT_EQ(g.sm_clock_mhz(), 1755u);
  EXPECT_EQ(g.memory_clock_mhz(), 9501u);
  EXPECT_DOUBLE_EQ(info.gpus(0).utilisation(), 0.4);
}
#endif
