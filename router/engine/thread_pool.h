// ThreadPool: a fixed set of worker threads that run one parallel loop at a time. The engine's
// only threads; kernels split their rows across them with ParallelFor.
//
// Threading: ParallelFor is called from one thread at a time (the engine's forward pass); it
// blocks until every chunk has run. Idle threads spin for about 50 µs before sleeping, so the
// hundreds of short loops of a forward pass do not each pay for a wake-up. The calling thread takes
// part in the work, so a pool of size 1 has no extra thread at all.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tidelane::engine {

class ThreadPool {
 public:
  // `threads` >= 1 counts the caller.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end, thread_index) over [0, n) split into size() contiguous chunks.
  void ParallelFor(std::size_t n, const std::function<void(std::size_t, std::size_t, int)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;  // only for sleeping and waking; the hand-off itself is lock-free
  std::condition_variable start_, done_;
  // Written by ParallelFor before it bumps generation_, read by workers after they see it.
  const std::function<void(std::size_t, std::size_t, int)>* job_ = nullptr;
  std::size_t job_n_ = 0;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};   // workers still running the current loop
  std::atomic<int> sleeping_{0};  // workers waiting on start_
  bool stop_ = false;
};

}  // namespace tidelane::engine
