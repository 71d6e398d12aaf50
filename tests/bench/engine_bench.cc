// Engine throughput against the machine's limits. Two modes, one process each, so a model's
// peak RSS is not inflated by the bandwidth buffer:
//
//   engine_bench --machine [--threads 1,2]
//     memory read bandwidth (a streaming read of a 1 GiB buffer in 2 MiB pages, as the engine
//     holds its weights, far beyond the caches; the best of a plain read and reads with software
//     prefetch, since the kernels prefetch too) and peak FMA throughput (AVX2 FMAs on 12
//     independent accumulators), per thread count.
//   engine_bench --model M.gguf [--threads 1,2] [--prompt 512] [--decode 128] [--kv-type f16]
//                [--mmap] [--no-interleave] [--batches 1,4,16] [--steps 32] [--repeats 3]
//     prefill tok/s (one step of `prompt` tokens), decode tok/s (`decode` tokens, batch 1)
//     and aggregate decode tok/s at batch 1/4/16 (also per second of process CPU time, the
//     *_cpu_* fields: with 1 thread those leave out time lost to other processes), then the
//     process's VmHWM. The KV cache is F16 (the serving default) unless --kv-type f32; the
//     weights are read into 2 MiB pages (the engine's default) unless --mmap maps the file;
//     --no-interleave keeps Q4_K matrices in the file's layout there (EngineOptions::
//     interleave_q4k), for A/B runs of the interleaved kernels. --batches and --steps pick the
//     aggregate decode's batch sizes and steps (for profiling one batch size; the report uses
//     the defaults); each batch size's figure is the best of --repeats runs.
//
// Each prints one JSON object per line; scripts/bench-engine turns them into the table in
// docs/benchmarks/engine.md. Not a test: run it on a quiet machine.
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "router/engine/engine.h"
#include "router/engine/quant_dot.h"
#include "router/engine/sampler.h"

namespace {

using Clock = std::chrono::steady_clock;
using tidelane::engine::Engine;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// CPU time of the whole process (all threads). On a shared machine a 1-thread run's CPU time
// leaves out the time the core spent on other processes, which wall time does not; with more
// threads it also counts the pool's waiting, so only the 1-thread figures are comparable.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = s.find(',', pos);
    out.push_back(std::atoi(s.substr(pos, comma - pos).c_str()));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// ---- Machine limits.

// Sums 64-bit words with four independent vector accumulators: loads are the only work.
// `ahead` > 0 also prefetches that many bytes ahead (into L1), as the Q4_K and Q8_0 kernels
// do: on some CPUs (an Intel Xeon here) a single stream's hardware prefetch alone reads well
// below what the core can, and a bound measured without it would flatter the kernels.
__attribute__((target("avx2"))) std::uint64_t ReadSum(const std::uint64_t* p, std::size_t n,
                                                      std::size_t ahead) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  const char* const bytes = reinterpret_cast<const char*>(p);
  for (std::size_t i = 0; i + 16 <= n; i += 16) {
    if (ahead > 0) {
      _mm_prefetch(bytes + 8 * i + ahead, _MM_HINT_T0);
      _mm_prefetch(bytes + 8 * i + ahead + 64, _MM_HINT_T0);
    }
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) std::uint64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return t[0] + t[1] + t[2] + t[3];
}

// Best of several passes over the whole buffer, split across `threads`, each pass with one of
// the prefetch distances (none, 1, 4 and 16 KiB ahead).
double ReadBandwidth(const std::uint64_t* buf, std::size_t words, int threads) {
  double best = 0;
  std::vector<std::uint64_t> sink(static_cast<std::size_t>(threads));
  constexpr std::size_t kAhead[] = {0, 1024, 4096, 16384};
  for (int rep = 0; rep < 8; ++rep) {
    const std::size_t ahead = kAhead[rep % 4];
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(threads));
    const std::size_t per = words / static_cast<std::size_t>(threads) / 16 * 16;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back(
          [&, t] { sink[t] = ReadSum(buf + per * static_cast<std::size_t>(t), per, ahead); });
    }
    for (auto& th : pool) th.join();
    const double s = Seconds(t0);
    best = std::max(best, static_cast<double>(per * static_cast<std::size_t>(threads) * 8) / s);
  }
  if (sink[0] == 42) std::fputs("", stderr);  // keep the sums alive
  return best;
}

// 12 independent FMA chains hide the 4-cycle latency of 2 FMA pipes (8 in flight needed).
__attribute__((target("avx2,fma"))) float FmaLoop(long iters) {
  // Fully unrolled so the accumulators live in registers at any optimisation level (at -O2
  // GCC keeps a rolled loop's array on the stack, which measures loads and stores instead).
  __m256 acc[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0];
}

double PeakFlops(int threads) {
  const long iters = 50'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(threads));
    std::vector<float> sink(static_cast<std::size_t>(threads));
    const auto t0 = Clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[t] = FmaLoop(iters); });
    for (auto& th : pool) th.join();
    const double s = Seconds(t0);
    best = std::max(best, static_cast<double>(iters) * 12 * 16 * threads / s);
    if (sink[0] == 42) std::fputs("", stderr);
  }
  return best;
}

int Machine(const std::vector<int>& threads) {
  const std::size_t bytes = std::size_t{1} << 30;
  // In 2 MiB pages where the system gives them, like the engine's copy of the weights (a 4 KiB
  // page ends each hardware prefetch stream and costs a TLB walk): the reads then measure
  // memory, not page walks.
  const std::size_t huge = std::size_t{2} << 20;
  void* map =
      mmap(nullptr, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    std::perror("engine_bench: mmap");
    return 1;
  }
  const std::size_t skip = (huge - reinterpret_cast<std::uintptr_t>(map) % huge) % huge;
  auto* buf = reinterpret_cast<std::uint64_t*>(static_cast<char*>(map) + skip);
  madvise(buf, bytes, MADV_HUGEPAGE);
  for (std::size_t i = 0; i < bytes / 8; ++i) buf[i] = i;
  for (int t : threads) {
    std::printf(
        "{\"kind\":\"machine\",\"threads\":%d,\"read_bandwidth_bytes_s\":%.4g,"
        "\"peak_flops\":%.4g}\n",
        t, ReadBandwidth(buf, bytes / 8, t), PeakFlops(t));
    std::fflush(stdout);
  }
  munmap(map, bytes + huge);
  return 0;
}

// ---- The engine.

long VmHwmKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

const char* IsaName() {
  switch (tidelane::engine::ActiveFastMatMulIsa()) {
    case tidelane::engine::FastMatMulIsa::kAvx512Vnni:
      return "avx512-vnni";
    case tidelane::engine::FastMatMulIsa::kAvx2:
      return "avx2";
    default:
      return "scalar";
  }
}

// The engine's greedy pick (what Sampler does at temperature 0).
std::int32_t Argmax(const std::vector<float>& v) {
  return tidelane::engine::Greedy(v);
}

struct ModelRun {
  std::vector<int> threads = {1, 2};
  int prompt_len = 512;
  int decode_len = 128;
  std::vector<int> batches = {1, 4, 16};
  int steps = 32;
  int repeats = 3;
  tidelane::engine::KvType kv_type = tidelane::engine::KvType::kF16;
  tidelane::engine::Placement weights = tidelane::engine::Placement::kHugePages;
  bool interleave = true;
};

int Model(const std::string& path, const ModelRun& run) {
  const int prompt_len = run.prompt_len, decode_len = run.decode_len;
  const auto kv_type = run.kv_type;
  // 2048 unless a long --steps at a large batch needs more (each sequence: 32 + steps
  // positions, in whole 16-position blocks).
  std::size_t kv_positions = 2048;
  const auto per_sequence = static_cast<std::size_t>(32 + run.steps + 15) / 16 * 16;
  for (int b : run.batches) {
    kv_positions = std::max(kv_positions, static_cast<std::size_t>(b) * per_sequence);
  }
  std::mt19937 rng(1);
  for (int t : run.threads) {
    auto loaded = Engine::Load(path, {.threads = t,
                                      .kv_positions = kv_positions,
                                      .kv_type = kv_type,
                                      .weights = run.weights,
                                      .interleave_q4k = run.interleave});
    if (!loaded.ok()) {
      std::fprintf(stderr, "engine_bench: %s\n", loaded.error().c_str());
      return 1;
    }
    Engine& e = **loaded;
    const auto& c = e.config();
    std::uniform_int_distribution<std::int32_t> token(3, static_cast<std::int32_t>(c.vocab) - 1);
    auto tokens = [&](int n) {
      std::vector<std::int32_t> v(static_cast<std::size_t>(n));
      for (auto& x : v) x = token(rng);
      return v;
    };
    auto forward = [&](std::span<const Engine::Step> steps) {
      auto r = e.Forward(steps);
      if (!r.ok()) {
        std::fprintf(stderr, "engine_bench: %s\n", r.error().c_str());
        std::exit(1);
      }
      return std::move(r).value();
    };

    // Warm-up: touches every mapped weight page once.
    {
      const auto s = e.NewSequence();
      const auto p = tokens(8);
      Engine::Step step{s, p};
      forward({&step, 1});
      e.FreeSequence(s);
    }

    // Prefill: one step of prompt_len tokens (best of two), then decode on the same sequence.
    double prefill_s = 1e30, prefill_cpu_s = 1e30;
    tidelane::engine::SequenceId seq = 0;
    for (int rep = 0; rep < 2; ++rep) {
      if (seq != 0) e.FreeSequence(seq);
      seq = e.NewSequence();
      const auto p = tokens(prompt_len);
      Engine::Step step{seq, p};
      const auto t0 = Clock::now();
      const double cpu_p = CpuSeconds();
      forward({&step, 1});
      prefill_s = std::min(prefill_s, Seconds(t0));
      prefill_cpu_s = std::min(prefill_cpu_s, CpuSeconds() - cpu_p);
    }
    std::vector<std::int32_t> next = {token(rng)};
    const auto t0 = Clock::now();
    const double cpu0 = CpuSeconds();
    for (int i = 0; i < decode_len; ++i) {
      Engine::Step step{seq, next};
      next[0] = Argmax(forward({&step, 1}).front());
    }
    const double decode_s = Seconds(t0), decode_cpu_s = CpuSeconds() - cpu0;
    e.FreeSequence(seq);

    // Aggregate decode: B sequences with 32-token prompts, then 32 steps of one token each;
    // the best of run.repeats such runs (batch 1's 32 steps are ~40 ms, so one slow moment of
    // a shared host moved the batch-16 / batch-1 ratio by tenths).
    std::string agg, agg_cpu;
    for (int batch : run.batches) {
      double s = 1e30, cpu_s = 1e30;
      for (int repeat = 0; repeat < run.repeats; ++repeat) {
        std::vector<tidelane::engine::SequenceId> ids;
        std::vector<std::vector<std::int32_t>> prompts, last(static_cast<std::size_t>(batch));
        std::vector<Engine::Step> steps;
        steps.reserve(static_cast<std::size_t>(batch));
        for (int b = 0; b < batch; ++b) {
          ids.push_back(e.NewSequence());
          prompts.push_back(tokens(32));
        }
        for (int b = 0; b < batch; ++b) steps.push_back({ids[b], prompts[b]});
        auto logits = forward(steps);
        const int kSteps = run.steps;
        const auto t1 = Clock::now();
        const double cpu1 = CpuSeconds();
        for (int i = 0; i < kSteps; ++i) {
          steps.clear();
          for (int b = 0; b < batch; ++b) {
            last[b] = {Argmax(logits[b])};
            steps.push_back({ids[b], last[b]});
          }
          logits = forward(steps);
        }
        s = std::min(s, Seconds(t1));
        cpu_s = std::min(cpu_s, CpuSeconds() - cpu1);
        for (auto id : ids) e.FreeSequence(id);
      }
      const int kSteps = run.steps;
      char item[64];
      std::snprintf(item, sizeof item, "%s\"%d\":%.2f", agg.empty() ? "" : ",", batch,
                    batch * kSteps / s);
      agg.append(item);
      std::snprintf(item, sizeof item, "%s\"%d\":%.2f", agg_cpu.empty() ? "" : ",", batch,
                    batch * kSteps / cpu_s);
      agg_cpu.append(item);
    }

    std::uint64_t params = 0;
    for (const auto& l : e.model().layers()) {
      for (const auto* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
        params += m->rows * m->cols;
    }
    const std::uint64_t output_params = e.model().output().rows * e.model().output().cols;
    // Keys and values of one position in every layer: what each decode step reads per
    // position of its context.
    const std::uint64_t kv_bytes_per_position =
        c.layers * 2 * c.kv_dim() * tidelane::engine::KvElementBytes(kv_type);
    const std::uint64_t kv_bytes = (kv_positions + 15) / 16 * 16 * kv_bytes_per_position;
    std::printf(
        "{\"kind\":\"model\",\"model\":\"%s\",\"type\":\"%s\",\"threads\":%d,"
        "\"layer_params\":%llu,\"output_params\":%llu,\"weight_bytes_per_token\":%llu,"
        "\"file_bytes\":%llu,\"kv_type\":\"%s\",\"kv_bytes\":%llu,"
        "\"kv_bytes_per_position\":%llu,\"prompt\":%d,\"decode\":%d,"
        "\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,\"aggregate_tok_s\":{%s},"
        "\"prefill_cpu_tok_s\":%.2f,\"decode_cpu_tok_s\":%.2f,\"aggregate_cpu_tok_s\":{%s},"
        "\"vmhwm_kib\":%ld,\"kernels\":\"%s\",\"weights\":\"%s\"}\n",
        c.name.c_str(),
        std::string(tidelane::engine::TensorTypeName(e.model().layers()[0].wq.type)).c_str(), t,
        static_cast<unsigned long long>(params), static_cast<unsigned long long>(output_params),
        static_cast<unsigned long long>(e.model().WeightBytesPerToken()),
        static_cast<unsigned long long>(std::filesystem::file_size(path)),
        std::string(tidelane::engine::KvTypeName(kv_type)).c_str(),
        static_cast<unsigned long long>(kv_bytes),
        static_cast<unsigned long long>(kv_bytes_per_position), prompt_len, decode_len,
        prompt_len / prefill_s, decode_len / decode_s, agg.c_str(), prompt_len / prefill_cpu_s,
        decode_len / decode_cpu_s, agg_cpu.c_str(), VmHwmKib(), IsaName(),
        // Where the weights ended up (a model too large to copy is mapped whatever was asked).
        e.model().file().placement() == tidelane::engine::Placement::kMapped ? "mapped"
                                                                             : "huge-pages");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  bool machine = false;
  ModelRun run;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "engine_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto positive = [&] { return std::max(1, std::atoi(value().c_str())); };
    if (a == "--machine") {
      machine = true;
    } else if (a == "--model") {
      model = value();
    } else if (a == "--threads") {
      run.threads = ParseList(value());
    } else if (a == "--prompt") {
      run.prompt_len = positive();
    } else if (a == "--decode") {
      run.decode_len = positive();
    } else if (a == "--batches") {
      run.batches = ParseList(value());
    } else if (a == "--steps") {
      run.steps = positive();
    } else if (a == "--repeats") {
      run.repeats = positive();
    } else if (a == "--kv-type") {
      const auto parsed = tidelane::engine::ParseKvType(value());
      if (!parsed) {
        std::fprintf(stderr, "engine_bench: --kv-type is f32 or f16\n");
        return 2;
      }
      run.kv_type = *parsed;
    } else if (a == "--mmap") {
      run.weights = tidelane::engine::Placement::kMapped;
    } else if (a == "--no-interleave") {
      run.interleave = false;
    } else {
      std::fprintf(stderr,
                   "usage: engine_bench --machine [--threads 1,2]\n"
                   "       engine_bench --model M.gguf [--threads 1,2] [--prompt 512] "
                   "[--decode 128] [--kv-type f16|f32] [--mmap] [--no-interleave] "
                   "[--batches 1,4,16] [--steps 32] [--repeats 3]\n");
      return 2;
    }
  }
  if (machine) return Machine(run.threads);
  if (model.empty()) {
    std::fprintf(stderr, "engine_bench: --machine or --model M.gguf\n");
    return 2;
  }
  return Model(model, run);
}
