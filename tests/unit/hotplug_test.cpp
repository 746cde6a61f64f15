// hotplug_test.cpp — xcall::domain::cpu_down/cpu_up: the online state,
// idempotence, and the drain of what was queued for a CPU going down. Each
// test runs on both engines. (Churn during calls is stress/hotplug_test.cpp.)
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "domain_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::call_single_data;
using xcall::domain;
using xcall_test::eventually;
using xcall_test::kN;
using xcall_test::kNxio;
using xcall_test::kOk;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;

// Each test runs once per engine (HotplugTest.Name/percpu and /classic):
// the engine takes the CPU offline and drains it.
class HotplugTest : public xcall_test::engine_test {};
XCALL_TEST_ON_EVERY_ENGINE(HotplugTest);

// ---------------------------------------------------------------------------
// Hotplug

TEST_P(HotplugTest, CpuDownClearsOnlineAndCpuUpRestoresIt) {
  run_with_deadline(kUnitDeadline, "down/up", [&] {
    domain d(owned_options(kN, engine()));
    EXPECT_EQ(d.online_mask().count(), kN);
    ASSERT_EQ(d.cpu_down(2), kOk);
    EXPECT_FALSE(d.cpu_online(2));
    EXPECT_FALSE(d.online_mask().test(2));
    EXPECT_EQ(d.online_mask().count(), kN - 1);
    run_log log(kN);
    log.reset();
    EXPECT_EQ(d.call_function_single(2, &run_log::record, &log, true), kNxio);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 0, 1}));

    ASSERT_EQ(d.cpu_up(2), kOk);
    EXPECT_TRUE(d.cpu_online(2));
    EXPECT_EQ(d.online_mask().count(), kN);
    log.reset();
    EXPECT_EQ(d.call_function_single(2, &run_log::record, &log, true), kOk);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 2, 1}));
  });
}

TEST_P(HotplugTest, CpuDownAndUpAreIdempotent) {
  run_with_deadline(kUnitDeadline, "idempotent", [&] {
    domain d(owned_options(3, engine()));
    EXPECT_EQ(d.cpu_up(1), kOk) << "up of an online CPU";
    EXPECT_TRUE(d.cpu_online(1));
    EXPECT_EQ(d.cpu_down(1), kOk);
    EXPECT_EQ(d.cpu_down(1), kOk) << "down of an offline CPU";
    EXPECT_FALSE(d.cpu_online(1));
    EXPECT_EQ(d.cpu_up(1), kOk);
    EXPECT_EQ(d.cpu_up(1), kOk);
    EXPECT_TRUE(d.cpu_online(1));
    run_log log(3);
    log.reset();
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(1), 1);
  });
}

TEST_P(HotplugTest, RepeatedDownUpKeepsTheCpuWorking) {
  run_with_deadline(kUnitDeadline, "down/up cycles", [&] {
    run_log log(2);
    domain d(owned_options(2, engine(), xcall::idle_mode::sleep));
    log.reset();
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(d.cpu_down(1), kOk);
      ASSERT_EQ(d.cpu_up(1), kOk);
      ASSERT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    }
    EXPECT_EQ(log.at(1), 50);
  });
}

TEST_P(HotplugTest, CpuDownRunsWhatWasQueued) {
  run_with_deadline(kUnitDeadline, "down drains", [&] {
    // The log outlives the domain: CPU 0's no-wait call may still be queued
    // when the domain goes down, and it records into the log then.
    run_log log(2);
    log.reset();
    domain d(owned_options(2, engine(), xcall::idle_mode::sleep));
    constexpr int kAsync = 16;
    std::vector<call_single_data> csds(kAsync);
    for (auto& c : csds) {
      c.func = &run_log::record;
      c.info = &log;
    }
    int queued = 0;
    for (auto& c : csds) queued += !d.call_function_single_async(1, c);
    queued += !d.call_function_single(1, &run_log::record, &log, false);
    queued += !d.call_function_many(make_mask(2, {0, 1}), &run_log::record, &log, false) ? 1 : 0;
    ASSERT_EQ(queued, kAsync + 2);
    ASSERT_EQ(d.cpu_down(1), kOk);
    // cpu_down returns once the CPU has run everything queued for it.
    EXPECT_EQ(log.at(1), kAsync + 2) << "calls queued before cpu_down were lost";
    for (auto& c : csds) EXPECT_FALSE(c.in_flight());
    // CPU 0 is not going down: nothing says it ran the no-wait call yet.
    EXPECT_TRUE(eventually([&] { return log.at(0) == 1; })) << "CPU 0 got the many() call once";
  });
}

// A handler blocks CPU 1 on a gate, so the calls queued behind it are still
// queued when cpu_down starts; cpu_down must run them before it returns.
TEST_P(HotplugTest, CpuDownRunsCallsQueuedBehindABusyHandler) {
  run_with_deadline(kUnitDeadline, "down drains behind busy handler", [&] {
    run_log log(2);
    domain d(owned_options(2, engine(), xcall::idle_mode::sleep));
    log.reset();
    xcall_test::start_gate gate;
    std::atomic<bool> blocking{false};
    call_single_data blocker(
        [](void* p) noexcept {
          auto* g = static_cast<std::pair<xcall_test::start_gate*, std::atomic<bool>*>*>(p);
          g->second->store(true);
          g->first->wait();
        },
        nullptr);
    std::pair<xcall_test::start_gate*, std::atomic<bool>*> arg{&gate, &blocking};
    blocker.info = &arg;
    ASSERT_EQ(d.call_function_single_async(1, blocker), kOk);
    ASSERT_TRUE(eventually([&] { return blocking.load(); }));

    // Queued behind the blocker: async descriptors, one no-wait single (a
    // caller's no-wait descriptor is busy until it ran, and outside threads
    // may share storage, so one) and a waiting call.
    constexpr int kAsync = 8, kThreads = 1;
    std::vector<call_single_data> csds(kAsync);
    for (auto& c : csds) {
      c.func = &run_log::record;
      c.info = &log;
      ASSERT_EQ(d.call_function_single_async(1, c), kOk);
    }
    std::atomic<int> nowait_ok{0};
    std::vector<std::thread> callers;
    for (int i = 0; i < kThreads; ++i) {
      callers.emplace_back([&] {
        if (!d.call_function_single(1, &run_log::record, &log, false)) nowait_ok.fetch_add(1);
      });
    }
    std::atomic<bool> waiter_done{false};
    std::error_code waiter_ec;
    std::thread waiter([&] {
      waiter_ec = d.call_function_single(1, &run_log::record, &log, true);
      waiter_done.store(true);
    });
    ASSERT_TRUE(eventually([&] { return nowait_ok.load() == kThreads; }));
    for (auto& t : callers) t.join();
    std::this_thread::sleep_for(5ms);  // let the waiter queue its call
    EXPECT_EQ(log.count(), 0);

    std::error_code down_ec;
    std::atomic<bool> down_done{false};
    std::thread downer([&] {
      down_ec = d.cpu_down(1);
      down_done.store(true);
    });
    std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(down_done.load()) << "cpu_down returned while CPU 1 was still busy";
    gate.open();
    downer.join();
    EXPECT_EQ(down_ec, kOk);
    EXPECT_FALSE(d.cpu_online(1));
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, false), kNxio);
    // Everything queued before cpu_down began has run by now.
    const int expect = kAsync + kThreads + (waiter_ec ? 0 : 1);
    EXPECT_EQ(log.at(1), expect) << "cpu_down returned before running what was queued";
    waiter.join();
    EXPECT_EQ(waiter_ec, kOk) << "the waiter's call was queued before cpu_down began";
    EXPECT_TRUE(waiter_done.load());
    for (auto& c : csds) EXPECT_FALSE(c.in_flight());
    EXPECT_FALSE(blocker.in_flight());
  });
}

}  // namespace
