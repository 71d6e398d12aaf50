// Helpers shared by the engine's tests: greedy decoding of one sequence and the skip for tests
// that need a CUDA device.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "router/engine/engine.h"

namespace tidelane::engine::test_util {

inline std::int32_t Argmax(const std::vector<float>& v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Greedy decoding of `n` tokens after `prompt` on a sequence of its own (freed after), one
// token per pass: the reference a batched or moved sequence must reproduce. With
// `first_logits`, also the prompt pass's logits.
inline std::vector<std::int32_t> DecodeAlone(Engine& e, const std::vector<std::int32_t>& prompt,
                                             int n, std::vector<float>* first_logits = nullptr) {
  const SequenceId s = e.NewSequence();
  Engine::Step step{s, prompt};
  auto logits = e.Forward({&step, 1});
  EXPECT_TRUE(logits.ok()) << logits.error();
  if (first_logits != nullptr && logits.ok()) *first_logits = logits->front();
  std::vector<std::int32_t> out;
  for (int i = 0; i < n && logits.ok(); ++i) {
    out.push_back(Argmax(logits->front()));
    const std::int32_t one[] = {out.back()};
    Engine::Step next{s, one};
    logits = e.Forward({&next, 1});
    EXPECT_TRUE(logits.ok()) << logits.error();
  }
  e.FreeSequence(s);
  return out;
}

}  // namespace tidelane::engine::test_util

// Skips the calling test, with the reason, where there is no CUDA device to run on (needs
// router/engine/cuda/cuda_backend.h).
#define SKIP_WITHOUT_CUDA_DEVICE()                                                             \
  do {                                                                                         \
    if (auto info = ::tidelane::engine::CudaDeviceInfo(); !info) GTEST_SKIP() << info.error(); \
  } while (0)
