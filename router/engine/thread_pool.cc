#include "router/engine/thread_pool.h"

namespace tidelane::engine {
namespace {

std::pair<std::size_t, std::size_t> Chunk(std::size_t n, int parts, int index) {
  const std::size_t per = n / parts, extra = n % parts;
  const std::size_t i = static_cast<std::size_t>(index);
  const std::size_t begin = i * per + std::min(i, extra);
  return {begin, begin + per + (i < extra ? 1 : 0)};
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
  {
    std::lock_guard lock(mu_);
    job_ = &fn;
    job_n_ = n;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  auto [b, e] = Chunk(n, size(), 0);
  if (b < e) fn(b, e, 0);
  std::unique_lock lock(mu_);
  done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::WorkerLoop(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(std::size_t, std::size_t, int)>* job;
    std::size_t n;
    {
      std::unique_lock lock(mu_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
    }
    auto [b, e] = Chunk(n, size(), index);
    if (b < e) (*job)(b, e, index);
    {
      std::lock_guard lock(mu_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

}  // namespace tidelane::engine
