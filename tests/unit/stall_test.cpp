// stall_test.cpp — the stall watchdog (xcall/stall.hpp, domain_options'
// stall_timeout and on_stall, XCALL_STALL_TIMEOUT_MS).
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_release_handler{false};

}  // namespace

// Not static and not in an anonymous namespace: the report names it by its
// symbol (the test binary is linked with exported symbols).
extern "C" void xcall_test_blocking_handler(void*) {
  while (!g_release_handler.load(std::memory_order_acquire)) std::this_thread::sleep_for(1ms);
}

namespace {

struct report_log {
  std::mutex mutex;
  std::vector<xcall::stall_report> reports;
  void add(const xcall::stall_report& r) {
    std::lock_guard<std::mutex> lock(mutex);
    reports.push_back(r);
  }
};

TEST(StallWatchdog, BlockedHandlerYieldsOneReportThenUnstuck) {
  report_log log;
  g_release_handler.store(false);
  xcall::domain_options opts;
  opts.nr_cpus = 2;
  opts.idle = xcall::idle_mode::sleep;
  opts.stall_timeout = 100ms;
  opts.on_stall = [&](const xcall::stall_report& r) {
    log.add(r);
    // Unblock the handler after the first report: the wait ends long before
    // the second report (due 200 ms later) could be made.
    g_release_handler.store(true, std::memory_order_release);
  };
  xcall::domain dom(opts);
  int arg = 0;
  ASSERT_FALSE(dom.call_function_single(1, xcall_test_blocking_handler, &arg, true));

  ASSERT_EQ(log.reports.size(), 2u);
  const xcall::stall_report& stuck = log.reports[0];
  EXPECT_FALSE(stuck.unstuck);
  EXPECT_EQ(stuck.report, 1u);
  EXPECT_EQ(stuck.waiter_cpu, xcall::no_cpu);
  EXPECT_EQ(stuck.target, 1u);
  EXPECT_GE(stuck.waited, 100ms);
  EXPECT_EQ(stuck.func, &xcall_test_blocking_handler);
  EXPECT_EQ(stuck.info, &arg);
  EXPECT_NE(stuck.func_name.find("xcall_test_blocking_handler"), std::string::npos)
      << stuck.func_name;
  EXPECT_TRUE(stuck.target_online);
  EXPECT_EQ(stuck.target_activity, xcall::host_activity::handler);
  EXPECT_EQ(stuck.target_func, &xcall_test_blocking_handler);
  EXPECT_FALSE(stuck.target_irqs_disabled);
  EXPECT_EQ(stuck.target_queue_length, 0u);
  // The host thread as the scheduler saw it over the last quarter of the
  // timeout: an owned CPU's thread, asleep or running, with a measured window.
  EXPECT_GT(stuck.target_tid, 0);
  EXPECT_NE(stuck.target_thread_state, 0);
  // (Unknown, -1, only when the waiter woke too late to sample before it
  // reported: AStarvedHost... below measures with a wider window.)
  if (stuck.target_runnable_wait >= 0ns) {
    EXPECT_GT(stuck.target_sched_window, 0ns);
    EXPECT_LE(stuck.target_sched_window, stuck.waited);
  }
  const std::string line = xcall::format_stall_report(stuck);
  EXPECT_NE(line.find("host tid " + std::to_string(stuck.target_tid)), std::string::npos) << line;
  EXPECT_NE(line.find("outside caller"), std::string::npos) << line;
  EXPECT_NE(line.find("for CPU 1 to run xcall_test_blocking_handler"), std::string::npos) << line;

  const xcall::stall_report& over = log.reports[1];
  EXPECT_TRUE(over.unstuck);
  EXPECT_EQ(over.target, 1u);
  EXPECT_GE(over.waited, stuck.waited);
  EXPECT_NE(xcall::format_stall_report(over).find("over: CPU 1 ran"), std::string::npos);
  EXPECT_EQ(dom.stats()[1].stalls_reported, 1u);
}

// A host that is runnable but shares its core with a busy thread: the
// report says it was starved of a CPU, not asleep (what tells an overloaded
// machine from a lost wake-up).
std::atomic<bool> g_spin_release{false};
std::atomic<bool> g_affinity_known{false};
cpu_set_t g_host_affinity;

}  // namespace

extern "C" void xcall_test_spinning_handler(void*) {
  pthread_getaffinity_np(pthread_self(), sizeof(g_host_affinity), &g_host_affinity);
  // release: the hog reads the mask after its acquire load of the flag.
  g_affinity_known.store(true, std::memory_order_release);
  while (!g_spin_release.load(std::memory_order_acquire)) {
  }
}

namespace {

TEST(StallWatchdog, AStarvedHostIsReportedRunnableNotAsleep) {
  report_log log;
  g_spin_release.store(false);
  g_affinity_known.store(false);
  xcall::domain_options opts;
  opts.nr_cpus = 2;
  opts.pin_threads = true;  // so that the hog can share the host's core
  // The window is the last quarter of the timeout: 250 ms, so that a waiter
  // woken late on a loaded machine still samples before it reports.
  opts.stall_timeout = 1s;
  opts.on_stall = [&](const xcall::stall_report& r) {
    log.add(r);
    g_spin_release.store(true, std::memory_order_release);
  };
  xcall::domain dom(opts);
  std::atomic<bool> hog_stop{false};
  std::thread hog([&] {
    while (!g_affinity_known.load(std::memory_order_acquire)) std::this_thread::yield();
    pthread_setaffinity_np(pthread_self(), sizeof(g_host_affinity), &g_host_affinity);
    while (!hog_stop.load(std::memory_order_relaxed)) {
    }
  });
  const std::error_code ec =
      dom.call_function_single(1, xcall_test_spinning_handler, nullptr, true);
  hog_stop.store(true);
  hog.join();
  ASSERT_FALSE(ec);
  ASSERT_GE(log.reports.size(), 2u);
  const xcall::stall_report& stuck = log.reports[0];
  EXPECT_EQ(stuck.target_activity, xcall::host_activity::handler);
  EXPECT_EQ(stuck.target_thread_state, 'R');
  // Sharing a core with a spinning thread, the host waits for a CPU about
  // half of the window.
  EXPECT_GT(stuck.target_sched_window, 0ns);
  EXPECT_GE(stuck.target_runnable_wait, stuck.target_sched_window / 10)
      << xcall::format_stall_report(stuck);
  const std::string line = xcall::format_stall_report(stuck);
  EXPECT_NE(line.find("runnable but not running"), std::string::npos) << line;
  const xcall::stall_report& over = log.reports.back();
  EXPECT_TRUE(over.unstuck);
  EXPECT_EQ(over.target_tid, stuck.target_tid);
  EXPECT_GE(over.target_runnable_wait, 0ns);  // since the first report
}

TEST(StallWatchdog, ShortWaitsReportNothing) {
  std::atomic<int> reports{0};
  xcall::domain_options opts;
  opts.nr_cpus = 2;
  opts.stall_timeout = 2s;
  opts.on_stall = [&](const xcall::stall_report&) { reports.fetch_add(1); };
  xcall::domain dom(opts);
  for (int i = 0; i < 200; ++i) {
    ASSERT_FALSE(dom.call_function_single(
        1, [](void*) {}, nullptr, true));
  }
  EXPECT_EQ(reports.load(), 0);
}

TEST(StallWatchdog, ZeroTimeoutTurnsItOff) {
  std::atomic<int> reports{0};
  g_release_handler.store(false);
  xcall::domain_options opts;
  opts.nr_cpus = 2;
  opts.stall_timeout = 0ns;
  opts.on_stall = [&](const xcall::stall_report&) { reports.fetch_add(1); };
  xcall::domain dom(opts);
  std::thread releaser([] {
    std::this_thread::sleep_for(300ms);
    g_release_handler.store(true, std::memory_order_release);
  });
  ASSERT_FALSE(dom.call_function_single(1, xcall_test_blocking_handler, nullptr, true));
  releaser.join();
  EXPECT_EQ(reports.load(), 0);
}

TEST(StallWatchdog, EnvironmentOverridesTheOption) {
  ASSERT_EQ(setenv("XCALL_STALL_TIMEOUT_MS", "250", 1), 0);
  {
    xcall::domain dom(xcall::domain_options{.nr_cpus = 1});
    EXPECT_EQ(dom.options().stall_timeout, 250ms);
  }
  ASSERT_EQ(setenv("XCALL_STALL_TIMEOUT_MS", "0", 1), 0);
  {
    xcall::domain dom(xcall::domain_options{.nr_cpus = 1});
    EXPECT_EQ(dom.options().stall_timeout, 0ns);
  }
  ASSERT_EQ(unsetenv("XCALL_STALL_TIMEOUT_MS"), 0);
}

TEST(StallWatchdog, BadEnvironmentValueIsNamed) {
  for (const char* bad : {"", "12ms", "-5", "abc"}) {
    ASSERT_EQ(setenv("XCALL_STALL_TIMEOUT_MS", bad, 1), 0);
    try {
      xcall::domain dom(xcall::domain_options{.nr_cpus = 1});
      ADD_FAILURE() << "accepted XCALL_STALL_TIMEOUT_MS=" << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("XCALL_STALL_TIMEOUT_MS"), std::string::npos)
          << e.what();
    }
  }
  ASSERT_EQ(unsetenv("XCALL_STALL_TIMEOUT_MS"), 0);
}

TEST(StallWatchdog, NegativeTimeoutIsNamed) {
  xcall::domain_options opts;
  opts.nr_cpus = 1;
  opts.stall_timeout = -1ms;
  try {
    xcall::domain dom(opts);
    ADD_FAILURE() << "accepted a negative stall_timeout";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("stall_timeout"), std::string::npos) << e.what();
  }
}

}  // namespace
