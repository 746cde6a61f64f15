// fan_out_test.cpp — the doorbells of a multi-CPU call (src/fan_out_doorbell.hpp,
// src/wake_tree.hpp): rung after the last push, sleeping targets woken
// through a wake tree in which the woken CPUs wake the next ones.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::run_with_deadline;

/// Owned CPUs that sleep as soon as they are idle: every call must wake them.
xcall::domain_options sleeping_cpus(cpu_t n, xcall::engine e) {
  xcall::domain_options o = xcall_test::owned_options(n, xcall::idle_mode::sleep);
  o.engine_kind = e;
  return o;
}

/// Waits until every CPU has been to sleep once, then a little more: idle
/// sleep-mode hosts go back to sleep as soon as their calls ran, so between
/// calls this pause alone lets them (a slow one may not be asleep yet, and
/// is then woken by no one: it finds its call itself).
void let_them_sleep(const domain& d) {
  ASSERT_TRUE(xcall_test::eventually([&] {
    for (const xcall::cpu_stats& s : d.stats()) {
      if (s.sleeps == 0) return false;
    }
    return true;
  }));
  std::this_thread::sleep_for(3ms);
}

struct wake_totals {
  std::uint64_t rung = 0;     // futex wakes received (doorbells_rung)
  std::uint64_t relayed = 0;  // of those, made by a woken CPU (wakes_relayed)
  std::uint64_t runs = 0;
};

wake_totals totals(const domain& d) {
  wake_totals t;
  for (const xcall::cpu_stats& s : d.stats()) {
    t.rung += s.doorbells_rung;
    t.relayed += s.wakes_relayed;
    t.runs += s.calls_run;
  }
  return t;
}

void count_run(void* runs) { static_cast<std::atomic<int>*>(runs)->fetch_add(1); }

/// `rounds` waiting on_each_cpu calls over `n` owned CPUs, each made once all
/// of them sleep; the wake counters of the whole run.
wake_totals each_cpu_over_sleepers(xcall::engine e, cpu_t n, int rounds) {
  domain d(sleeping_cpus(n, e));
  std::atomic<int> runs{0};
  run_with_deadline(kUnitDeadline, "on_each_cpu over sleeping CPUs", [&] {
    for (int round = 0; round < rounds; ++round) {
      let_them_sleep(d);
      ASSERT_FALSE(d.on_each_cpu(count_run, &runs, true));
    }
  });
  EXPECT_EQ(runs.load(), static_cast<int>(n) * rounds);  // outside caller: no local copy
  return totals(d);
}

class FanOutWakeTest : public xcall_test::engine_test {};

// The caller of a fan-out to N sleeping CPUs wakes a few of them; the woken
// ones wake the rest. Without the tree every wake is the caller's.
TEST_P(FanOutWakeTest, SleepingTargetsAreWokenByEachOther) {
  constexpr cpu_t kCpus = 32;
  constexpr int kRounds = 10;
  const wake_totals t = each_cpu_over_sleepers(engine(), kCpus, kRounds);
  EXPECT_EQ(t.runs, kCpus * kRounds);
  EXPECT_GT(t.relayed, 0u) << "no woken CPU woke another";
  // All asleep: the caller wakes the root (CPU 31), and more only for CPUs
  // that a slow host had not put to sleep yet. Far fewer than one per CPU.
  const std::uint64_t by_caller = t.rung - t.relayed;
  EXPECT_LE(by_caller, std::uint64_t{kRounds} * 8)
      << t.rung << " wakes, " << t.relayed << " relayed by woken CPUs";
}

// A fan-out to a few sleeping CPUs is woken by its caller alone, at once: a
// chain through the tree would add a wake-up latency per level.
TEST_P(FanOutWakeTest, AFewSleepingTargetsAreWokenByTheCallerItself) {
  const wake_totals t = each_cpu_over_sleepers(engine(), 4, 10);
  EXPECT_EQ(t.runs, 4u * 10u);
  EXPECT_EQ(t.relayed, 0u) << t.rung << " wakes, " << t.relayed
                           << " relayed by woken CPUs: the caller left some to the tree";
  EXPECT_GT(t.rung, 0u) << "nobody was asleep: the test measured nothing";
}

// A fan-out to a sparse set of sleeping CPUs (no claimed parent for most of
// them) still wakes every one: the caller delivers what no parent relays.
TEST_P(FanOutWakeTest, SparseMaskOfSleepersAllRun) {
  constexpr cpu_t kCpus = 64;
  domain d(sleeping_cpus(kCpus, engine()));
  const xcall::cpumask sparse = make_mask(kCpus, {0, 3, 17, 40, 41, 62});
  std::atomic<int> runs{0};
  run_with_deadline(kUnitDeadline, "a fan-out to six sleeping CPUs of 64", [&] {
    for (int round = 0; round < 5; ++round) {
      let_them_sleep(d);
      ASSERT_FALSE(d.call_function_many(sparse, count_run, &runs, true));
    }
  });
  EXPECT_EQ(runs.load(), 6 * 5);
}

XCALL_TEST_ON_EVERY_ENGINE(FanOutWakeTest);

}  // namespace
