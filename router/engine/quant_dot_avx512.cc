// FastMatMul's kernels with AVX512-VNNI integer dot products (Ice Lake, Zen 4 and later): the
// AVX2 kernels with maddubs + madd + add fused where VNNI allows, on 256-bit registers, and the
// K-quants (Q4_K, Q5_K) on 512-bit ones, which needs AVX512-BW for the byte and word operations.
// Zen 4 runs a 512-bit instruction as two 256-bit halves, so that saves instructions (decode,
// dispatch), not multiplier time.
#define TL_TARGET "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni"
#define TL_VNNI 1
#define TL_ZMM 1
#define TL_KERNELS Avx512VnniKernels
#define TL_SUPPORTED                                                                    \
  (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&                   \
   ::tidelane::engine::quant_dot::CpuHasF16C() && __builtin_cpu_supports("avx512vl") && \
   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
// GCC 12's 512-bit intrinsics (_mm512_broadcast_i64x4, _mm512_inserti64x4, ...) start from
// _mm512_undefined_epi32() and, once inlined at -O3, draw false -Wmaybe-uninitialized warnings;
// the pragma comes before immintrin.h so it covers them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "router/engine/quant_dot_kernels.inc"
