#include "router/engine/quant_dot.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "router/engine/quant_dot_internal.h"
#include "router/engine/thread_pool.h"

namespace tidelane::engine {
namespace quant_dot {

void QuantizeQ8Scalar(const float* x, void* out, std::size_t n) {
  auto* b = static_cast<ActQ8*>(out);
  for (std::size_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = d;
    for (int j = 0; j < 32; ++j) {
      b[i].qs[j] = static_cast<std::int8_t>(std::clamp(std::nearbyint(x[j] * id), -127.0f, 127.0f));
    }
  }
}

void QuantizeQ8_1Scalar(const float* x, void* out, std::size_t n) {
  auto* b = static_cast<ActQ8_1*>(out);
  for (std::size_t i = 0; i < n / 32; ++i, x += 32) {
    ActQ8 q;
    QuantizeQ8Scalar(x, &q, 32);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += q.qs[j];
    b[i].d = q.d;
    b[i].s = static_cast<float>(sum);
    std::memcpy(b[i].qs, q.qs, 32);
  }
}

void QuantizeQ8KScalar(const float* x, void* out, std::size_t n) {
  auto* b = static_cast<ActQ8K*>(out);
  for (std::size_t i = 0; i < n / 256; ++i, x += 256) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = d;
    for (int j = 0; j < 256; ++j) {
      b[i].qs[j] = static_cast<std::int8_t>(std::clamp(std::nearbyint(x[j] * id), -127.0f, 127.0f));
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b[i].qs[g * 16 + j];
      b[i].bsums[g] = static_cast<std::int16_t>(sum);
    }
  }
}

namespace {

// Scalar kernels: one weight row against one activation vector at a time. The integer sums
// are the SIMD kernels' exactly; the float scaling is one scalar accumulator per row·vector.

float DotQ8_0(const std::uint8_t* row, const ActQ8* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ8_0*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += w[i].qs[j] * a[i].qs[j];
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sum);
  }
  return acc;
}

// The 32 quants of a Q4/Q5 block, less `offset`, against the activations' 32: element j < 16 is
// the low nibble of qs[j], element j + 16 its high nibble; Q5's fifth bit of element j is bit j
// of the 32-bit qh (little-endian, as DequantQ5_0 reads it). Q4_0 is value = d·(q − 8), Q4_1
// d·q + m, Q5_0 d·(q − 16), Q5_1 d·q + m.
int NibbleSum(const std::uint8_t* qs, std::uint32_t qh, const std::int8_t* a, int offset) {
  int sum = 0;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
    sum += (((qs[j] & 0xF) | h0) - offset) * a[j];
    sum += (((qs[j] >> 4) | h1) - offset) * a[j + 16];
  }
  return sum;
}

std::uint32_t HighBits(const std::uint8_t* qh) {
  std::uint32_t h;
  std::memcpy(&h, qh, 4);
  return h;
}

float DotQ4_0(const std::uint8_t* row, const ActQ8* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ4_0*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    const int sum = NibbleSum(w[i].qs, 0, a[i].qs, 8);
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sum);
  }
  return acc;
}

// Q4_1 and Q5_1: the min m meets the activation block's sum s.
float DotQ4_1(const std::uint8_t* row, const ActQ8_1* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ4_1*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    const int sum = NibbleSum(w[i].qs, 0, a[i].qs, 0);
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sum) +
           HalfToFloat(w[i].m) * a[i].d * a[i].s;
  }
  return acc;
}

float DotQ5_0(const std::uint8_t* row, const ActQ8* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ5_0*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    const int sum = NibbleSum(w[i].qs, HighBits(w[i].qh), a[i].qs, 16);
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sum);
  }
  return acc;
}

float DotQ5_1(const std::uint8_t* row, const ActQ8_1* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ5_1*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    const int sum = NibbleSum(w[i].qs, HighBits(w[i].qh), a[i].qs, 0);
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sum) +
           HalfToFloat(w[i].m) * a[i].d * a[i].s;
  }
  return acc;
}

// Q4_K / Q5_K: value = d·sc_j·q − dmin·m_j per sub-block j of 32, so the dot is
// d·Σ_j sc_j·(q·a)_j − dmin·Σ_j m_j·(Σa)_j, the second sum from the activation's bsums.
float DotQ4_K(const std::uint8_t* row, const ActQ8K* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ4_K*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* q4 = w[i].qs;
    const std::int8_t* q8 = a[i].qs;
    const std::int16_t* bs = a[i].bsums;
    int sumi = 0, summ = 0;
    for (int j = 0; j < 4; ++j, q4 += 32, q8 += 64, bs += 4) {
      std::uint8_t sc0, m0, sc1, m1;
      ScaleMinK4(2 * j, w[i].scales, &sc0, &m0);
      ScaleMinK4(2 * j + 1, w[i].scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q4[l] & 0xF) * q8[l];
        s1 += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
    }
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sumi);
    acc -= HalfToFloat(w[i].dmin) * a[i].d * static_cast<float>(summ);
  }
  return acc;
}

float DotQ5_K(const std::uint8_t* row, const ActQ8K* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ5_K*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* ql = w[i].qs;
    const std::int8_t* q8 = a[i].qs;
    const std::int16_t* bs = a[i].bsums;
    int sumi = 0, summ = 0;
    for (int j = 0; j < 4; ++j, ql += 32, q8 += 64, bs += 4) {
      std::uint8_t sc0, m0, sc1, m1;
      ScaleMinK4(2 * j, w[i].scales, &sc0, &m0);
      ScaleMinK4(2 * j + 1, w[i].scales, &sc1, &m1);
      const int u0 = 1 << (2 * j), u1 = 2 << (2 * j);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += ((ql[l] & 0xF) + ((w[i].qh[l] & u0) ? 16 : 0)) * q8[l];
        s1 += ((ql[l] >> 4) + ((w[i].qh[l] & u1) ? 16 : 0)) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
    }
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sumi);
    acc -= HalfToFloat(w[i].dmin) * a[i].d * static_cast<float>(summ);
  }
  return acc;
}

// Q6_K: value = d·sc_k·(q − 32) per sub-block k of 16, q in [0, 64). The −32 is taken out once
// per block as 32·Σ_k sc_k·(Σa)_k.
float DotQ6_K(const std::uint8_t* row, const ActQ8K* a, std::size_t nb) {
  const auto* w = reinterpret_cast<const BlockQ6_K*>(row);
  float acc = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    int sumi = 0;
    for (std::size_t n = 0; n < 2; ++n) {
      const std::uint8_t* ql = w[i].ql + 64 * n;
      const std::uint8_t* qh = w[i].qh + 32 * n;
      const std::int8_t* sc = w[i].scales + 8 * n;
      const std::int8_t* q8 = a[i].qs + 128 * n;
      int s[8] = {};
      for (int is = 0; is < 2; ++is) {  // sub-blocks of 16; fixed bounds let the loop vectorise
        int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int l = 16 * is; l < 16 * is + 16; ++l) {
          s0 += ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) * q8[l];
          s1 += ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) * q8[l + 32];
          s2 += ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) * q8[l + 64];
          s3 += ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) * q8[l + 96];
        }
        s[is] = s0, s[is + 2] = s1, s[is + 4] = s2, s[is + 6] = s3;
      }
      for (int k = 0; k < 8; ++k) sumi += sc[k] * s[k];
    }
    int bias = 0;
    for (int k = 0; k < 16; ++k) bias += w[i].scales[k] * a[i].bsums[k];
    sumi -= 32 * bias;
    acc += HalfToFloat(w[i].d) * a[i].d * static_cast<float>(sumi);
  }
  return acc;
}

template <typename Act, float (*Dot)(const std::uint8_t*, const Act*, std::size_t),
          std::size_t kBlock>
void ScalarRows(const RowJob& job, std::size_t begin, std::size_t end) {
  const Matrix& w = *job.w;
  const std::size_t nb = w.cols / kBlock;
  for (std::size_t r = begin; r < end; ++r) {
    for (std::size_t v = 0; v < job.batch; ++v) {
      const auto* a = reinterpret_cast<const Act*>(job.act + v * job.act_stride);
      job.y[v * job.y_stride + r] = Dot(w.Row(r), a, nb);
    }
  }
}

}  // namespace

const KernelSet& ScalarKernels() {
  // F32 and F16 have no scalar fast path: the caller's float loop (compiled per ISA) is it.
  static const KernelSet set = {
      .quantize_q8 = QuantizeQ8Scalar,
      .quantize_q8_1 = QuantizeQ8_1Scalar,
      .quantize_q8k = QuantizeQ8KScalar,
      .q8_0 = ScalarRows<ActQ8, DotQ8_0, 32>,
      .q4_0 = ScalarRows<ActQ8, DotQ4_0, 32>,
      .q4_1 = ScalarRows<ActQ8_1, DotQ4_1, 32>,
      .q5_0 = ScalarRows<ActQ8, DotQ5_0, 32>,
      .q5_1 = ScalarRows<ActQ8_1, DotQ5_1, 32>,
      .q4_k = ScalarRows<ActQ8K, DotQ4_K, 256>,
      .q5_k = ScalarRows<ActQ8K, DotQ5_K, 256>,
      .q6_k = ScalarRows<ActQ8K, DotQ6_K, 256>,
  };
  return set;
}

}  // namespace quant_dot

namespace {

using quant_dot::ActFormat;
using quant_dot::KernelSet;

std::atomic<const KernelSet*> g_active{nullptr};

const KernelSet& Active() {
  const KernelSet* k = g_active.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = quant_dot::Avx512VnniKernels();
    if (k == nullptr) k = quant_dot::Avx2Kernels();
    if (k == nullptr) k = &quant_dot::ScalarKernels();
    g_active.store(k, std::memory_order_release);
  }
  return *k;
}

// Below this many multiply-adds a product runs on the calling thread: waking the pool costs
// more than it saves.
constexpr std::size_t kMinParallelWork = 1 << 16;
// Below this many elements the activations are quantised on the calling thread. Lower than
// kMinParallelWork, which counts multiply-adds: quantising costs ~0.5 ns an element (AVX-512),
// so 8,192 are ~4 µs against ~1 µs for handing the pool a loop. At batch 16 on a 768-wide model
// (12,288 elements) the quantisation was otherwise serial: ~2.8% of a 2-thread decode step.
constexpr std::size_t kMinParallelQuantize = 1 << 13;

// The first batch / 16 groups of 16 quantised vectors at `act` (`stride` bytes apart, `nb`
// blocks each) transposed by `transpose` into Lanes blocks, for a lanes kernel. The buffer is
// the calling thread's, one per layout, reused by its next product.
template <typename Lanes>
const std::uint8_t* InLanes(quant_dot::LanesFn transpose, const std::uint8_t* act,
                            std::size_t stride, std::size_t batch, std::size_t nb) {
  thread_local std::vector<Lanes> lanes;
  constexpr std::size_t kGroup = Lanes::kVectors;
  const std::size_t groups = batch / kGroup;
  lanes.resize(groups * nb);
  for (std::size_t g = 0; g < groups; ++g)
    transpose(act + g * kGroup * stride, stride, nb, &lanes[g * nb]);
  return reinterpret_cast<const std::uint8_t*>(lanes.data());
}

// Rows [begin, end) (multiples of 16) of a MatrixLayout::kQ4KRows16 matrix through a kernel for
// the file's row layout (the AVX2 and scalar kernels, which only tests choose on a CPU whose
// kernels interleaved the matrix): the rows are put back in that layout in the calling thread's
// buffer, ~96 KiB at a time (whole row blocks for the kernels' own blocking). Slow (4-byte
// copies: ~7 ms per pass over bench100m's 56 MB), but correct.
// Each (row, vector) pair gets the kernel's operations whatever rows surround it, so the
// results are those of the matrix in the file's layout.
void InFileLayout(quant_dot::RowKernel kernel, const quant_dot::RowJob& job, std::size_t begin,
                  std::size_t end) {
  thread_local std::vector<std::uint8_t> rows;
  const Matrix& w = *job.w;
  const std::size_t row_bytes = RowBytes(w.type, w.cols);
  const std::size_t step = std::max<std::size_t>(16, std::size_t{96} * 1024 / row_bytes / 16 * 16);
  rows.resize(std::min(step, end - begin) * row_bytes);
  for (std::size_t r0 = begin; r0 < end; r0 += step) {
    const std::size_t n = std::min(step, end - r0);
    CopyRows(w, r0, n, rows.data());
    // The buffer's n rows as a matrix of their own, whose row r is row r0 + r: its outputs go
    // to y moved on by r0, with the whole product's stride between vectors.
    const Matrix part{w.type, rows.data(), n, w.cols};
    quant_dot::RowJob sub = job;
    sub.w = &part;
    sub.y += r0;
    kernel(sub, 0, n);
  }
}

}  // namespace

FastMatMulIsa ActiveFastMatMulIsa() {
  const KernelSet* k = &Active();
  if (k == quant_dot::Avx512VnniKernels()) return FastMatMulIsa::kAvx512Vnni;
  if (k == quant_dot::Avx2Kernels()) return FastMatMulIsa::kAvx2;
  return FastMatMulIsa::kScalar;
}

FastMatMulIsa SetFastMatMulIsaForTesting(FastMatMulIsa isa) {
  const KernelSet* k = nullptr;
  if (isa == FastMatMulIsa::kAvx512Vnni) k = quant_dot::Avx512VnniKernels();
  if (isa == FastMatMulIsa::kAvx2) k = quant_dot::Avx2Kernels();
  g_active.store(k != nullptr ? k : &quant_dot::ScalarKernels(), std::memory_order_release);
  return ActiveFastMatMulIsa();
}

bool FastMatMul(const Matrix& w, const float* x, std::size_t batch, float* y, ThreadPool& pool) {
  const Matrix* const ws[] = {&w};
  float* const ys[] = {y};
  return FastMatMuls(ws, x, batch, ys, pool);
}

bool FastMatMuls(std::span<const Matrix* const> ws, const float* x, std::size_t batch,
                 std::span<float* const> ys, ThreadPool& pool) {
  if (ws.empty() || ws.size() != ys.size()) return false;
  const Matrix& w = *ws[0];
  for (const Matrix* m : ws) {
    if (m->type != w.type || m->layout != w.layout || m->cols != w.cols) return false;
  }
  const KernelSet& k = Active();
  quant_dot::RowKernel kernel = nullptr;
  ActFormat format = ActFormat::kFloat;
  switch (w.type) {
    case TensorType::kF32:
      kernel = k.f32;
      break;
    case TensorType::kF16:
      kernel = k.f16;
      break;
    case TensorType::kQ8_0:
      kernel = k.q8_0, format = ActFormat::kQ8;
      break;
    case TensorType::kQ4_0:
      kernel = k.q4_0, format = ActFormat::kQ8;
      break;
    case TensorType::kQ4_1:
      kernel = k.q4_1, format = ActFormat::kQ8_1;
      break;
    case TensorType::kQ5_0:
      kernel = k.q5_0, format = ActFormat::kQ8;
      break;
    case TensorType::kQ5_1:
      kernel = k.q5_1, format = ActFormat::kQ8_1;
      break;
    case TensorType::kQ4_K:
      kernel = k.q4_k, format = ActFormat::kQ8K;
      break;
    case TensorType::kQ5_K:
      kernel = k.q5_k, format = ActFormat::kQ8K;
      break;
    case TensorType::kQ6_K:
      kernel = k.q6_k, format = ActFormat::kQ8K;
      break;
    default:
      break;
  }
  const std::size_t block = format == ActFormat::kQ8K ? 256 : format == ActFormat::kFloat ? 1 : 32;
  if (kernel == nullptr || w.cols % block != 0) return false;
  // At most a layer's q, k and v (or gate and up) at once: no allocation for the jobs.
  constexpr std::size_t kMaxMatrices = 4;
  if (ws.size() > kMaxMatrices) {
    for (std::size_t i = 0; i < ws.size(); ++i) {
      FastMatMuls(ws.subspan(i, 1), x, batch, ys.subspan(i, 1), pool);  // has a kernel: runs
    }
    return true;
  }
  std::size_t total_rows = 0;
  for (const Matrix* m : ws) total_rows += m->rows;
  if (total_rows == 0 || batch == 0) return true;

  // What every matrix's job shares: the activations (quantised once for all of them) and the
  // lanes blocks; each job then gets its matrix and output.
  quant_dot::RowJob job{
      &w, reinterpret_cast<const std::uint8_t*>(x), w.cols * sizeof(float), batch, nullptr, w.rows};
  // Interleaved Q4_K (kernels.h) with this instruction set's own kernels (AVX512): q4_k_x16
  // takes every vector. Without them the rows go back to the file's layout for the row kernels
  // (InFileLayout).
  const bool rows16 = w.layout == MatrixLayout::kQ4KRows16;
  const bool x16 = rows16 && k.q4_k_x16 != nullptr;
  const std::size_t work = total_rows * w.cols * batch;
  if (format != ActFormat::kFloat) {
    // Each vector is quantised once for the whole matrix; the buffer lives on the calling
    // thread and grows to the largest batch seen.
    struct alignas(64) Line {
      std::uint8_t bytes[64];
    };
    thread_local std::vector<Line> buffer;
    const std::size_t block_bytes = format == ActFormat::kQ8     ? sizeof(quant_dot::ActQ8)
                                    : format == ActFormat::kQ8_1 ? sizeof(quant_dot::ActQ8_1)
                                                                 : sizeof(quant_dot::ActQ8K);
    const quant_dot::QuantizeFn quantize = format == ActFormat::kQ8     ? k.quantize_q8
                                           : format == ActFormat::kQ8_1 ? k.quantize_q8_1
                                                                        : k.quantize_q8k;
    job.act_stride = w.cols / block * block_bytes;
    buffer.resize((batch * job.act_stride + sizeof(Line) - 1) / sizeof(Line));
    auto* out = reinterpret_cast<std::uint8_t*>(buffer.data());
    auto run = [&](std::size_t begin, std::size_t end, int) {
      for (std::size_t v = begin; v < end; ++v)
        quantize(x + v * w.cols, out + v * job.act_stride, w.cols);
    };
    if (batch * w.cols >= kMinParallelQuantize && batch > 1) {
      pool.ParallelFor(batch, run);
    } else {
      run(0, batch, 0);
    }
    job.act = out;
    // K-quants at batch 16 and above: the groups of 16 vectors again, transposed for the
    // lanes kernels (4.9 KB per block and group, a few µs per call); Q8_0 likewise (1 KB).
    // Interleaved Q4_K has no lanes kernel: q4_k_x16 takes every vector.
    if (k.lanes_q8k != nullptr && batch >= quant_dot::ActQ8KLanes::kVectors && !x16 &&
        (w.type == TensorType::kQ4_K || w.type == TensorType::kQ5_K ||
         w.type == TensorType::kQ6_K)) {
      job.lanes =
          InLanes<quant_dot::ActQ8KLanes>(k.lanes_q8k, out, job.act_stride, batch, w.cols / 256);
    }
    if (x16 && k.pairs_q8k != nullptr && batch >= quant_dot::ActQ8KPairs::kVectors) {
      job.lanes =
          InLanes<quant_dot::ActQ8KPairs>(k.pairs_q8k, out, job.act_stride, batch, w.cols / 256);
    }
    if (k.lanes_q8 != nullptr && batch >= quant_dot::ActQ8Lanes::kVectors &&
        w.type == TensorType::kQ8_0) {
      job.lanes =
          InLanes<quant_dot::ActQ8Lanes>(k.lanes_q8, out, job.act_stride, batch, w.cols / 32);
    }
  }
  quant_dot::RowJob jobs[kMaxMatrices];
  for (std::size_t i = 0; i < ws.size(); ++i) {
    jobs[i] = job;
    jobs[i].w = ws[i];
    jobs[i].y = ys[i];
    jobs[i].y_stride = ws[i]->rows;
  }
  auto run = [&](std::size_t i, std::size_t begin, std::size_t end) {
    if (x16) {
      k.q4_k_x16(jobs[i], begin, end);
    } else if (rows16) {
      InFileLayout(kernel, jobs[i], begin, end);
    } else {
      kernel(jobs[i], begin, end);
    }
  };
  if (work < kMinParallelWork || pool.size() == 1) {
    for (std::size_t i = 0; i < ws.size(); ++i) {
      if (ws[i]->rows > 0) run(i, 0, ws[i]->rows);
    }
    return true;
  }
  // Rows are handed out in chunks (below: each thread's own run first, then the others')
  // rather than split evenly up front: the cores are often shared (other processes, SMT
  // siblings), and an even split waits for the slowest. About eight chunks per thread; at least
  // 64 KiB of weights each, so a chunk amortises its counter and keeps the kernels' row blocking
  // (prefill) intact.
  const std::size_t threads = static_cast<std::size_t>(pool.size());
  const std::size_t row_bytes = RowBytes(w.type, w.cols);
  std::size_t min_rows = (std::size_t{64} * 1024 + row_bytes - 1) / row_bytes;
  // The interleaved Q4_K kernel keeps no row blocks, and from 16 vectors on a row is 16 times
  // the work: its chunks then hold 4 KiB of weights, one group of 16 rows and up (64 KiB split
  // a 256-row matrix between 2 threads as 160 + 96 rows; batch-16 decode +0.5-3% at 2 threads).
  if (x16 && batch >= 16) min_rows = (min_rows + 15) / 16;
  std::size_t chunk = std::max<std::size_t>({total_rows / (threads * 8), min_rows, 4});
  if (rows16) chunk = (chunk + 15) / 16 * 16;  // whole groups of 16 interleaved rows
  // The matrices' chunks are numbered one after another (none spans two matrices); the numbers
  // go to the threads in runs (below).
  std::size_t first_chunk[kMaxMatrices + 1] = {0};
  for (std::size_t i = 0; i < ws.size(); ++i)
    first_chunk[i + 1] = first_chunk[i] + (ws[i]->rows + chunk - 1) / chunk;
  const std::size_t chunks = first_chunk[ws.size()];
  // Each thread owns a contiguous run of the chunks and takes them in order, so the chunk it
  // starts follows in memory the one it finished (the kernels' prefetches ahead land in it);
  // a thread whose run is done takes chunks from the front of the others'. With one counter
  // for all, two threads took alternate chunks, each chunk's first blocks came cold and its
  // last prefetches fetched the other thread's rows: the interleaved Q4_K kernel ran ~10% slower
  // per row at 2 threads than at 1 (batch-16 decode).
  struct alignas(64) Run {
    std::atomic<std::size_t> next{0};
    std::size_t end = 0;
  };
  constexpr std::size_t kMaxRuns = 16;
  const std::size_t runs = std::min(threads, kMaxRuns);
  Run run_of[kMaxRuns];
  for (std::size_t r = 0; r < runs; ++r) {
    run_of[r].next.store(chunks * r / runs, std::memory_order_relaxed);
    run_of[r].end = chunks * (r + 1) / runs;
  }
  pool.ParallelFor(threads, [&](std::size_t, std::size_t, int thread) {
    const auto home = static_cast<std::size_t>(thread) % runs;
    for (std::size_t k = 0; k < runs; ++k) {
      Run& from = run_of[(home + k) % runs];
      for (;;) {
        const std::size_t c = from.next.fetch_add(1, std::memory_order_relaxed);
        if (c >= from.end) break;
        std::size_t i = 0;
        while (c >= first_chunk[i + 1]) ++i;
        const std::size_t begin = (c - first_chunk[i]) * chunk;
        run(i, begin, std::min(ws[i]->rows, begin + chunk));
      }
    }
  });
  return true;
}

}  // namespace tidelane::engine
