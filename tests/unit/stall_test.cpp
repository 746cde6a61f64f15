// stall_test.cpp — the stall watchdog (xcall/stall.hpp, domain_options'
// stall_timeout and on_stall, XCALL_STALL_TIMEOUT_MS).
#include <gtest/gtest.h>

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
  const std::string line = xcall::format_stall_report(stuck);
  EXPECT_NE(line.find("outside caller"), std::string::npos) << line;
  EXPECT_NE(line.find("for CPU 1 to run xcall_test_blocking_handler"), std::string::npos) << line;

  const xcall::stall_report& over = log.reports[1];
  EXPECT_TRUE(over.unstuck);
  EXPECT_EQ(over.target, 1u);
  EXPECT_GE(over.waited, stuck.waited);
  EXPECT_NE(xcall::format_stall_report(over).find("over: CPU 1 ran"), std::string::npos);
  EXPECT_EQ(dom.stats()[1].stalls_reported, 1u);
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
