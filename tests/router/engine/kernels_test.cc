// The attention and feed-forward kernels (kernels.h) against double-precision references, for
// head sizes that take the AVX2 paths (multiples of 8) and those that take the plain loops, and
// counts of positions that end inside a group of 8 (the SIMD tails).
#include "router/engine/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace tidelane::engine {
namespace {

std::vector<float> Normal(std::size_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Kernels, AttentionMatchesAReference) {
  std::mt19937 rng(5);
  for (std::size_t head_dim : {8u, 12u, 64u, 96u, 128u}) {
    for (std::size_t group : {1u, 3u, 4u}) {
      for (std::size_t n : {1u, 7u, 8u, 13u, 16u, 37u}) {
        // Keys and values of consecutive positions `stride` floats apart, as in the KV cache
        // (another KV head's slice in between).
        const std::size_t stride = 2 * head_dim + 4;
        const auto q = Normal(group * head_dim, rng);
        const auto k = Normal(n * stride, rng);
        const auto v = Normal(n * stride, rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        const std::size_t p_stride = n + 3;
        std::vector<float> scores(group * p_stride, NAN);
        AttendKeys(q.data(), group, head_dim, k.data(), stride, n, scale, scores.data(), p_stride);
        for (std::size_t g = 0; g < group; ++g) {
          for (std::size_t t = 0; t < n; ++t) {
            double ref = 0, mag = 0;
            for (std::size_t i = 0; i < head_dim; ++i) {
              ref += static_cast<double>(q[g * head_dim + i]) * k[t * stride + i];
              mag += std::fabs(static_cast<double>(q[g * head_dim + i]) * k[t * stride + i]);
            }
            EXPECT_NEAR(scores[g * p_stride + t], ref * scale, 1e-6 * mag + 1e-7)
                << "head_dim " << head_dim << " group " << group << " n " << n;
          }
        }
        std::vector<float> p(scores);
        for (std::size_t g = 0; g < group; ++g) Softmax(&p[g * p_stride], n);
        for (std::size_t g = 0; g < group; ++g) {
          double max = -INFINITY, sum = 0;
          for (std::size_t t = 0; t < n; ++t) max = std::max<double>(max, scores[g * p_stride + t]);
          for (std::size_t t = 0; t < n; ++t) sum += std::exp(scores[g * p_stride + t] - max);
          for (std::size_t t = 0; t < n; ++t) {
            const double ref = std::exp(scores[g * p_stride + t] - max) / sum;
            EXPECT_NEAR(p[g * p_stride + t], ref, 1e-6 * ref + 1e-9) << "n " << n;
          }
        }
        std::vector<float> out(group * head_dim, 0.5f);
        AttendValues(p.data(), group, head_dim, v.data(), stride, n, p_stride, out.data());
        for (std::size_t g = 0; g < group; ++g) {
          for (std::size_t i = 0; i < head_dim; ++i) {
            double ref = 0.5;
            for (std::size_t t = 0; t < n; ++t)
              ref += static_cast<double>(p[g * p_stride + t]) * v[t * stride + i];
            EXPECT_NEAR(out[g * head_dim + i], ref, 1e-5) << "head_dim " << head_dim;
          }
        }
      }
    }
  }
}

// The F16 KV cache: every half widens to the float HalfToFloat gives and rounds back to
// itself; floats round to the nearest half as FloatToHalf does (ties to even, subnormals,
// overflow), on the F16C path and its scalar tail alike.
TEST(Kernels, HalfConversionsMatchTheScalarOnes) {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  std::vector<float> wide(all.size());
  HalvesToFloats(all.data(), wide.data(), all.size());
  std::vector<std::uint16_t> back(all.size());
  FloatsToHalves(wide.data(), back.data(), wide.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (std::isnan(HalfToFloat(all[i]))) {
      EXPECT_TRUE(std::isnan(wide[i])) << i;
      continue;
    }
    const float ref = HalfToFloat(all[i]);
    ASSERT_EQ(std::memcmp(&wide[i], &ref, 4), 0) << i;
    ASSERT_EQ(back[i], all[i]) << i;
  }
  // Floats between halves: halfway points (ties), just either side, the subnormal range,
  // overflow; then random ones at many scales. Odd lengths exercise the scalar tail.
  std::vector<float> x;
  for (std::uint32_t h = 0; h < 0x7C00; h += 7) {
    const float lo = HalfToFloat(static_cast<std::uint16_t>(h));
    const float hi = HalfToFloat(static_cast<std::uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;  // exact: halves have 11 significant bits
    x.insert(x.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f), -mid});
  }
  x.insert(x.end(), {65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, 1e-10f, 0.0f, -0.0f, INFINITY});
  std::mt19937 rng(11);
  for (float sigma : {1e-6f, 1e-3f, 1.0f, 30.0f, 3000.0f}) {
    const auto r = Normal(1001, rng, sigma);
    x.insert(x.end(), r.begin(), r.end());
  }
  std::vector<std::uint16_t> got(x.size());
  FloatsToHalves(x.data(), got.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], FloatToHalf(x[i])) << x[i];
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);            // rounds past the largest half: inf
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3C00);  // a tie rounds to even (down)
  EXPECT_EQ(FloatToHalf(1.0f + 3.0f / 2048), 0x3C02);  // and up
}

// The F16 attention kernels widen each element and then do the float kernels' arithmetic in
// the float kernels' order: bitwise the float kernels' results on the widened keys and values.
TEST(Kernels, F16AttentionIsTheFloatAttentionOnWidenedValues) {
  std::mt19937 rng(9);
  for (std::size_t head_dim : {8u, 12u, 64u, 96u, 128u}) {
    for (std::size_t group : {1u, 3u}) {
      for (std::size_t n : {1u, 7u, 8u, 13u, 16u, 37u}) {
        const std::size_t stride = 2 * head_dim + 4;
        const auto q = Normal(group * head_dim, rng);
        const auto kf = Normal(n * stride, rng), vf = Normal(n * stride, rng);
        std::vector<std::uint16_t> k(kf.size()), v(vf.size());
        FloatsToHalves(kf.data(), k.data(), k.size());
        FloatsToHalves(vf.data(), v.data(), v.size());
        std::vector<float> kw(k.size()), vw(v.size());
        HalvesToFloats(k.data(), kw.data(), k.size());
        HalvesToFloats(v.data(), vw.data(), v.size());
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        const std::size_t p_stride = n + 3;
        std::vector<float> s16(group * p_stride, 0.0f), s32(group * p_stride, 0.0f);
        AttendKeys(q.data(), group, head_dim, k.data(), stride, n, scale, s16.data(), p_stride);
        AttendKeys(q.data(), group, head_dim, kw.data(), stride, n, scale, s32.data(), p_stride);
        ASSERT_EQ(std::memcmp(s16.data(), s32.data(), s16.size() * 4), 0)
            << "head_dim " << head_dim << " group " << group << " n " << n;
        for (std::size_t g = 0; g < group; ++g) Softmax(&s32[g * p_stride], n);
        std::vector<float> o16(group * head_dim, 0.5f), o32(group * head_dim, 0.5f);
        AttendValues(s32.data(), group, head_dim, v.data(), stride, n, p_stride, o16.data());
        AttendValues(s32.data(), group, head_dim, vw.data(), stride, n, p_stride, o32.data());
        ASSERT_EQ(std::memcmp(o16.data(), o32.data(), o16.size() * 4), 0)
            << "head_dim " << head_dim << " group " << group << " n " << n;
      }
    }
  }
}

// The heads of a grouped-query group share their keys and values, and the kernels take them
// together; each head's scores and output must still be bitwise what that head gives alone,
// so that a model's answer does not depend on how its heads are grouped (nor on the tiles the
// kernels pick for each group size). F32 and F16 caches, every group size up to 8.
template <typename T>
void ExpectGroupedEqualsAlone(const std::vector<T>& k, const std::vector<T>& v, std::mt19937& rng) {
  for (std::size_t head_dim : {8u, 12u, 64u, 96u, 128u}) {
    for (std::size_t group = 1; group <= 8; ++group) {
      for (std::size_t n : {1u, 2u, 3u, 5u, 8u, 13u, 37u}) {
        const std::size_t stride = 2 * head_dim + 4;
        ASSERT_LE(n * stride, k.size());
        const auto q = Normal(group * head_dim, rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        const std::size_t p_stride = n + 3;
        std::vector<float> together(group * p_stride, 0.0f), alone(group * p_stride, 0.0f);
        AttendKeys(q.data(), group, head_dim, k.data(), stride, n, scale, together.data(),
                   p_stride);
        for (std::size_t g = 0; g < group; ++g) {
          AttendKeys(q.data() + g * head_dim, 1, head_dim, k.data(), stride, n, scale,
                     alone.data() + g * p_stride, p_stride);
        }
        ASSERT_EQ(std::memcmp(together.data(), alone.data(), together.size() * 4), 0)
            << "keys: head_dim " << head_dim << " group " << group << " n " << n;
        for (std::size_t g = 0; g < group; ++g) Softmax(&alone[g * p_stride], n);
        std::vector<float> o_together(group * head_dim, 0.25f), o_alone(group * head_dim, 0.25f);
        AttendValues(alone.data(), group, head_dim, v.data(), stride, n, p_stride,
                     o_together.data());
        for (std::size_t g = 0; g < group; ++g) {
          AttendValues(alone.data() + g * p_stride, 1, head_dim, v.data(), stride, n, p_stride,
                       o_alone.data() + g * head_dim);
        }
        ASSERT_EQ(std::memcmp(o_together.data(), o_alone.data(), o_together.size() * 4), 0)
            << "values: head_dim " << head_dim << " group " << group << " n " << n;
      }
    }
  }
}

TEST(Kernels, GroupedHeadsGetBitwiseWhatEachHeadGetsAlone) {
  std::mt19937 rng(13);
  const std::size_t size = 37 * (2 * 128 + 4);
  const auto kf = Normal(size, rng), vf = Normal(size, rng);
  ExpectGroupedEqualsAlone(kf, vf, rng);
  std::vector<std::uint16_t> k(size), v(size);
  FloatsToHalves(kf.data(), k.data(), size);
  FloatsToHalves(vf.data(), v.data(), size);
  ExpectGroupedEqualsAlone(k, v, rng);
}

TEST(Kernels, SoftmaxOfLargeAndEqualScores) {
  // Far-apart scores underflow to 0 rather than giving NaN; equal ones share evenly.
  std::vector<float> x = {0.0f, -1000.0f, 50.0f, 50.0f, -200.0f, 49.0f, 50.0f, -INFINITY, 50.0f};
  Softmax(x.data(), x.size());
  const double e1 = std::exp(-1.0), sum = 4 + e1;
  EXPECT_NEAR(x[2], 1 / sum, 1e-7);
  EXPECT_NEAR(x[5], e1 / sum, 1e-7);
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_EQ(x[7], 0.0f);
  EXPECT_LT(x[0], 1e-20f);
}

TEST(Kernels, SwiGluMatchesAReference) {
  std::mt19937 rng(9);
  for (std::size_t n : {1u, 8u, 13u, 2048u}) {
    auto gate = Normal(n, rng, 4.0f);
    if (n > 8) gate[3] = 120.0f, gate[5] = -120.0f, gate[6] = 0.0f;  // e^-x past the clamps
    const auto up = Normal(n, rng);
    std::vector<float> out(gate);
    SwiGlu(out.data(), up.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      const double g = gate[i], ref = g / (1.0 + std::exp(-g)) * up[i];
      EXPECT_NEAR(out[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << "n " << n << " i " << i;
    }
  }
}

}  // namespace
}  // namespace tidelane::engine
