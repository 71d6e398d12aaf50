// vnni_broadcast_bench: how fast this core runs 512-bit vpdpbusd when one operand is 4 bytes
// broadcast to every lane, as the interleaved Q4_K kernels need (quant_dot_kernels.inc,
// Q4_KX16Kernel): the broadcast as an instruction of its own (vpbroadcastd, what GCC 12 emits
// for _mm512_set1_epi32 of a load) or folded into vpdpbusd's memory operand ({1to16}, what the
// kernels write by hand), and 16 independent accumulator chains against 8. Each pattern: 8
// steps of one 64-byte load and 8 vpdpbusd, from L1; 16 chains alternate two sets of 8
// accumulators between steps, 8 chains use one. Prints G vpdpbusd/s per pattern (best of 3,
// the first a warm-up in effect: a cold first pattern ran at half speed) and the clock from a
// chain of dependent imuls (latency 3).
// Not a test: x86-64 with AVX512-VNNI only (exits with a message elsewhere). Figures in
// docs/benchmarks/engine.md.
// Usage: vnni_broadcast_bench
#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

// One vpdpbusd into zmm`acc` with the 4 bytes at w + off broadcast (GAS evaluates off).
#define TL_FOLDED(acc, off) "vpdpbusd " #off "(%1)%{1to16%}, %%zmm31, %%zmm" #acc "\n\t"
#define TL_SEPARATE(acc, off) \
  "vpbroadcastd " #off "(%1), %%zmm30\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm" #acc "\n\t"
// Step s: the activations' 64 bytes, then 8 accumulators a0..a7 (rows 0-7: w + 32s + 4r).
#define TL_STEP(P, s, a0, a1, a2, a3, a4, a5, a6, a7)                                             \
  "vmovdqa64 64*" #s "(%0), %%zmm31\n\t" P(a0, 32 * s + 0) P(a1, 32 * s + 4) P(a2, 32 * s + 8) P( \
      a3, 32 * s + 12) P(a4, 32 * s + 16) P(a5, 32 * s + 20) P(a6, 32 * s + 24) P(a7, 32 * s + 28)
#define TL_EVEN(P, s) TL_STEP(P, s, 0, 1, 2, 3, 4, 5, 6, 7)
#define TL_ODD(P, s) TL_STEP(P, s, 8, 9, 10, 11, 12, 13, 14, 15)
// 8 steps, alternating accumulators 0-7 and 8-15 (16 chains), or 0-7 only (8 chains).
#define TL_RUN(P) \
  TL_EVEN(P, 0)   \
  TL_ODD(P, 1) TL_EVEN(P, 2) TL_ODD(P, 3) TL_EVEN(P, 4) TL_ODD(P, 5) TL_EVEN(P, 6) TL_ODD(P, 7)
#define TL_RUN8(P)                                                                    \
  TL_EVEN(P, 0)                                                                       \
  TL_EVEN(P, 1) TL_EVEN(P, 2) TL_EVEN(P, 3) TL_EVEN(P, 4) TL_EVEN(P, 5) TL_EVEN(P, 6) \
      TL_EVEN(P, 7)

using Clock = std::chrono::steady_clock;

template <typename F>
double PerSecond(F body, double per_call) {
  constexpr long kCalls = 4'000'000;
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    for (long i = 0; i < kCalls; ++i) body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return kCalls * per_call / best;
}

#define TL_ZMM_CLOBBERS                                                                     \
  "memory", "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", \
      "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm30", "zmm31"

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) void Separate(
    const std::uint8_t* x, const std::uint8_t* w) {
  asm volatile(TL_RUN(TL_SEPARATE)::"r"(x), "r"(w) : TL_ZMM_CLOBBERS);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) void Folded(
    const std::uint8_t* x, const std::uint8_t* w) {
  asm volatile(TL_RUN(TL_FOLDED)::"r"(x), "r"(w) : TL_ZMM_CLOBBERS);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) void Folded8Chains(
    const std::uint8_t* x, const std::uint8_t* w) {
  asm volatile(TL_RUN8(TL_FOLDED)::"r"(x), "r"(w) : TL_ZMM_CLOBBERS);
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) {
    std::fputs("vnni_broadcast_bench: this CPU lacks AVX512-VNNI\n", stderr);
    return 1;
  }
  alignas(64) static std::uint8_t x[512] = {1}, w[512] = {2};
  long chain = 3;
  const double ghz =
      PerSecond(
          [&] {
            asm volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(chain));
          },
          12) /
      1e9;
  const double separate = PerSecond([&] { Separate(x, w); }, 64);
  const double folded = PerSecond([&] { Folded(x, w); }, 64);
  const double chains8 = PerSecond([&] { Folded8Chains(x, w); }, 64);
  std::printf(
      "{\"kind\":\"vnni_broadcast\",\"clock_ghz\":%.2f,\"g_per_s\":{\"separate_16_chains\":%.2f,"
      "\"folded_16_chains\":%.2f,\"folded_8_chains\":%.2f},\"per_cycle\":{\"separate_16_chains\":"
      "%.2f,\"folded_16_chains\":%.2f,\"folded_8_chains\":%.2f}}\n",
      ghz, separate / 1e9, folded / 1e9, chains8 / 1e9, separate / 1e9 / ghz, folded / 1e9 / ghz,
      chains8 / 1e9 / ghz);
  return 0;
}
