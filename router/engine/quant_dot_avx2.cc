// FastMatMul's kernels for AVX2 + FMA + F16C (Haswell, Zen 1 and later).
#define TL_TARGET "avx2,fma,f16c"
#define TL_VNNI 0
#define TL_KERNELS Avx2Kernels
#define TL_SUPPORTED                                                  \
  (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && \
   ::tidelane::engine::quant_dot::CpuHasF16C())
#include "router/engine/quant_dot_kernels.inc"
