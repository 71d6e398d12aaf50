// The CUDA kernels' dequantisation, one group of elements at a time: per tensor type, a traits
// struct whose Load(row, g, v) writes the kGroup values of group g of a row (all sharing one
// scale) and whose Col(g, k) is the column of v[k]. Groups never straddle blocks; a row of cols
// elements has cols / kGroup of them, and every column belongs to exactly one.
//
// Each Load is DequantizeRow (tensor_types.cc) for its group: the same integer unpacking and
// the same float operations in the same order, so the values are bitwise the CPU's. Everything
// here is __host__ __device__, so tests/router/engine/cuda_dequant_groups_test.cu checks that
// on any machine with nvcc, GPU or not; cuda_backend_test checks it again on the device.
//
// For matmul_kernels.cu and that test only. Alignment: rows start at 16-byte boundaries (each
// matrix is its own cudaMalloc, and every row length the 8-wide float traits take is a
// multiple of 16 bytes).
#pragma once

#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "router/engine/ggml_blocks.h"
#include "router/engine/tensor_types.h"

namespace tidelane::engine::cuda {

// Unrounded-separately arithmetic: on the device the unfused intrinsics; on the host (this
// header is also compiled there, for the test) plain operations, which g++ does not fuse in ISO
// C++ mode.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float Mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ float Add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float Sub(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ float Bits(std::uint32_t u) {
  return __uint_as_float(u);
}
#else
inline float Mul(float a, float b) {
  return a * b;
}
inline float Add(float a, float b) {
  return a + b;
}
inline float Sub(float a, float b) {
  return a - b;
}
inline float Bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
#endif

__host__ __device__ __forceinline__ float Half(std::uint16_t h) {
  // cvt.f32.f16 is exact, as HalfToFloat is (NaN payloads aside).
  return __half2float(__ushort_as_half(h));
}

// ggml's get_scale_min_k4, as ScaleMinK4 in ggml_blocks.h (which is host-only).
__host__ __device__ __forceinline__ void ScaleMinK4(int j, const std::uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The float types, one element per lane: any row length.

struct F32 {
  static constexpr TensorType kType = TensorType::kF32;
  static constexpr int kGroup = 1;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    v[0] = reinterpret_cast<const float*>(row)[g];
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int) { return g; }
};

struct F16 {
  static constexpr TensorType kType = TensorType::kF16;
  static constexpr int kGroup = 1;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    v[0] = Half(reinterpret_cast<const std::uint16_t*>(row)[g]);
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int) { return g; }
};

struct BF16 {
  static constexpr TensorType kType = TensorType::kBF16;
  static constexpr int kGroup = 1;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    v[0] = Bits(static_cast<unsigned>(reinterpret_cast<const std::uint16_t*>(row)[g]) << 16);
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int) { return g; }
};

// The float types again, eight elements per lane with 16-byte loads, for rows whose length is
// a multiple of 8 (every real model's): a warp then reads 512 or 1024 contiguous bytes per step
// instead of 64 or 128. Rows of other lengths take the one-element traits above.
struct F32x8 {
  static constexpr TensorType kType = TensorType::kF32;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const float4* p = reinterpret_cast<const float4*>(row) + 2 * g;
    const float4 a = p[0], b = p[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return 8 * g + k; }
};

// The eight 16-bit values of a 16-byte load, in memory order (little-endian halves).
__host__ __device__ __forceinline__ void Unpack8(const std::uint8_t* row, std::size_t g,
                                                 std::uint16_t* h) {
  const uint4 u = reinterpret_cast<const uint4*>(row)[g];
  const unsigned words[4] = {u.x, u.y, u.z, u.w};
  for (int i = 0; i < 4; ++i) {
    h[2 * i] = static_cast<std::uint16_t>(words[i] & 0xFFFFU);
    h[2 * i + 1] = static_cast<std::uint16_t>(words[i] >> 16);
  }
}

struct F16x8 {
  static constexpr TensorType kType = TensorType::kF16;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    std::uint16_t h[8];
    Unpack8(row, g, h);
    for (int k = 0; k < 8; ++k) v[k] = Half(h[k]);
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return 8 * g + k; }
};

struct BF16x8 {
  static constexpr TensorType kType = TensorType::kBF16;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    std::uint16_t h[8];
    Unpack8(row, g, h);
    for (int k = 0; k < 8; ++k) v[k] = Bits(static_cast<std::uint32_t>(h[k]) << 16);
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return 8 * g + k; }
};

// The 32-element blocks whose byte j holds elements j (low nibble) and j + 16 (high nibble):
// group p of a block is bytes 4p..4p+3, i.e. elements 4p..4p+3 and 4p+16..4p+19.
__host__ __device__ __forceinline__ std::size_t NibbleCol(std::size_t g, int k) {
  return (g >> 2) * 32 + (g & 3) * 4 + (k < 4 ? k : k + 12);
}

struct Q4_0 {
  static constexpr TensorType kType = TensorType::kQ4_0;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ4_0& b = reinterpret_cast<const BlockQ4_0*>(row)[g >> 2];
    const float d = Half(b.d);
    const std::uint8_t* qs = b.qs + (g & 3) * 4;
    for (int k = 0; k < 4; ++k) {
      v[k] = Mul(static_cast<float>((qs[k] & 0xF) - 8), d);
      v[k + 4] = Mul(static_cast<float>((qs[k] >> 4) - 8), d);
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return NibbleCol(g, k); }
};

struct Q4_1 {
  static constexpr TensorType kType = TensorType::kQ4_1;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ4_1& b = reinterpret_cast<const BlockQ4_1*>(row)[g >> 2];
    const float d = Half(b.d), m = Half(b.m);
    const std::uint8_t* qs = b.qs + (g & 3) * 4;
    for (int k = 0; k < 4; ++k) {
      v[k] = Add(Mul(static_cast<float>(qs[k] & 0xF), d), m);
      v[k + 4] = Add(Mul(static_cast<float>(qs[k] >> 4), d), m);
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return NibbleCol(g, k); }
};

// Q5_0/Q5_1: bit j of the 32-bit qh is the fifth bit of element j.
__host__ __device__ __forceinline__ std::uint32_t HighBits(const std::uint8_t* qh) {
  return qh[0] | (qh[1] << 8) | (qh[2] << 16) | (static_cast<std::uint32_t>(qh[3]) << 24);
}

struct Q5_0 {
  static constexpr TensorType kType = TensorType::kQ5_0;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ5_0& b = reinterpret_cast<const BlockQ5_0*>(row)[g >> 2];
    const float d = Half(b.d);
    const std::uint32_t qh = HighBits(b.qh);
    const int j0 = static_cast<int>(g & 3) * 4;
    for (int k = 0; k < 4; ++k) {
      const int j = j0 + k;
      const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
      v[k] = Mul(static_cast<float>(((b.qs[j] & 0xF) | h0) - 16), d);
      v[k + 4] = Mul(static_cast<float>(((b.qs[j] >> 4) | h1) - 16), d);
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return NibbleCol(g, k); }
};

struct Q5_1 {
  static constexpr TensorType kType = TensorType::kQ5_1;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ5_1& b = reinterpret_cast<const BlockQ5_1*>(row)[g >> 2];
    const float d = Half(b.d), m = Half(b.m);
    const std::uint32_t qh = HighBits(b.qh);
    const int j0 = static_cast<int>(g & 3) * 4;
    for (int k = 0; k < 4; ++k) {
      const int j = j0 + k;
      const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
      v[k] = Add(Mul(static_cast<float>((b.qs[j] & 0xF) | h0), d), m);
      v[k + 4] = Add(Mul(static_cast<float>((b.qs[j] >> 4) | h1), d), m);
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return NibbleCol(g, k); }
};

struct Q8_0 {
  static constexpr TensorType kType = TensorType::kQ8_0;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(row)[g >> 2];
    const float d = Half(b.d);
    const std::int8_t* qs = b.qs + (g & 3) * 8;
    for (int k = 0; k < 8; ++k) v[k] = Mul(static_cast<float>(qs[k]), d);
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) {
    return (g >> 2) * 32 + (g & 3) * 8 + k;
  }
};

// Eight bytes from an 8-byte-aligned address in one load (the K-quants' qs runs), in memory
// order.
__host__ __device__ __forceinline__ void Load8(const std::uint8_t* p, std::uint8_t* b) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  for (int i = 0; i < 4; ++i) {
    b[i] = static_cast<std::uint8_t>(u.x >> (8 * i));
    b[i + 4] = static_cast<std::uint8_t>(u.y >> (8 * i));
  }
}

// Q4_K/Q5_K: a block of 256 is four chunks of 64; chunk c's 32 quant bytes hold its first 32
// elements in the low nibbles (sub-block 2c) and its last 32 in the high ones (sub-block
// 2c + 1). Group s of a block (32 of 8): chunk s / 8, the high half when s % 8 >= 4, bytes
// 8·(s % 4) on.
__host__ __device__ __forceinline__ std::size_t KCol(std::size_t g, int k) {
  const unsigned s = g & 31;
  return (g >> 5) * 256 + (s >> 3) * 64 + ((s & 7) >= 4 ? 32 : 0) + (s & 3) * 8 + k;
}

struct Q4_K {
  static constexpr TensorType kType = TensorType::kQ4_K;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ4_K& b = reinterpret_cast<const BlockQ4_K*>(row)[g >> 5];
    const unsigned s = g & 31, c = s >> 3;
    const bool high = (s & 7) >= 4;
    int sc, m;
    ScaleMinK4(static_cast<int>(2 * c + (high ? 1 : 0)), b.scales, &sc, &m);
    const float d1 = Mul(Half(b.d), static_cast<float>(sc));
    const float m1 = Mul(Half(b.dmin), static_cast<float>(m));
    std::uint8_t q[8];  // Q4_K blocks are 144 bytes and qs starts at 16: 8-byte aligned
    Load8(b.qs + c * 32 + (s & 3) * 8, q);
    for (int k = 0; k < 8; ++k) {
      const int nibble = high ? q[k] >> 4 : q[k] & 0xF;
      v[k] = Sub(Mul(d1, static_cast<float>(nibble)), m1);
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return KCol(g, k); }
};

struct Q5_K {
  static constexpr TensorType kType = TensorType::kQ5_K;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ5_K& b = reinterpret_cast<const BlockQ5_K*>(row)[g >> 5];
    const unsigned s = g & 31, c = s >> 3;
    const bool high = (s & 7) >= 4;
    int sc, m;
    ScaleMinK4(static_cast<int>(2 * c + (high ? 1 : 0)), b.scales, &sc, &m);
    const float d1 = Mul(Half(b.d), static_cast<float>(sc));
    const float m1 = Mul(Half(b.dmin), static_cast<float>(m));
    // Element l of chunk c takes its fifth bit from qh[l]: bit 2c (low half), 2c + 1 (high).
    const unsigned bit = (high ? 2U : 1U) << (2 * c);
    const unsigned l0 = (s & 3) * 8;
    // Q5_K blocks are 176 bytes, qh starts at 16 and qs at 48: both runs 8-byte aligned.
    std::uint8_t q[8], h[8];
    Load8(b.qs + c * 32 + l0, q);
    Load8(b.qh + l0, h);
    for (int k = 0; k < 8; ++k) {
      const int nibble = high ? q[k] >> 4 : q[k] & 0xF;
      const int value = nibble + ((h[k] & bit) ? 16 : 0);
      v[k] = Sub(Mul(d1, static_cast<float>(value)), m1);
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) { return KCol(g, k); }
};

// Q6_K: a block of 256 is two halves of 128; in half n, position l < 32 of ql/qh gives four
// elements: l, l + 32, l + 64, l + 96 (the quarters), each with sub-block scale
// sc[l / 16 + 2·quarter]. Group s of a block (32 of 8): half s / 16, quarter (s % 16) / 4,
// positions 8·(s % 4) on.
struct Q6_K {
  static constexpr TensorType kType = TensorType::kQ6_K;
  static constexpr int kGroup = 8;
  __host__ __device__ static void Load(const std::uint8_t* row, std::size_t g, float* v) {
    const BlockQ6_K& b = reinterpret_cast<const BlockQ6_K*>(row)[g >> 5];
    const unsigned s = g & 31, n = s >> 4, quarter = (s & 15) >> 2, l0 = (s & 3) * 8;
    const float d = Half(b.d);
    const std::uint8_t* ql = b.ql + 64 * n;
    const std::uint8_t* qh = b.qh + 32 * n;
    const int sc = b.scales[8 * n + l0 / 16 + 2 * quarter];
    for (int k = 0; k < 8; ++k) {
      const unsigned l = l0 + k;
      int q;
      switch (quarter) {
        case 0:
          q = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          break;
        case 1:
          q = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          break;
        case 2:
          q = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          break;
        default:
          q = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          break;
      }
      v[k] = Mul(d, static_cast<float>(sc * q));
    }
  }
  __host__ __device__ static std::size_t Col(std::size_t g, int k) {
    const unsigned s = g & 31;
    return (g >> 5) * 256 + (s >> 4) * 128 + ((s & 15) >> 2) * 32 + (s & 3) * 8 + k;
  }
};

}  // namespace tidelane::engine::cuda
