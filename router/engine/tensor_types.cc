#include "router/engine/tensor_types.h"

#include <cmath>
#include <cstring>

#include "router/engine/ggml_blocks.h"

namespace tidelane::engine {
namespace {

template <typename Block>
const Block* Blocks(const void* src) {
  return static_cast<const Block*>(src);
}

void DequantQ4_0(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i, y += 32) {
    const BlockQ4_0& b = Blocks<BlockQ4_0>(src)[i];
    const float d = HalfToFloat(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0xF) - 8) * d;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantQ4_1(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i, y += 32) {
    const BlockQ4_1& b = Blocks<BlockQ4_1>(src)[i];
    const float d = HalfToFloat(b.d), m = HalfToFloat(b.m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(b.qs[j] & 0xF) * d + m;
      y[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

void DequantQ5_0(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i, y += 32) {
    const BlockQ5_0& b = Blocks<BlockQ5_0>(src)[i];
    const float d = HalfToFloat(b.d);
    std::uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
      y[j] = static_cast<float>(((b.qs[j] & 0xF) | h0) - 16) * d;
      y[j + 16] = static_cast<float>(((b.qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void DequantQ5_1(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i, y += 32) {
    const BlockQ5_1& b = Blocks<BlockQ5_1>(src)[i];
    const float d = HalfToFloat(b.d), m = HalfToFloat(b.m);
    std::uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
      y[j] = static_cast<float>((b.qs[j] & 0xF) | h0) * d + m;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) | h1) * d + m;
    }
  }
}

void DequantQ8_0(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i, y += 32) {
    const BlockQ8_0& b = Blocks<BlockQ8_0>(src)[i];
    const float d = HalfToFloat(b.d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void DequantQ4_K(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i) {
    const BlockQ4_K& b = Blocks<BlockQ4_K>(src)[i];
    const float d = HalfToFloat(b.d), dmin = HalfToFloat(b.dmin);
    const std::uint8_t* q = b.qs;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
      std::uint8_t sc, m;
      ScaleMinK4(is, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      ScaleMinK4(is + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void DequantQ5_K(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i) {
    const BlockQ5_K& b = Blocks<BlockQ5_K>(src)[i];
    const float d = HalfToFloat(b.d), dmin = HalfToFloat(b.dmin);
    const std::uint8_t* ql = b.qs;
    std::uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      std::uint8_t sc, m;
      ScaleMinK4(is, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      ScaleMinK4(is + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
      }
    }
  }
}

void DequantQ6_K(const void* src, float* y, std::size_t nb) {
  for (std::size_t i = 0; i < nb; ++i) {
    const BlockQ6_K& b = Blocks<BlockQ6_K>(src)[i];
    const float d = HalfToFloat(b.d);
    const std::uint8_t* ql = b.ql;
    const std::uint8_t* qh = b.qh;
    const std::int8_t* sc = b.scales;
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is] * q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2] * q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4] * q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6] * q4);
      }
    }
  }
}

}  // namespace

std::optional<TensorType> TensorTypeFromId(std::uint32_t id) {
  switch (id) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 6:
    case 7:
    case 8:
    case 12:
    case 13:
    case 14:
    case 30:
      return static_cast<TensorType>(id);
    default:
      return std::nullopt;
  }
}

std::string_view TensorTypeName(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return "F32";
    case TensorType::kF16:
      return "F16";
    case TensorType::kBF16:
      return "BF16";
    case TensorType::kQ4_0:
      return "Q4_0";
    case TensorType::kQ4_1:
      return "Q4_1";
    case TensorType::kQ5_0:
      return "Q5_0";
    case TensorType::kQ5_1:
      return "Q5_1";
    case TensorType::kQ8_0:
      return "Q8_0";
    case TensorType::kQ4_K:
      return "Q4_K";
    case TensorType::kQ5_K:
      return "Q5_K";
    case TensorType::kQ6_K:
      return "Q6_K";
  }
  return "?";
}

std::size_t BlockElements(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
      return 1;
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return 256;
    default:
      return 32;
  }
}

std::size_t BlockBytes(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return 4;
    case TensorType::kF16:
    case TensorType::kBF16:
      return 2;
    case TensorType::kQ4_0:
      return sizeof(BlockQ4_0);
    case TensorType::kQ4_1:
      return sizeof(BlockQ4_1);
    case TensorType::kQ5_0:
      return sizeof(BlockQ5_0);
    case TensorType::kQ5_1:
      return sizeof(BlockQ5_1);
    case TensorType::kQ8_0:
      return sizeof(BlockQ8_0);
    case TensorType::kQ4_K:
      return sizeof(BlockQ4_K);
    case TensorType::kQ5_K:
      return sizeof(BlockQ5_K);
    case TensorType::kQ6_K:
      return sizeof(BlockQ6_K);
  }
  return 1;
}

void DequantizeRow(TensorType type, const void* src, float* dst, std::size_t n) {
  const std::size_t nb = n / BlockElements(type);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case TensorType::kF16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = HalfToFloat(h[i]);
      return;
    }
    case TensorType::kBF16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = BF16ToFloat(h[i]);
      return;
    }
    case TensorType::kQ4_0:
      return DequantQ4_0(src, dst, nb);
    case TensorType::kQ4_1:
      return DequantQ4_1(src, dst, nb);
    case TensorType::kQ5_0:
      return DequantQ5_0(src, dst, nb);
    case TensorType::kQ5_1:
      return DequantQ5_1(src, dst, nb);
    case TensorType::kQ8_0:
      return DequantQ8_0(src, dst, nb);
    case TensorType::kQ4_K:
      return DequantQ4_K(src, dst, nb);
    case TensorType::kQ5_K:
      return DequantQ5_K(src, dst, nb);
    case TensorType::kQ6_K:
      return DequantQ6_K(src, dst, nb);
  }
}

float HalfToFloat(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000U) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1FU;
  std::uint32_t mant = h & 0x3FFU;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400U) == 0);
      bits = sign | ((127 - 15 - static_cast<std::uint32_t>(e)) << 23) | ((mant & 0x3FFU) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000U | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint16_t FloatToHalf(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000U;
  const std::uint32_t abs = x & 0x7FFFFFFFU;
  if (abs >= 0x7F800000U)
    return static_cast<std::uint16_t>(sign | 0x7C00U | (abs > 0x7F800000U ? 0x200U : 0));
  if (abs >= 0x477FF000U) return static_cast<std::uint16_t>(sign | 0x7C00U);  // overflow to inf
  if (abs < 0x38800000U) {  // subnormal or zero in half
    if (abs < 0x33000000U) return static_cast<std::uint16_t>(sign);
    const std::uint32_t e = abs >> 23;
    std::uint32_t mant = (abs & 0x7FFFFFU) | 0x800000U;
    const std::uint32_t shift = 126 - e;  // 113 - e + 13
    std::uint32_t half = mant >> shift;
    const std::uint32_t rem = mant & ((1U << shift) - 1);
    const std::uint32_t mid = 1U << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1U))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = ((abs - 0x38000000U) >> 13);
  const std::uint32_t rem = abs & 0x1FFFU;
  if (rem > 0x1000U || (rem == 0x1000U && (half & 1U))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

}  // namespace tidelane::engine
