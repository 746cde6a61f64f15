// doorbell_fault_test.cpp — lost doorbells (lost IPIs were a real cause of
// multi-second stalls in virtual machines): the stall watchdog's re-ring
// rescues the call; without the watchdog the call hangs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include "fault_injection.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
namespace fault = xcall::detail::fault;

void count_run(void* runs) { static_cast<std::atomic<int>*>(runs)->fetch_add(1); }

xcall::domain_options sleepy(std::chrono::nanoseconds stall_timeout) {
  xcall::domain_options opts;
  opts.nr_cpus = 2;
  opts.idle = xcall::idle_mode::sleep;  // every call must wake its target
  opts.stall_timeout = stall_timeout;
  return opts;
}

TEST(DoorbellFault, TheWatchdogReRingRescuesEveryCall) {
  fault::arm(fault::kind::drop_doorbell, 1);  // lose every call's doorbell
  std::atomic<int> stuck{0};
  std::atomic<int> unstuck{0};
  xcall::domain_options opts = sleepy(50ms);
  opts.on_stall = [&](const xcall::stall_report& r) { (r.unstuck ? unstuck : stuck).fetch_add(1); };
  std::atomic<int> runs{0};
  {
    xcall::domain dom(opts);
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(5ms);  // the target is asleep again
      ASSERT_FALSE(dom.call_function_single(1, count_run, &runs, true));
    }
    EXPECT_EQ(dom.stats()[1].stalls_reported, static_cast<unsigned>(stuck.load()));
  }
  fault::disarm_all();
  EXPECT_EQ(runs.load(), 5);
  EXPECT_GE(stuck.load(), 5);    // each call stalled and was reported
  EXPECT_EQ(unstuck.load(), 5);  // and each got unstuck by the re-ring
}

TEST(DoorbellFault, WithoutTheWatchdogALostDoorbellHangs) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fault::arm(fault::kind::drop_doorbell, 1);
        xcall::domain dom(sleepy(0ns));
        std::this_thread::sleep_for(5ms);
        std::atomic<int> runs{0};
        alarm(2);  // the hang ends the child, not the suite
        (void)dom.call_function_single(1, count_run, &runs, true);
        _exit(0);  // not reached while the fault hangs the call
      },
      testing::KilledBySignal(SIGALRM), "");
}

TEST(DoorbellFault, DroppingOneInNStillCompletesWithTheWatchdog) {
  fault::arm(fault::kind::drop_doorbell, 3);
  std::atomic<int> runs{0};
  {
    xcall::domain dom(sleepy(20ms));
    for (int i = 0; i < 30; ++i) {
      ASSERT_FALSE(dom.on_each_cpu(count_run, &runs, true));
    }
  }
  fault::disarm_all();
  EXPECT_EQ(runs.load(), 60);
}

}  // namespace

// Signal delivery: a lost doorbell signal is re-sent by the waiter after a
// short interval without progress (peers had to learn this), long before the
// stall watchdog (off here) would have rung again.
TEST(DoorbellFault, LostSignalsAreReSentByTheWaiter) {
  xcall::domain_options opts;
  opts.nr_cpus = 2;
  opts.start_threads = false;
  opts.stall_timeout = 0ns;
  xcall::domain dom(opts);
  std::atomic<bool> stop{false};
  std::atomic<bool> attached{false};
  std::thread host([&] {
    auto att = dom.attach(1, xcall::attach_options{xcall::delivery_mode::signal, false});
    attached.store(true);
    while (!stop.load(std::memory_order_relaxed)) {
    }  // busy, never polls: only a signal reaches it
  });
  while (!attached.load()) std::this_thread::yield();
  fault::arm(fault::kind::drop_doorbell, 1);  // lose every first signal
  std::atomic<int> runs{0};
  for (int i = 0; i < 5; ++i) {
    // Let the handler return: one still running takes new calls itself.
    std::this_thread::sleep_for(5ms);
    ASSERT_FALSE(dom.call_function_single(1, count_run, &runs, true));
  }
  fault::disarm_all();
  stop.store(true);
  host.join();
  EXPECT_EQ(runs.load(), 5);
  const xcall::cpu_stats s = dom.stats()[1];
  EXPECT_GE(s.signals_resent, 5u) << "every call's first signal was dropped; sent "
                                  << s.signals_sent << ", handler runs " << s.signal_runs;
  EXPECT_EQ(s.signals_sent, s.signals_resent) << "only re-sends reached the host";
}

// The wake tree (src/wake_tree.hpp): a host woken by a fan-out wakes its
// children. With the relay switched off, the CPUs beneath the first woken
// one sleep on with their calls queued ("owed" a wake-up that never comes);
// the stall watchdog's re-ring delivers the owed wake-ups, and without the
// watchdog the fan-out hangs.
static xcall::domain_options sleepy_fan_out(std::chrono::nanoseconds stall_timeout) {
  xcall::domain_options opts = sleepy(stall_timeout);
  opts.nr_cpus = 8;
  return opts;
}

TEST(DoorbellFault, WithoutTheRelayTheWatchdogDeliversOwedWakes) {
  fault::arm(fault::kind::skip_wake_relay, 1);
  std::atomic<int> stuck{0};
  xcall::domain_options opts = sleepy_fan_out(50ms);
  opts.on_stall = [&](const xcall::stall_report& r) {
    if (!r.unstuck) stuck.fetch_add(1);
  };
  std::atomic<int> runs{0};
  std::uint64_t relayed = 0;
  {
    xcall::domain dom(opts);
    std::this_thread::sleep_for(20ms);  // every CPU asleep
    ASSERT_FALSE(dom.on_each_cpu(count_run, &runs, true));
    for (const xcall::cpu_stats& s : dom.stats()) relayed += s.wakes_relayed;
  }
  fault::disarm_all();
  EXPECT_EQ(runs.load(), 8);
  EXPECT_EQ(relayed, 0u);
  EXPECT_GE(stuck.load(), 1) << "the CPUs beneath the root waited for the watchdog";
}

TEST(DoorbellFault, WithoutTheRelayAndTheWatchdogAFanOutHangs) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fault::arm(fault::kind::skip_wake_relay, 1);
        xcall::domain dom(sleepy_fan_out(0ns));
        std::this_thread::sleep_for(20ms);
        std::atomic<int> runs{0};
        alarm(2);  // the hang ends the child, not the suite
        (void)dom.on_each_cpu(count_run, &runs, true);
        _exit(0);  // not reached while the fault hangs the call
      },
      testing::KilledBySignal(SIGALRM), "");
}
