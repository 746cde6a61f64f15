// composition_stress_test.cpp — races between features, run for the stress
// duration: two queuers of one async descriptor while its target goes down
// and up (a refused flight must end with a release, or ThreadSanitizer sees
// the next winner race the loser), and cpu_down against a continuous stream
// of overlapping classic callers (the dying CPU's barrier must not starve).
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::owned_options;
using xcall_test::run_with_deadline;
using xcall_test::stopwatch;
using xcall_test::stress_deadline;

class AsyncDescriptorHotplugTest : public xcall_test::engine_test {};

struct shared_async {
  xcall::call_single_data csd;
  std::atomic<int> runs{0};
};

TEST_P(AsyncDescriptorHotplugTest, TwoQueuersOfOneDescriptorWhileItsTargetFlips) {
  domain d(owned_options(2, engine()));
  shared_async s;
  s.csd.func = [](void* p) noexcept { static_cast<shared_async*>(p)->runs.fetch_add(1); };
  s.csd.info = &s;
  std::atomic<bool> stop{false};
  std::atomic<long> queued{0};
  run_with_deadline(stress_deadline(), "async queuers against hotplug", [&] {
    auto queuer = [&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const std::error_code ec = d.call_function_single_async(1, s.csd);
        // The winner writes the descriptor's plain fields (target, queue
        // link) while it holds it; a refused flight must hand them over to
        // the next winner with a release, or ThreadSanitizer sees a race.
        if (!ec) queued.fetch_add(1, std::memory_order_relaxed);
      }
    };
    std::thread a(queuer);
    std::thread b(queuer);
    stopwatch sw;
    while (!sw.expired()) {
      ASSERT_FALSE(d.cpu_down(1));
      ASSERT_FALSE(d.cpu_up(1));
    }
    stop.store(true);
    a.join();
    b.join();
  });
  xcall_test::eventually([&] { return !s.csd.in_flight(); });
  EXPECT_GT(queued.load(), 0);
}

XCALL_TEST_ON_EVERY_ENGINE(AsyncDescriptorHotplugTest);

TEST(ClassicHotplugBarrierTest, CpuDownAmidOverlappingCallersFinishes) {
  domain d(owned_options(4, xcall::engine::classic));
  std::atomic<bool> stop{false};
  std::atomic<long> downs{0};
  xcall::cpumask all(4);
  for (cpu_t c = 0; c < 4; ++c) all.set(c);
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t) {
    callers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        (void)d.call_function_many(all, &xcall_test::noop, nullptr, false);
      }
    });
  }
  // Each cpu_down must finish within the deadline while callers keep coming.
  run_with_deadline(stress_deadline(), "cpu_down amid overlapping classic callers", [&] {
    stopwatch sw;
    while (!sw.expired()) {
      ASSERT_FALSE(d.cpu_down(3));
      ASSERT_FALSE(d.cpu_up(3));
      downs.fetch_add(1);
    }
  });
  stop.store(true);
  for (auto& t : callers) t.join();
  EXPECT_GT(downs.load(), 0);
}

}  // namespace
