#include "router/engine/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tidelane::engine {
namespace {

std::pair<std::size_t, std::size_t> Chunk(std::size_t n, int parts, int index) {
  const std::size_t per = n / parts, extra = n % parts;
  const std::size_t i = static_cast<std::size_t>(index);
  const std::size_t begin = i * per + std::min(i, extra);
  return {begin, begin + per + (i < extra ? 1 : 0)};
}

// A forward pass is a few hundred parallel loops of tens of microseconds each; waking a
// sleeping thread costs about as much. So threads spin briefly (about 50 µs) for the next
// loop or for the others to finish, and only then sleep.
constexpr int kSpins = 2000;

void Pause() {
  _mm_pause();
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < std::max(threads, 1); ++i)
    workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::ParallelFor(std::size_t n,
                             const std::function<void(std::size_t, std::size_t, int)>& fn) {
  if (workers_.empty() || n < 2) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(static_cast<int>(workers_.size()));
  generation_.fetch_add(1);  // publishes job_ and job_n_ to workers that see the new value
  if (sleeping_.load() > 0) {
    std::lock_guard lock(mu_);
    start_.notify_all();
  }
  auto [b, e] = Chunk(n, size(), 0);
  if (b < e) fn(b, e, 0);
  for (int i = 0; i < kSpins && pending_.load() != 0; ++i) Pause();
  if (pending_.load() != 0) {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return pending_.load() == 0; });
  }
}

void ThreadPool::WorkerLoop(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpins && generation_.load() == seen; ++i) Pause();
    if (generation_.load() == seen) {
      std::unique_lock lock(mu_);
      sleeping_.fetch_add(1);
      start_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      sleeping_.fetch_sub(1);
      if (stop_) return;
    }
    seen = generation_.load();
    const auto* job = job_;
    const std::size_t n = job_n_;
    auto [b, e] = Chunk(n, size(), index);
    if (b < e) (*job)(b, e, index);
    if (pending_.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);
      done_.notify_one();
    }
  }
}

}  // namespace tidelane::engine
