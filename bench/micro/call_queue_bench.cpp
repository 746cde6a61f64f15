// call_queue_bench.cpp — the per-CPU call queue (src/call_queue.hpp, private
// to the library): push N descriptors, then take them all, for N = 1, 16, 256;
// single-threaded (the cost of the operations themselves, every line in
// cache) and with one producer and one consumer on different threads (the
// cost with the queue's line and each descriptor's line moving between
// cores, as in a real cross-call).
//
// The consumer releases each descriptor (csd_ops::unlock, the csd_unlock of
// a no-wait call); the producer re-uses a descriptor only once it is
// released, as xcall does.
//
//   xcall-micro --benchmark_filter=queue
//
// Ordering: the queue's own (push release / take acquire, call_queue.hpp)
// and the descriptor lock's (release by the consumer, acquire by the
// producer, csd_ops.hpp); `stop` is a relaxed flag that publishes nothing
// (the final drain after it and thread join order the rest).
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "call_queue.hpp"
#include "csd_ops.hpp"

namespace {

using xcall::call_single_data;
using xcall::detail::call_queue;
using xcall::detail::csd_ops;

void nop(void*) {}

void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// Spins a little, then yields on every turn: on a small or loaded machine
/// the thread we wait for may need our core.
template <class Ready>
void wait_for(Ready&& ready) {
  for (unsigned i = 0; !ready(); ++i) {
    if (i < (1u << 14)) {
      pause();
    } else {
      std::this_thread::yield();
    }
  }
}

/// The CPUs the process may use, read once, before anything here pins a
/// thread (a thread inherits its creator's affinity: read later, from a
/// pinned thread, it would name one CPU).
const std::vector<int>& allowed_cpus() {
  static const std::vector<int> cpus = [] {
    std::vector<int> v;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
      for (int i = 0; i < CPU_SETSIZE; ++i) {
        if (CPU_ISSET(i, &allowed)) v.push_back(i);
      }
    }
    return v;
  }();
  return cpus;
}

/// Pins the calling thread to the `k`-th CPU the process may use (modulo
/// their number), so producer and consumer sit on different cores when there
/// are two.
void pin_to_allowed(unsigned k) {
  const std::vector<int>& cpus = allowed_cpus();
  if (cpus.size() < 2) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus[k % cpus.size()], &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

/// Walks a taken list, releasing each descriptor; returns how many.
std::size_t release_all(call_single_data* n) noexcept {
  std::size_t count = 0;
  while (n != nullptr) {
    call_single_data* next = csd_ops::next(*n);
    csd_ops::unlock(*n);
    n = next;
    ++count;
  }
  return count;
}

void BM_queue_push_take_single_thread(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto csds = std::make_unique<call_single_data[]>(n);
  for (std::size_t i = 0; i < n; ++i) csds[i].func = nop;
  call_queue q;
  q.open();
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      csd_ops::lock(csds[i], /*sync=*/false);
      benchmark::DoNotOptimize(q.push(csds[i]));
    }
    benchmark::DoNotOptimize(release_all(q.take_all()));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_queue_push_take_single_thread)->ArgName("N")->Arg(1)->Arg(16)->Arg(256);

/// One producer (the benchmark thread) pushes N per iteration from a ring of
/// 4N descriptors; one consumer thread takes all and releases, spinning.
/// Producer and consumer are pinned to the first two CPUs the process may use.
void BM_queue_push_take_1p1c(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::size_t ring = 4 * n;
  auto csds = std::make_unique<call_single_data[]>(ring);
  for (std::size_t i = 0; i < ring; ++i) csds[i].func = nop;
  call_queue q;
  q.open();
  allowed_cpus();  // read before this thread pins itself
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    pin_to_allowed(0);
    unsigned idle = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (release_all(q.take_all()) != 0) {
        idle = 0;
      } else if (++idle < (1u << 16)) {  // yield only after a long idle stretch
        pause();
      } else {
        std::this_thread::yield();
      }
    }
    release_all(q.take_all());
  });
  pin_to_allowed(1);
  std::size_t next = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      call_single_data& csd = csds[next];
      next = next + 1 == ring ? 0 : next + 1;
      wait_for([&csd] { return !csd_ops::is_locked(csd); });  // csd_lock
      csd_ops::lock(csd, /*sync=*/false);
      benchmark::DoNotOptimize(q.push(csd));
    }
  }
  for (std::size_t i = 0; i < ring; ++i) {
    wait_for([&] { return !csd_ops::is_locked(csds[i]); });
  }
  stop.store(true, std::memory_order_relaxed);
  consumer.join();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_queue_push_take_1p1c)->ArgName("N")->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

}  // namespace
