// The attention and feed-forward kernels (kernels.h) against double-precision references, for
// head sizes that take the AVX2 paths (multiples of 8) and those that take the plain loops, and
// counts of positions that end inside a group of 8 (the SIMD tails).
#include "router/engine/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
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
