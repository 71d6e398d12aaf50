// FastMatMul's kernels with AVX512-VNNI integer dot products on 256-bit registers (Ice Lake,
// Zen 4 and later): the AVX2 kernels with maddubs + madd + add fused where VNNI allows.
#define TL_TARGET "avx2,fma,f16c,avx512f,avx512vl,avx512vnni"
#define TL_VNNI 1
#define TL_KERNELS Avx512VnniKernels
#define TL_SUPPORTED                                                                    \
  (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&                   \
   ::tidelane::engine::quant_dot::CpuHasF16C() && __builtin_cpu_supports("avx512vl") && \
   __builtin_cpu_supports("avx512vnni"))
#include "router/engine/quant_dot_kernels.inc"
