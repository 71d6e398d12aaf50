#include "router/engine/kernels.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "router/engine/ggml_blocks.h"
#include "router/engine/quant_dot.h"
#include "router/engine/thread_pool.h"

// Runtime dispatch: the loader resolves each clone once (an ifunc), by the CPU's features.
// Not under ThreadSanitizer: ifunc resolvers run during relocation, before its runtime is up,
// and crash there; the baseline clone is enough to look for races.
#if defined(__SANITIZE_THREAD__)
#define TIDELANE_SIMD_CLONES
#else
#define TIDELANE_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

namespace tidelane::engine {

TIDELANE_SIMD_CLONES float Dot(const float* a, const float* b, std::size_t n) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::size_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

TIDELANE_SIMD_CLONES void Axpy(float a, const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

TIDELANE_SIMD_CLONES void RmsNorm(const float* x, const float* weight, float eps, float* out,
                                  std::size_t n) {
  float ss = 0;
#pragma omp simd reduction(+ : ss)
  for (std::size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// ---- Attention. Plain loops over one KV block for any CPU and head size; AVX2 + FMA versions
// (picked once at run time) for head sizes that are a multiple of 8. The plain dot product over
// a head is one chain of dependent FMAs (a head of 64 is 8 ymm FMAs at 4 cycles each, then a
// horizontal sum), which made the keys the largest part of a decode step after a long prompt;
// the AVX2 kernels run 8 positions' chains side by side and sum them in one transpose. Each
// kernel comes for an F32 and an F16 cache (a template over the element type): an F16 element
// is widened by F16C as it is loaded (Load8), then meets the same FMAs in the same order.

namespace {

TIDELANE_SIMD_CLONES void AttendKeysPlain(const float* __restrict q, std::size_t group,
                                          std::size_t head_dim, const float* __restrict k,
                                          std::size_t stride, std::size_t n, float scale,
                                          float* __restrict scores, std::size_t scores_stride) {
  for (std::size_t g = 0; g < group; ++g) {
    const float* qg = q + g * head_dim;
    float* sg = scores + g * scores_stride;
    for (std::size_t t = 0; t < n; ++t) {
      const float* kt = k + t * stride;
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (std::size_t i = 0; i < head_dim; ++i) sum += qg[i] * kt[i];
      sg[t] = sum * scale;
    }
  }
}

TIDELANE_SIMD_CLONES void AttendValuesPlain(const float* __restrict p, std::size_t group,
                                            std::size_t head_dim, const float* __restrict v,
                                            std::size_t stride, std::size_t n, std::size_t p_stride,
                                            float* __restrict out) {
  for (std::size_t g = 0; g < group; ++g) {
    const float* pg = p + g * p_stride;
    float* og = out + g * head_dim;
    for (std::size_t t = 0; t < n; ++t) {
      const float w = pg[t];
      const float* vt = v + t * stride;
#pragma omp simd
      for (std::size_t i = 0; i < head_dim; ++i) og[i] += w * vt[i];
    }
  }
}

// Argmax reads the row once: the first pass keeps the largest value of each block of kArgmaxBlock
// and remembers the first block that raised the overall largest; only that block is scanned
// again for the first element equal to it. (Scanning the whole row again averages half a row
// more; a single pass tracking indices needs a compare and two blends per vector.)
constexpr std::size_t kArgmaxBlock = 512;

// The first index in [from, n) holding `best` (which is there).
std::size_t FirstEqual(const float* x, std::size_t from, float best) {
  std::size_t i = from;
  while (!(x[i] == best)) ++i;
  return i;
}

// The largest of x[0, n) with NaNs passed over (-inf when there is none): `m < v ? v : m` keeps m
// for a NaN v, the comparison being false.
float BlockMaxPlain(const float* x, std::size_t n) {
  float m = -INFINITY;
  for (std::size_t i = 0; i < n; ++i) m = m < x[i] ? x[i] : m;
  return m;
}

// Argmax over blocks whose maxima BlockMax finds; x[0] is not a NaN.
template <float (*BlockMax)(const float*, std::size_t)>
std::size_t ArgmaxByBlocks(const float* x, std::size_t n) {
  float best = x[0];
  std::size_t best_block = 0;
  for (std::size_t b = 0; b < n; b += kArgmaxBlock) {
    const float m = BlockMax(x + b, std::min(kArgmaxBlock, n - b));
    if (best < m) {
      best = m;
      best_block = b;
    }
  }
  return FirstEqual(x, best_block, best);
}

void SoftmaxPlain(float* x, std::size_t n) {
  const float max = *std::max_element(x, x + n);
  float sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

// F16C for the F16 KV cache's conversions (vcvtph2ps / vcvtps2ph). It changes nothing in the
// float kernels' code; every AVX2 CPU has it, and the F16 kernels are only picked where it is.
#define TIDELANE_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TIDELANE_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline

bool HasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// GCC 12's __builtin_cpu_supports has no "f16c"; CPUID leaf 1 says it in ECX.
bool HasAvx2FmaF16c() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return HasAvx2Fma() && __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
  }();
  return has;
}

// Eight consecutive elements of a cached row, as floats. A half widens exactly (every half is a
// float), so what follows is the float kernels' arithmetic whatever the cache holds.
TIDELANE_AVX2_INLINE __m256 Load8(const float* p) {
  return _mm256_loadu_ps(p);
}
TIDELANE_AVX2_INLINE __m256 Load8(const std::uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Scores of m <= 8 consecutive positions for one query head: lane l of a[j] sums
// q[i]·k_j[i] over i ≡ l (mod 8), in order of i; the 8 lanes are then summed pairwise by the
// hadd transpose below. Every position gets this same order whether it is one of 8 or of a tail.
template <typename T>
TIDELANE_AVX2_INLINE void Keys8(const float* qg, std::size_t head_dim, const T* k,
                                std::size_t stride, std::size_t m, float scale, float* out) {
  __m256 a[8];
  for (auto& x : a) x = _mm256_setzero_ps();
  for (std::size_t c = 0; c < head_dim; c += 8) {
    const __m256 qv = _mm256_loadu_ps(qg + c);
    for (std::size_t j = 0; j < 8; ++j) {
      if (j < m) a[j] = _mm256_fmadd_ps(qv, Load8(k + j * stride + c), a[j]);
    }
  }
  // hadd(a0, a1) = [a0 01, a0 23, a1 01, a1 23 | a0 45, a0 67, a1 45, a1 67]; two more levels
  // give [a0..a3 0123 | a0..a3 4567] and the same for a4..a7; adding the 128-bit halves
  // finishes all eight sums at once.
  const __m256 h01 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 h47 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  const __m256 sums =
      _mm256_add_ps(_mm256_permute2f128_ps(h01, h47, 0x20), _mm256_permute2f128_ps(h01, h47, 0x31));
  alignas(32) float s[8];
  _mm256_store_ps(s, _mm256_mul_ps(sums, _mm256_set1_ps(scale)));
  for (std::size_t j = 0; j < m; ++j) out[j] = s[j];
}

template <typename T>
TIDELANE_AVX2 void AttendKeysAvx2(const float* q, std::size_t group, std::size_t head_dim,
                                  const T* k, std::size_t stride, std::size_t n, float scale,
                                  float* scores, std::size_t scores_stride) {
  for (std::size_t g = 0; g < group; ++g) {
    const float* qg = q + g * head_dim;
    float* sg = scores + g * scores_stride;
    std::size_t t = 0;
    for (; t + 8 <= n; t += 8) Keys8(qg, head_dim, k + t * stride, stride, 8, scale, sg + t);
    if (t < n) Keys8(qg, head_dim, k + t * stride, stride, n - t, scale, sg + t);
  }
}

// out[0, 8J) += Σ_t p[t]·v_t[0, 8J) with 8J floats in registers: J independent FMA chains (the
// plain loop's load-add-store of out per position is a chain through memory).
template <std::size_t J, typename T>
TIDELANE_AVX2_INLINE void Values(const float* pg, const T* v, std::size_t stride, std::size_t n,
                                 float* og) {
  __m256 acc[J];
  for (std::size_t j = 0; j < J; ++j) acc[j] = _mm256_loadu_ps(og + 8 * j);
  for (std::size_t t = 0; t < n; ++t) {
    const __m256 w = _mm256_broadcast_ss(pg + t);
    for (std::size_t j = 0; j < J; ++j)
      acc[j] = _mm256_fmadd_ps(w, Load8(v + t * stride + 8 * j), acc[j]);
  }
  for (std::size_t j = 0; j < J; ++j) _mm256_storeu_ps(og + 8 * j, acc[j]);
}

template <typename T>
TIDELANE_AVX2 void AttendValuesAvx2(const float* p, std::size_t group, std::size_t head_dim,
                                    const T* v, std::size_t stride, std::size_t n,
                                    std::size_t p_stride, float* out) {
  for (std::size_t g = 0; g < group; ++g) {
    const float* pg = p + g * p_stride;
    float* og = out + g * head_dim;
    // The head in slices of 64 floats (8 registers), then what is left in one slice.
    std::size_t c = 0;
    for (; c + 64 <= head_dim; c += 64) Values<8, T>(pg, v + c, stride, n, og + c);
    switch ((head_dim - c) / 8) {
      case 7:
        Values<7, T>(pg, v + c, stride, n, og + c);
        break;
      case 6:
        Values<6, T>(pg, v + c, stride, n, og + c);
        break;
      case 5:
        Values<5, T>(pg, v + c, stride, n, og + c);
        break;
      case 4:
        Values<4, T>(pg, v + c, stride, n, og + c);
        break;
      case 3:
        Values<3, T>(pg, v + c, stride, n, og + c);
        break;
      case 2:
        Values<2, T>(pg, v + c, stride, n, og + c);
        break;
      case 1:
        Values<1, T>(pg, v + c, stride, n, og + c);
        break;
      default:
        break;
    }
  }
}

// e^x, 8 at a time, as Cephes' expf: x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two so
// n·ln2 is exact), e^r by its degree-7 minimax polynomial, 2^n by building the exponent.
// Relative error ~2e-7. Below -87 the result is 0 (e^-87 is 2e-38, nothing next to softmax's
// largest term, 1, or SiLU's 1 + e^-x); above 88 the input is clamped (e^88 is 1.6e38, against
// which SiLU's x / (1 + e^-x) is 0 as with the exact value), so 2^n stays a normal float. A
// NaN input gives 0, not NaN (the engine's scores and activations are finite).
TIDELANE_AVX2_INLINE __m256 Exp(__m256 x) {
  const __m256 in_range = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), in_range);
}

// The mask of the first `left` (< 8) lanes, for maskload/maskstore of a row's last floats.
TIDELANE_AVX2_INLINE __m256i TailMask(std::size_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

TIDELANE_AVX2 void SoftmaxAvx2(float* x, std::size_t n) {
  // Every element, the tail included, goes through the same Exp, so a score's weight does not
  // depend on where it falls in the row.
  const std::size_t full = n / 8 * 8;
  const __m256i tail = TailMask(n - full);
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (std::size_t i = 0; i < full; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
  if (full < n) {
    mx = _mm256_max_ps(
        mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(x + full, tail),
                             _mm256_castsi256_ps(tail)));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const __m256 max = _mm256_broadcastss_ps(m4);
  __m256 sum = _mm256_setzero_ps();
  for (std::size_t i = 0; i < full; i += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), max));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (full < n) {
    const __m256 e = _mm256_and_ps(Exp(_mm256_sub_ps(_mm256_maskload_ps(x + full, tail), max)),
                                   _mm256_castsi256_ps(tail));
    _mm256_maskstore_ps(x + full, tail, e);
    sum = _mm256_add_ps(sum, e);
  }
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  const __m256 inv = _mm256_set1_ps(1.0f / _mm_cvtss_f32(s4));
  for (std::size_t i = 0; i < full; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  if (full < n)
    _mm256_maskstore_ps(x + full, tail, _mm256_mul_ps(_mm256_maskload_ps(x + full, tail), inv));
}

// silu(g) · u = g / (1 + e^-g) · u.
TIDELANE_AVX2_INLINE __m256 SiluMul(__m256 g, __m256 u) {
  const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

// GCC 12 does not vectorise BlockMaxPlain's loop (it keeps maxss in order), so at 32,000 logits
// a row took ~13 µs; with this ~2.5 µs. vmaxps(v, m) returns m where v is a NaN (the second
// operand when unordered), which is the plain loop's rule, and a lane never holds a NaN.
TIDELANE_AVX2 float BlockMaxAvx2(const float* x, std::size_t n) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
    m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
    m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
  }
  m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float m = _mm_cvtss_f32(m4);
  return std::max(m, BlockMaxPlain(x + i, n - i));
}

TIDELANE_AVX2 void SwiGluAvx2(float* gate, const float* up, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(gate + i, SiluMul(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {  // the same Exp for the tail, so an element's result does not depend on n
    const __m256i tail = TailMask(n - i);
    _mm256_maskstore_ps(
        gate + i, tail,
        SiluMul(_mm256_maskload_ps(gate + i, tail), _mm256_maskload_ps(up + i, tail)));
  }
}

TIDELANE_AVX2 void FloatsToHalvesAvx2(const float* src, std::uint16_t* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(dst + i),
        _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i] = FloatToHalf(src[i]);  // the same rounding
}

TIDELANE_AVX2 void HalvesToFloatsAvx2(const std::uint16_t* src, float* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, Load8(src + i));
  for (; i < n; ++i) dst[i] = HalfToFloat(src[i]);
}

// The F16 kernels without F16C, or for head sizes the AVX2 kernels do not take: the n
// positions' head slices are widened into a float buffer (head_dim apart) and the float loops
// run on it, so the results are theirs on the widened values.
const float* WidenHeads(const std::uint16_t* x, std::size_t stride, std::size_t n,
                        std::size_t head_dim) {
  thread_local std::vector<float> wide;
  wide.resize(n * head_dim);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t i = 0; i < head_dim; ++i)
      wide[t * head_dim + i] = HalfToFloat(x[t * stride + i]);
  }
  return wide.data();
}

}  // namespace

void FloatsToHalves(const float* src, std::uint16_t* dst, std::size_t n) {
  if (HasAvx2FmaF16c()) {
    FloatsToHalvesAvx2(src, dst, n);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) dst[i] = FloatToHalf(src[i]);
}

void HalvesToFloats(const std::uint16_t* src, float* dst, std::size_t n) {
  if (HasAvx2FmaF16c()) {
    HalvesToFloatsAvx2(src, dst, n);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) dst[i] = HalfToFloat(src[i]);
}

std::size_t Argmax(const float* x, std::size_t n) {
  if (n == 0 || std::isnan(x[0])) return 0;
  return HasAvx2Fma() ? ArgmaxByBlocks<BlockMaxAvx2>(x, n) : ArgmaxByBlocks<BlockMaxPlain>(x, n);
}

void SwiGlu(float* gate, const float* up, std::size_t n) {
  if (HasAvx2Fma()) {
    SwiGluAvx2(gate, up, n);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void AttendKeys(const float* q, std::size_t group, std::size_t head_dim, const float* k,
                std::size_t stride, std::size_t n, float scale, float* scores,
                std::size_t scores_stride) {
  if (head_dim % 8 == 0 && HasAvx2Fma()) {
    AttendKeysAvx2(q, group, head_dim, k, stride, n, scale, scores, scores_stride);
  } else {
    AttendKeysPlain(q, group, head_dim, k, stride, n, scale, scores, scores_stride);
  }
}

void AttendValues(const float* p, std::size_t group, std::size_t head_dim, const float* v,
                  std::size_t stride, std::size_t n, std::size_t p_stride, float* out) {
  if (head_dim % 8 == 0 && HasAvx2Fma()) {
    AttendValuesAvx2(p, group, head_dim, v, stride, n, p_stride, out);
  } else {
    AttendValuesPlain(p, group, head_dim, v, stride, n, p_stride, out);
  }
}

void AttendKeys(const float* q, std::size_t group, std::size_t head_dim, const std::uint16_t* k,
                std::size_t stride, std::size_t n, float scale, float* scores,
                std::size_t scores_stride) {
  if (head_dim % 8 == 0 && HasAvx2FmaF16c()) {
    AttendKeysAvx2(q, group, head_dim, k, stride, n, scale, scores, scores_stride);
  } else {
    AttendKeysPlain(q, group, head_dim, WidenHeads(k, stride, n, head_dim), head_dim, n, scale,
                    scores, scores_stride);
  }
}

void AttendValues(const float* p, std::size_t group, std::size_t head_dim, const std::uint16_t* v,
                  std::size_t stride, std::size_t n, std::size_t p_stride, float* out) {
  if (head_dim % 8 == 0 && HasAvx2FmaF16c()) {
    AttendValuesAvx2(p, group, head_dim, v, stride, n, p_stride, out);
  } else {
    AttendValuesPlain(p, group, head_dim, WidenHeads(v, stride, n, head_dim), head_dim, n, p_stride,
                      out);
  }
}

void Softmax(float* x, std::size_t n) {
  if (n > 0 && HasAvx2Fma()) {
    SoftmaxAvx2(x, n);
  } else {
    SoftmaxPlain(x, n);
  }
}

namespace {

// Row r (of 16) of a BlockQ4_Kx16 as the row's own BlockQ4_K.
void UninterleaveQ4K(const BlockQ4_Kx16& g, int r, BlockQ4_K* out) {
  out->d = g.d[r];
  out->dmin = g.dmin[r];
  for (int k = 0; k < 12; ++k) out->scales[k] = g.scales[k][r];
  for (std::size_t c = 0; c < 32; ++c) std::memcpy(out->qs + 4 * c, g.qs[c][r], 4);
}

}  // namespace

void CopyRows(const Matrix& w, std::size_t first, std::size_t count, std::uint8_t* dst) {
  const std::size_t row_bytes = RowBytes(w.type, w.cols);
  if (w.layout == MatrixLayout::kRows) {
    std::memcpy(dst, w.Row(first), count * row_bytes);
    return;
  }
  const std::size_t nb = w.cols / 256;
  auto* out = reinterpret_cast<BlockQ4_K*>(dst);
  for (std::size_t r = first; r < first + count; ++r) {
    const auto* group = reinterpret_cast<const BlockQ4_Kx16*>(w.data + r / 16 * 16 * row_bytes);
    for (std::size_t i = 0; i < nb; ++i) UninterleaveQ4K(group[i], static_cast<int>(r % 16), out++);
  }
}

void DequantizeMatrixRow(const Matrix& w, std::size_t r, float* dst) {
  if (w.layout == MatrixLayout::kRows) {
    DequantizeRow(w.type, w.Row(r), dst, w.cols);
    return;
  }
  // One block at a time: no buffer the size of a row.
  const auto* group =
      reinterpret_cast<const BlockQ4_Kx16*>(w.data + r / 16 * 16 * RowBytes(w.type, w.cols));
  for (std::size_t i = 0; i < w.cols / 256; ++i) {
    BlockQ4_K b;
    UninterleaveQ4K(group[i], static_cast<int>(r % 16), &b);
    DequantizeRow(w.type, &b, dst + 256 * i, 256);
  }
}

void InterleaveQ4KRows16(std::uint8_t* data, std::size_t rows, std::size_t cols) {
  const std::size_t nb = cols / 256, group_bytes = 16 * nb * sizeof(BlockQ4_K);
  std::vector<BlockQ4_K> rows16(16 * nb);
  for (std::size_t g = 0; g < rows / 16; ++g) {
    std::uint8_t* at = data + g * group_bytes;
    std::memcpy(rows16.data(), at, group_bytes);
    auto* out = reinterpret_cast<BlockQ4_Kx16*>(at);
    for (std::size_t i = 0; i < nb; ++i) {
      for (int r = 0; r < 16; ++r) {
        const BlockQ4_K& b = rows16[r * nb + i];
        out[i].d[r] = b.d;
        out[i].dmin[r] = b.dmin;
        for (int k = 0; k < 12; ++k) out[i].scales[k][r] = b.scales[k];
        for (std::size_t c = 0; c < 32; ++c) std::memcpy(out[i].qs[c][r], b.qs + 4 * c, 4);
      }
    }
  }
}

void MatMuls(std::span<const Matrix* const> ws, const float* x, std::size_t batch,
             std::span<float* const> ys, ThreadPool& pool) {
  if (FastMatMuls(ws, x, batch, ys, pool)) return;
  for (std::size_t i = 0; i < ws.size() && i < ys.size(); ++i)
    MatMul(*ws[i], x, batch, ys[i], pool);
}

void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y, ThreadPool& pool) {
  // Quantised-activation integer kernels where the type has them (quant_dot.h); else below.
  if (FastMatMul(w, x, batch, y, pool)) return;
  const std::size_t n = w.cols;
  pool.ParallelFor(w.rows, [&](std::size_t begin, std::size_t end, int) {
    thread_local std::vector<float> row;
    if (w.type != TensorType::kF32) row.resize(n);
    for (std::size_t r = begin; r < end; ++r) {
      const float* wr;
      if (w.type == TensorType::kF32) {
        wr = reinterpret_cast<const float*>(w.Row(r));
      } else {
        DequantizeMatrixRow(w, r, row.data());
        wr = row.data();
      }
      for (std::size_t b = 0; b < batch; ++b) y[b * w.rows + r] = Dot(wr, x + b * n, n);
    }
  });
}

}  // namespace tidelane::engine
