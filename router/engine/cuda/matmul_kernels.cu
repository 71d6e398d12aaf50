// The CUDA backend's weight × activation kernels. A warp's lanes walk a weight row in groups of
// 8 consecutive elements (a group shares one scale; lane l takes groups l, l + 32, ...),
// dequantise each group in registers and meet it with one vector (MatVecKernel) or a tile of
// up to 16 staged in shared memory (MatMulSharedKernel), so each weight byte is read once per
// tile. Lane sums are combined by a fixed butterfly, so results are deterministic. Round 1's
// MatMulKernel stays for the one-element float traits and for comparisons (UseV1Kernels).
//
// Dequantisation is DequantizeRow's, group by group (dequant_groups.cuh), with
// __fmul_rn/__fadd_rn so nvcc cannot fuse a multiply and an add that the CPU code rounds
// separately. The products are accumulated with explicit FMAs (__fmaf_rn), one chain per (row,
// vector), in an order that does not depend on the tile or batch size, so a vector's result is
// bitwise the same alone or in any batch.
#include <algorithm>

#include "router/engine/cuda/dequant_groups.cuh"
#include "router/engine/cuda/forward_kernels.h"
#include "router/engine/cuda/matmul_kernels.h"

namespace tidelane::engine::cuda {
namespace {

constexpr int kWarpSize = 32;
constexpr int kWarpsPerBlock = 8;  // rows per thread block
constexpr int kThreads = kWarpSize * kWarpsPerBlock;

// One warp per row, one tile of up to kTile vectors (blockIdx.y) per launch column. acc[t] is
// vector b0 + t's sum; each lane's chain visits the same groups in the same order whatever
// kTile and the batch are, and the butterfly below is fixed, hence batch invariance.
template <typename T, int kTile>
__global__ void __launch_bounds__(kThreads)
    MatMulKernel(const std::uint8_t* __restrict__ w, std::size_t row_bytes, std::size_t rows,
                 std::size_t cols, const float* __restrict__ x, std::size_t batch,
                 float* __restrict__ y) {
  const std::size_t row =
      static_cast<std::size_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const unsigned lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;  // the whole warp leaves: the shuffles below need all 32 lanes
  const std::size_t b0 = static_cast<std::size_t>(blockIdx.y) * kTile;
  const int tile = static_cast<int>(min(static_cast<std::size_t>(kTile), batch - b0));
  const std::uint8_t* wr = w + row * row_bytes;
  const float* xt = x + b0 * cols;
  float acc[kTile];
  for (int t = 0; t < kTile; ++t) acc[t] = 0.0f;
  const std::size_t groups = cols / T::kGroup;
  for (std::size_t g = lane; g < groups; g += kWarpSize) {
    float v[T::kGroup];
    T::Load(wr, g, v);
    if constexpr (T::kGroup == 8) {
      // Every 8-element group covers two runs of four columns starting at multiples of 4
      // (Col(g, 0..3) and Col(g, 4..7)), and cols is a multiple of 8, so the activations come
      // in two aligned 16-byte loads per vector.
      const std::size_t c0 = T::Col(g, 0), c1 = T::Col(g, 4);
      for (int t = 0; t < kTile; ++t) {
        if (t < tile) {
          const float4 a = *reinterpret_cast<const float4*>(xt + t * cols + c0);
          const float4 b = *reinterpret_cast<const float4*>(xt + t * cols + c1);
          const float xs[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
          for (int k = 0; k < 8; ++k) acc[t] = __fmaf_rn(v[k], xs[k], acc[t]);
        }
      }
    } else {
      for (int k = 0; k < T::kGroup; ++k) {
        const std::size_t c = T::Col(g, k);
        for (int t = 0; t < kTile; ++t) {
          if (t < tile) acc[t] = __fmaf_rn(v[k], xt[t * cols + c], acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < kTile; ++t) {
    float sum = acc[t];
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
      sum += __shfl_xor_sync(0xFFFFFFFFU, sum, offset);
    if (lane == 0 && t < tile) y[(b0 + t) * rows + row] = sum;
  }
}

// Adds group g's products with vector x (cols floats) to acc, k = 0..kGroup-1 in order: the one
// FMA chain every kernel here uses, so they all agree bit for bit.
template <typename T>
__device__ __forceinline__ float DotGroup(const float* v, const float* __restrict__ x,
                                          std::size_t g, float acc) {
  if constexpr (T::kGroup == 8) {
    const float4 a = *reinterpret_cast<const float4*>(x + T::Col(g, 0));
    const float4 b = *reinterpret_cast<const float4*>(x + T::Col(g, 4));
    const float xs[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    for (int k = 0; k < 8; ++k) acc = __fmaf_rn(v[k], xs[k], acc);
  } else {
    for (int k = 0; k < T::kGroup; ++k) acc = __fmaf_rn(v[k], x[T::Col(g, k)], acc);
  }
  return acc;
}

// One vector (decoding one sequence): as MatMulKernel<T, 1>, but each lane loads kUnroll of its
// groups (g, g + 32, ...) before using any, so a warp has kUnroll times the bytes in flight;
// the FMA chain visits the same groups in the same order, so the sums are MatMulKernel's.
template <typename T, int kUnroll>
__global__ void __launch_bounds__(kThreads)
    MatVecKernel(const std::uint8_t* __restrict__ w, std::size_t row_bytes, std::size_t rows,
                 std::size_t cols, const float* __restrict__ x, float* __restrict__ y) {
  const std::size_t row =
      static_cast<std::size_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const unsigned lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;
  const std::uint8_t* wr = w + row * row_bytes;
  const std::size_t groups = cols / T::kGroup;
  float acc = 0.0f;
  std::size_t g = lane;
  for (; g + (kUnroll - 1) * kWarpSize < groups; g += kUnroll * kWarpSize) {
    float v[kUnroll][T::kGroup];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) T::Load(wr, g + u * kWarpSize, v[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc = DotGroup<T>(v[u], x, g + u * kWarpSize, acc);
  }
  for (; g < groups; g += kWarpSize) {
    float v[T::kGroup];
    T::Load(wr, g, v);
    acc = DotGroup<T>(v, x, g, acc);
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    acc += __shfl_xor_sync(0xFFFFFFFFU, acc, offset);
  if (lane == 0) y[row] = acc;
}

// Batches (8-element groups only): a block of kSharedWarps warps takes kRowsPerWarp rows each
// and a tile of up to kSharedTile vectors. The tile's activations are staged in shared memory
// kChunk columns at a time; each lane dequantises its group of each of its rows once and meets
// it with every vector of the tile, reading each activation float4 once for all its rows.
// Every lane still visits groups lane, lane + 32, ... in order (a chunk is 64 groups), with the
// same k-order FMAs and butterfly as MatVecKernel, so each (row, vector) sum is bitwise the
// batch-1 one.
constexpr int kSharedWarps = 8;
constexpr int kRowsPerWarp = 4;
constexpr int kSharedRows = kSharedWarps * kRowsPerWarp;  // rows per block
constexpr int kSharedTile = 16;                           // vectors per block
constexpr int kChunk = 512;                               // columns staged at a time

template <typename T>
__global__ void __launch_bounds__(kThreads)
    MatMulSharedKernel(const std::uint8_t* __restrict__ w, std::size_t row_bytes, std::size_t rows,
                       std::size_t cols, const float* __restrict__ x, std::size_t batch,
                       float* __restrict__ y) {
  static_assert(T::kGroup == 8 && kSharedWarps == kWarpsPerBlock, "8-element groups only");
  __shared__ float4 xs[kSharedTile * kChunk / 4];  // 32 KiB: [vector][column / 4]
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const std::size_t row0 = static_cast<std::size_t>(blockIdx.x) * kSharedRows + warp;
  const std::size_t b0 = static_cast<std::size_t>(blockIdx.y) * kSharedTile;
  const int tile = static_cast<int>(min(static_cast<std::size_t>(kSharedTile), batch - b0));
  // Rows row0, row0 + 8, ...: a warp's rows are spread so that a short matrix keeps its warps
  // busy. A row past the end is computed on row 0's bytes and never written.
  const std::uint8_t* wr[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const std::size_t row = row0 + r * kSharedWarps;
    wr[r] = w + (row < rows ? row : 0) * row_bytes;
  }
  float acc[kRowsPerWarp][kSharedTile];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kSharedTile; ++t) acc[r][t] = 0.0f;
  const float* xt = x + b0 * cols;
  for (std::size_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int n4 = static_cast<int>(min(static_cast<std::size_t>(kChunk), cols - c0) / 4);
    __syncthreads();  // the previous chunk's readers are done
    for (int i = threadIdx.x; i < tile * n4; i += kThreads) {
      const int t = i / n4, j = i % n4;
      xs[t * (kChunk / 4) + j] = reinterpret_cast<const float4*>(xt + t * cols + c0)[j];
    }
    __syncthreads();
    const std::size_t g_end = (c0 + 4 * n4) / 8;
    for (std::size_t g = c0 / 8 + lane; g < g_end; g += kWarpSize) {
      float v[kRowsPerWarp][8];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) T::Load(wr[r], g, v[r]);
      const int l0 = static_cast<int>(T::Col(g, 0) - c0) / 4;
      const int l1 = static_cast<int>(T::Col(g, 4) - c0) / 4;
#pragma unroll
      for (int t = 0; t < kSharedTile; ++t) {
        if (t < tile) {
          const float4 a = xs[t * (kChunk / 4) + l0], b = xs[t * (kChunk / 4) + l1];
          const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
            for (int k = 0; k < 8; ++k) acc[r][t] = __fmaf_rn(v[r][k], xv[k], acc[r][t]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const std::size_t row = row0 + r * kSharedWarps;
#pragma unroll
    for (int t = 0; t < kSharedTile; ++t) {
      float sum = acc[r][t];
      for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        sum += __shfl_xor_sync(0xFFFFFFFFU, sum, offset);
      if (lane == 0 && t < tile && row < rows) y[(b0 + t) * rows + row] = sum;
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    DequantizeKernel(const std::uint8_t* __restrict__ w, std::size_t row_bytes, std::size_t rows,
                     std::size_t cols, float* __restrict__ out) {
  const std::size_t groups = cols / T::kGroup;
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= rows * groups) return;
  const std::size_t row = i / groups, g = i % groups;
  float v[T::kGroup];
  T::Load(w + row * row_bytes, g, v);
  for (int k = 0; k < T::kGroup; ++k) out[row * cols + T::Col(g, k)] = v[k];
}

// The device forward pass's embedding: block r writes row tokens[r] of w, dequantised.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    EmbedKernel(const std::uint8_t* __restrict__ w, std::size_t row_bytes, std::size_t cols,
                const std::int32_t* __restrict__ tokens, float* __restrict__ out) {
  const std::size_t r = blockIdx.x;
  const std::uint8_t* row = w + static_cast<std::size_t>(tokens[r]) * row_bytes;
  float* o = out + r * cols;
  for (std::size_t g = threadIdx.x; g < cols / T::kGroup; g += kThreads) {
    float v[T::kGroup];
    T::Load(row, g, v);
    for (int k = 0; k < T::kGroup; ++k) o[T::Col(g, k)] = v[k];
  }
}

__global__ void EmptyKernel() {}

// The grid's y dimension is at most 65535 tiles; larger batches take several launches.
constexpr std::size_t kMaxTilesPerLaunch = 65535;

template <typename T, int kTile>
cudaError_t Launch(const std::uint8_t* w, std::size_t rows, std::size_t cols, const float* x,
                   std::size_t batch, float* y, cudaStream_t stream) {
  const std::size_t row_bytes = RowBytes(T::kType, cols);
  const dim3 block(kThreads);
  const std::size_t row_blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (row_blocks > 0x7FFFFFFFU) return cudaErrorInvalidValue;
  for (std::size_t b = 0; b < batch; b += kMaxTilesPerLaunch * kTile) {
    const std::size_t n = std::min(batch - b, kMaxTilesPerLaunch * kTile);
    const dim3 grid(static_cast<unsigned>(row_blocks),
                    static_cast<unsigned>((n + kTile - 1) / kTile));
    MatMulKernel<T, kTile>
        <<<grid, block, 0, stream>>>(w, row_bytes, rows, cols, x + b * cols, n, y + b * rows);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t LaunchMatVec(const std::uint8_t* w, std::size_t rows, std::size_t cols, const float* x,
                         float* y, cudaStream_t stream) {
  const std::size_t row_blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (row_blocks > 0x7FFFFFFFU) return cudaErrorInvalidValue;
  MatVecKernel<T, 4><<<static_cast<unsigned>(row_blocks), kThreads, 0, stream>>>(
      w, RowBytes(T::kType, cols), rows, cols, x, y);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchShared(const std::uint8_t* w, std::size_t rows, std::size_t cols, const float* x,
                         std::size_t batch, float* y, cudaStream_t stream) {
  const std::size_t row_bytes = RowBytes(T::kType, cols);
  const std::size_t row_blocks = (rows + kSharedRows - 1) / kSharedRows;
  if (row_blocks > 0x7FFFFFFFU) return cudaErrorInvalidValue;
  for (std::size_t b = 0; b < batch; b += kMaxTilesPerLaunch * kSharedTile) {
    const std::size_t n = std::min(batch - b, kMaxTilesPerLaunch * kSharedTile);
    const dim3 grid(static_cast<unsigned>(row_blocks),
                    static_cast<unsigned>((n + kSharedTile - 1) / kSharedTile));
    MatMulSharedKernel<T>
        <<<grid, kThreads, 0, stream>>>(w, row_bytes, rows, cols, x + b * cols, n, y + b * rows);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

// Whether MatVecKernel (four groups in flight per lane) beats the first kernel's one accumulator
// for a lone vector. Measured on an H200, 65536 × 4096 (docs/benchmarks/engine.md, round 2): it
// wins for the float types and Q4_K/Q5_K, ties for Q4_0, and loses 4–22% for these, whose
// narrower blocks leave the extra loads little to hide.
template <typename T>
constexpr bool kMatVecFaster = true;
template <>
constexpr bool kMatVecFaster<Q8_0> = false;
template <>
constexpr bool kMatVecFaster<Q4_1> = false;
template <>
constexpr bool kMatVecFaster<Q5_0> = false;
template <>
constexpr bool kMatVecFaster<Q5_1> = false;
template <>
constexpr bool kMatVecFaster<Q6_K> = false;

// kBest: a lone vector (decoding one sequence) gets MatVecKernel where it is faster, else the
// first kernel; batches of 8-element groups the shared-memory kernel, tiles of 16; the
// one-element float types (rows not a multiple of 8) keep the first kernel's tiles of 4 and 8.
template <typename T>
cudaError_t LaunchTiled(const std::uint8_t* w, std::size_t rows, std::size_t cols, const float* x,
                        std::size_t batch, float* y, cudaStream_t stream, KernelSet kernels) {
  if (kernels == KernelSet::kFirst || (batch == 1 && !kMatVecFaster<T>)) {
    if (batch == 1) return Launch<T, 1>(w, rows, cols, x, batch, y, stream);
    if (batch <= 4) return Launch<T, 4>(w, rows, cols, x, batch, y, stream);
    return Launch<T, 8>(w, rows, cols, x, batch, y, stream);
  }
  if (batch == 1) return LaunchMatVec<T>(w, rows, cols, x, y, stream);
  if constexpr (T::kGroup == 8) {
    return LaunchShared<T>(w, rows, cols, x, batch, y, stream);
  } else {
    if (batch <= 4) return Launch<T, 4>(w, rows, cols, x, batch, y, stream);
    return Launch<T, 8>(w, rows, cols, x, batch, y, stream);
  }
}

template <typename T>
cudaError_t LaunchDequantizeT(const std::uint8_t* w, std::size_t rows, std::size_t cols, float* out,
                              cudaStream_t stream) {
  const std::size_t n = rows * (cols / T::kGroup);
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 0x7FFFFFFFU) return cudaErrorInvalidValue;
  DequantizeKernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      w, RowBytes(T::kType, cols), rows, cols, out);
  return cudaGetLastError();
}

// Calls f.template operator()<Traits>() for the type's traits, the 8-wide float ones where
// cols allows (a functor, not a templated lambda: this file is C++17).
template <typename F>
cudaError_t Dispatch(TensorType type, std::size_t cols, const F& f) {
  const bool by8 = cols % 8 == 0;
  switch (type) {
    case TensorType::kF32:
      return by8 ? f.template operator()<F32x8>() : f.template operator()<F32>();
    case TensorType::kF16:
      return by8 ? f.template operator()<F16x8>() : f.template operator()<F16>();
    case TensorType::kBF16:
      return by8 ? f.template operator()<BF16x8>() : f.template operator()<BF16>();
    case TensorType::kQ4_0:
      return f.template operator()<Q4_0>();
    case TensorType::kQ4_1:
      return f.template operator()<Q4_1>();
    case TensorType::kQ5_0:
      return f.template operator()<Q5_0>();
    case TensorType::kQ5_1:
      return f.template operator()<Q5_1>();
    case TensorType::kQ8_0:
      return f.template operator()<Q8_0>();
    case TensorType::kQ4_K:
      return f.template operator()<Q4_K>();
    case TensorType::kQ5_K:
      return f.template operator()<Q5_K>();
    case TensorType::kQ6_K:
      return f.template operator()<Q6_K>();
  }
  return cudaErrorInvalidValue;
}

struct MatMulLauncher {
  const std::uint8_t* w;
  std::size_t rows, cols;
  const float* x;
  std::size_t batch;
  float* y;
  cudaStream_t stream;
  KernelSet kernels;
  template <typename T>
  cudaError_t operator()() const {
    return LaunchTiled<T>(w, rows, cols, x, batch, y, stream, kernels);
  }
};

struct DequantizeLauncher {
  const std::uint8_t* w;
  std::size_t rows, cols;
  float* out;
  cudaStream_t stream;
  template <typename T>
  cudaError_t operator()() const {
    return LaunchDequantizeT<T>(w, rows, cols, out, stream);
  }
};

struct EmbedLauncher {
  const std::uint8_t* w;
  std::size_t cols;
  const std::int32_t* tokens;
  std::size_t rows;
  float* out;
  cudaStream_t stream;
  template <typename T>
  cudaError_t operator()() const {
    if (rows > 0x7FFFFFFFU) return cudaErrorInvalidValue;
    EmbedKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        w, RowBytes(T::kType, cols), cols, tokens, out);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t LaunchEmbed(TensorType type, const std::uint8_t* w, std::size_t cols,
                        const std::int32_t* tokens, std::size_t rows, float* out,
                        cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  return Dispatch(type, cols, EmbedLauncher{w, cols, tokens, rows, out, stream});
}

cudaError_t LaunchMatMul(TensorType type, const std::uint8_t* w, std::size_t rows, std::size_t cols,
                         const float* x, std::size_t batch, float* y, cudaStream_t stream,
                         KernelSet kernels) {
  if (rows == 0 || batch == 0) return cudaSuccess;
  return Dispatch(type, cols, MatMulLauncher{w, rows, cols, x, batch, y, stream, kernels});
}

cudaError_t LaunchDequantize(TensorType type, const std::uint8_t* w, std::size_t rows,
                             std::size_t cols, float* out, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  return Dispatch(type, cols, DequantizeLauncher{w, rows, cols, out, stream});
}

cudaError_t ProbeKernels(cudaStream_t stream) {
  EmptyKernel<<<1, 1, 0, stream>>>();
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  return cudaStreamSynchronize(stream);
}

}  // namespace tidelane::engine::cuda
