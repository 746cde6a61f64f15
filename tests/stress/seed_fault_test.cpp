// seed_fault_test.cpp — the seed commit's bug, brought back on purpose.
//
// "smp_call_function_many: handle concurrent clearing of mask": on the
// classic engine, a caller whose mask is cleared by other threads between
// the fast-path look and the `and` computes refs == 0. Without the fix it
// queues its call block anyway; no handler ever runs a block with refs == 0,
// so nobody unlocks it, and the caller's next csd_lock (or its wait) spins
// forever. The faults skip_seed_fix and widen_mask_window (a delay in that
// window, as the kernel author needed to hit the race) bring it back; the
// stall watchdog names it; a child process keeps the hang out of the suite.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "fault_injection.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
namespace fault = xcall::detail::fault;

constexpr int kPermaSpinExit = 42;
constexpr xcall::cpu_t kCpus = 4;

/// How long each variant runs: the unfixed one must hang well inside it.
std::chrono::nanoseconds scenario_time() {
  return std::max<std::chrono::nanoseconds>(xcall_test::stress_duration(), 3s);
}

void count_run(void* runs) { static_cast<std::atomic<long>*>(runs)->fetch_add(1); }

/// The seed's scenario: a caller sets bits of a live mask (like a lazy-TLB
/// mm_cpumask) and calls call_function_many on it while two threads keep
/// clearing bits of the same mask. Returns the number of stall reports.
int run_seed_scenario(std::chrono::nanoseconds duration, bool exit_on_stall) {
  std::atomic<int> stalls{0};
  xcall::domain_options opts;
  opts.nr_cpus = kCpus;
  opts.idle = xcall::idle_mode::sleep;
  opts.engine_kind = xcall::engine::classic;
  opts.stall_timeout = 500ms;
  opts.on_stall = [&](const xcall::stall_report& r) {
    if (r.unstuck) return;
    stalls.fetch_add(1);
    if (exit_on_stall) {
      std::fprintf(stderr, "PERMA-SPIN detected: %s\n", xcall::format_stall_report(r).c_str());
      std::fflush(stderr);
      _exit(kPermaSpinExit);
    }
  };
  xcall::domain dom(opts);
  xcall::cpumask mask(kCpus);
  std::atomic<bool> stop{false};
  std::atomic<long> runs{0};

  std::vector<std::thread> clearers;
  for (unsigned t = 0; t < 2; ++t) {
    clearers.emplace_back([&, t] {
      std::minstd_rand rng(t + 1);
      while (!stop.load(std::memory_order_relaxed)) {
        mask.reset(1 + rng() % (kCpus - 1));
        std::this_thread::sleep_for(50us);
      }
    });
  }
  long calls = 0;
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    for (xcall::cpu_t c = 1; c < kCpus; ++c) mask.set(c);
    EXPECT_FALSE(dom.call_function_many(mask, count_run, &runs, calls % 2 == 0));
    ++calls;
  }
  stop.store(true);
  for (auto& t : clearers) t.join();
  // A final waiting call to every CPU: every earlier no-wait call has run.
  EXPECT_FALSE(dom.call_function(count_run, &runs, true));
  EXPECT_GT(calls, 0);
  EXPECT_GT(runs.load(), 0);
  return stalls.load();
}

TEST(SeedFault, WithoutTheFixTheCallerPermaSpinsAndIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fault::arm(fault::kind::skip_seed_fix, 1);
        fault::arm(fault::kind::widen_mask_window, 2000);  // microseconds
        run_seed_scenario(scenario_time(), /*exit_on_stall=*/true);
        std::fprintf(stderr, "no perma-spin within the scenario\n");
        _exit(0);
      },
      testing::ExitedWithCode(kPermaSpinExit),
      "PERMA-SPIN detected: xcall: stall #1: .* multi-CPU call whose mask names no CPU");
}

TEST(SeedFault, WithTheFixTheSameScenarioRunsClean) {
  fault::disarm_all();
  fault::arm(fault::kind::widen_mask_window, 2000);
  EXPECT_EQ(run_seed_scenario(scenario_time(), /*exit_on_stall=*/false), 0);
  fault::disarm_all();
}

}  // namespace
