// stats_test.cpp — per-CPU counters (domain::stats) and format_stats.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <string>
#include <thread>

#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;

void nop(void*) {}

xcall::domain_options opts(xcall::idle_mode idle) {
  xcall::domain_options o;
  o.nr_cpus = 2;
  o.idle = idle;
  return o;
}

TEST(Stats, CountsCallsRunPerCpu) {
  xcall::domain dom(opts(xcall::idle_mode::adaptive));
  for (int i = 0; i < 7; ++i) ASSERT_FALSE(dom.call_function_single(1, nop, nullptr, true));
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(dom.on_each_cpu(nop, nullptr, true));
  const auto stats = dom.stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].cpu, 0u);
  EXPECT_EQ(stats[0].calls_run, 3u);
  EXPECT_EQ(stats[1].calls_run, 10u);
  EXPECT_TRUE(stats[1].online);
}

TEST(Stats, SleepingTargetCostsARingPollingTargetSavesIt) {
  {
    xcall::domain dom(opts(xcall::idle_mode::sleep));
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(2ms);  // let the target fall asleep
      ASSERT_FALSE(dom.call_function_single(1, nop, nullptr, true));
    }
    const auto s = dom.stats()[1];
    EXPECT_GE(s.doorbells_rung, 1u);
    EXPECT_GE(s.sleeps, 1u);
  }
  {
    xcall::domain dom(opts(xcall::idle_mode::poll));
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(dom.call_function_single(1, nop, nullptr, true));
    const auto s = dom.stats()[1];
    EXPECT_EQ(s.doorbells_rung, 0u);
    EXPECT_EQ(s.sleeps, 0u);
    EXPECT_EQ(s.doorbells_saved, 5u);
  }
}

// Sleep mode polls before it sleeps while its sleeps keep being cut short
// (the grace of doorbell.hpp, after cpuidle-haltpoll): calls that follow
// each other closely cost a few futex wakes, not one each. The calls are
// 5 µs apart: more than the 64 pauses a host spins before it looks at the
// clock (up to about 3 µs, by CPU), less than the grace can grow to (20 µs).
// Without the grace every call rings (4000 of 4000 at 3 and 6 µs apart on
// the 2-vCPU machine of 2026-12-04; with it, 441 and 269); calls with no gap
// at all are caught by the 64 pauses either way.
TEST(Stats, BackToBackCallsToASleepModeCpuCostFewWakes) {
#if defined(XCALL_TEST_TSAN) || defined(XCALL_TEST_ASAN)
  // Every window here is a few microseconds of real time; a sanitizer makes
  // the call path and the host's wake-up several times slower, so the
  // host's sleeps no longer end within the 20 µs that grow its grace (under
  // ThreadSanitizer: 1837-1995 rings per 2000 calls, grace or not).
  GTEST_SKIP() << "timing windows of a few µs mean nothing under a sanitizer";
#endif
  xcall::domain dom(opts(xcall::idle_mode::sleep));
  const auto gap = [] {
    const auto end = std::chrono::steady_clock::now() + 5us;
    while (std::chrono::steady_clock::now() < end) {
    }
  };
  constexpr int kCalls = 2000;
  constexpr int kBatches = 10;
  // A preempted caller or host lets the grace run out and halve, and the
  // batch rings often: only batches in which the caller was not preempted
  // count (its involuntary context switches), and the best of those must
  // ring for fewer than a quarter of its calls. A machine too busy for any
  // such batch (other tests run alongside, -j) skips rather than guesses.
  const auto involuntary_switches = [] {
    rusage u{};
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_nivcsw;
  };
  std::uint64_t best = kCalls;
  int clean = 0;
  std::string seen;
  for (int b = 0; b < kBatches && best >= kCalls / 4; ++b) {
    std::this_thread::sleep_for(2ms);  // asleep, its grace back down
    const auto before = dom.stats()[1];
    const long preempted_before = involuntary_switches();
    for (int i = 0; i < kCalls; ++i) {
      ASSERT_FALSE(dom.call_function_single(1, nop, nullptr, true));
      gap();
    }
    const long preempted = involuntary_switches() - preempted_before;
    const auto after = dom.stats()[1];
    EXPECT_EQ(after.calls_run - before.calls_run, static_cast<std::uint64_t>(kCalls));
    const std::uint64_t rung = after.doorbells_rung - before.doorbells_rung;
    seen += (seen.empty() ? "" : ", ") + std::to_string(rung) + " (preempted " +
            std::to_string(preempted) + "x)";
    if (preempted > 2) continue;
    ++clean;
    best = std::min(best, rung);
  }
  if (clean == 0) GTEST_SKIP() << "the caller was preempted in every batch: " << seen;
  EXPECT_LT(best, static_cast<std::uint64_t>(kCalls / 4))
      << "a sleep-mode host went back to sleep between back-to-back calls (rings per batch of "
      << kCalls << " calls: " << seen << ")";
  // ... and once the calls stop, it goes back to sleep by itself: a call
  // after a pause costs a wake again (a few tries: a preempted host may not
  // have got to its sleep yet).
  EXPECT_TRUE(xcall_test::eventually([&] {
    std::this_thread::sleep_for(5ms);
    const std::uint64_t rung = dom.stats()[1].doorbells_rung;
    EXPECT_FALSE(dom.call_function_single(1, nop, nullptr, true));
    return dom.stats()[1].doorbells_rung > rung;
  }));
}

TEST(Stats, CallsDrainedOnTheWayDownAreCounted) {
  xcall::domain dom(opts(xcall::idle_mode::sleep));
  struct busy_state {
    std::atomic<bool> started{false};
    std::atomic<bool> release{false};
  } busy;
  // Keep CPU 1 busy so the next calls queue up behind it.
  ASSERT_FALSE(dom.call_function_single(
      1,
      [](void* p) {
        auto* b = static_cast<busy_state*>(p);
        b->started.store(true);
        while (!b->release.load()) std::this_thread::yield();
      },
      &busy, false));
  // Only once it runs: a host slow to wake could otherwise serve the down
  // request first and drain all four calls going offline.
  while (!busy.started.load()) std::this_thread::yield();
  xcall::call_single_data csds[3];
  for (auto& csd : csds) {
    csd.func = nop;
    ASSERT_FALSE(dom.call_function_single_async(1, csd));
  }
  std::thread down([&] { ASSERT_FALSE(dom.cpu_down(1)); });
  std::this_thread::sleep_for(20ms);
  busy.release.store(true);
  down.join();
  const auto s = dom.stats()[1];
  EXPECT_FALSE(s.online);
  EXPECT_EQ(s.calls_run, 4u);
  // The busy function may have returned before or after the down request
  // arrived: the three queued behind it ran either in a drain or going down.
  EXPECT_LE(s.drained_on_down, 3u);
  for (auto& csd : csds) EXPECT_FALSE(csd.in_flight());
}

TEST(Stats, FormatLooksLikeProcInterrupts) {
  std::vector<xcall::cpu_stats> stats(3);
  for (xcall::cpu_t i = 0; i < 3; ++i) {
    stats[i].cpu = i;
    stats[i].online = i != 2;
    stats[i].calls_run = 100 + i;
  }
  const std::string text = xcall::format_stats(stats);
  EXPECT_NE(text.find("CPU0"), std::string::npos) << text;
  EXPECT_NE(text.find("CPU2-"), std::string::npos) << text;  // offline marked
  EXPECT_NE(text.find("CFR:"), std::string::npos) << text;
  EXPECT_NE(text.find("100"), std::string::npos) << text;
  EXPECT_NE(text.find("102"), std::string::npos) << text;
  EXPECT_NE(text.find("Function call runs"), std::string::npos) << text;
  // Wrapping: two columns per block gives two header lines.
  const std::string wrapped = xcall::format_stats(stats, 2);
  std::size_t headers = 0;
  for (std::size_t at = wrapped.find("CPU0"); at != std::string::npos;
       at = wrapped.find("CPU", at + 1)) {
    ++headers;
  }
  EXPECT_EQ(headers, 3u);
  EXPECT_NE(wrapped.find("CPU2-"), wrapped.find("CPU0"));
}

}  // namespace
