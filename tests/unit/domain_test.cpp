// domain_test.cpp — xcall::domain: a mask with no online target is success
// with nothing run; the live online mask; many outside callers at once. Each
// test runs on both engines. The other domain.hpp suites have files of their
// own: call_form_test, domain_error_test, hotplug_test, callable_test,
// destruction_test.
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "domain_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::attached_domain_options;
using xcall_test::eventually;
using xcall_test::host_thread;
using xcall_test::kN;
using xcall_test::kNxio;
using xcall_test::kOk;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;

// Each test runs once per engine (DomainTest.Name/percpu and /classic):
// empty target sets and concurrent callers go through the engine
// that queues multi-CPU calls.
class DomainTest : public xcall_test::engine_test {};
XCALL_TEST_ON_EVERY_ENGINE(DomainTest);

// ---------------------------------------------------------------------------
// A mask with no online target is success with nothing to do.

TEST_P(DomainTest, NoOnlineTargetIsSuccessWithNothingRun) {
  run_with_deadline(kUnitDeadline, "empty targets", [&] {
    domain d(owned_options(kN, engine()));
    ASSERT_EQ(d.cpu_down(3), kOk);
    ASSERT_EQ(d.cpu_down(2), kOk);
    run_log log(kN);
    log.reset();
    auto rec = &run_log::record;
    auto never = [](cpu_t, void*) { return false; };
    for (bool wait : {true, false}) {
      SCOPED_TRACE(wait ? "wait" : "no wait");
      for (const cpumask& m : {make_mask(kN, {}), make_mask(kN, {2, 3})}) {
        EXPECT_EQ(d.call_function_many(m, rec, &log, wait), kOk);
        EXPECT_EQ(d.on_each_cpu_mask(m, rec, &log, wait), kOk);
        EXPECT_EQ(d.on_each_cpu_cond_mask(never, rec, &log, wait, make_mask(kN, {0, 1})), kOk);
        EXPECT_EQ(d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, rec, &log, wait, m),
                  kOk);
      }
    }
    EXPECT_EQ(d.call_function_many(make_mask(kN, {}), [&] { log.record_here(); }), kOk);
    EXPECT_EQ(d.on_each_cpu_mask(make_mask(kN, {3}), [&] { log.record_here(); }), kOk);
    EXPECT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(log.count(), 0);
  });
}

TEST_P(DomainTest, OnlyTheCallersOwnCpuIsSuccessWithNothingRemote) {
  run_with_deadline(kUnitDeadline, "only self", [&] {
    domain d(attached_domain_options(kN, engine()));
    auto att = d.attach(2);  // the only online CPU
    run_log log(kN);
    log.reset();
    for (bool wait : {true, false}) {
      EXPECT_EQ(d.call_function(&run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.call_function_many(make_mask(kN, {2}), &run_log::record, &log, wait), kOk);
      cpumask all(kN);
      all.set_all();
      EXPECT_EQ(d.call_function_many(all, &run_log::record, &log, wait), kOk);
    }
    EXPECT_EQ(log.count(), 0);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(2), 1);
    EXPECT_EQ(log.count(), 1);
  });
}

TEST_P(DomainTest, EveryCpuDownLeavesOutsideCallsWithNothingToDo) {
  run_with_deadline(kUnitDeadline, "all down", [&] {
    domain d(owned_options(3, engine()));
    for (cpu_t c = 0; c < 3; ++c) ASSERT_EQ(d.cpu_down(c), kOk);
    EXPECT_TRUE(d.online_mask().none());
    run_log log(3);
    log.reset();
    cpumask all(3);
    all.set_all();
    for (bool wait : {true, false}) {
      EXPECT_EQ(d.call_function(&run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.call_function_many(all, &run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.call_function_any(all, &run_log::record, &log, wait), kNxio);
      EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, wait), kNxio);
    }
    EXPECT_EQ(d.on_each_cpu([&] { log.record_here(); }), kOk);
    EXPECT_EQ(log.count(), 0);
    for (cpu_t c = 0; c < 3; ++c) ASSERT_EQ(d.cpu_up(c), kOk);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 1}));
  });
}
// ---------------------------------------------------------------------------
// Misc contract points

TEST_P(DomainTest, OnlineMaskIsLiveAndMatchesCpuOnline) {
  run_with_deadline(kUnitDeadline, "online mask", [&] {
    domain d(attached_domain_options(kN, engine()));
    const cpumask& online = d.online_mask();
    EXPECT_EQ(online.size(), kN);
    EXPECT_TRUE(online.none());
    {
      host_thread h(d, 2);
      EXPECT_TRUE(online.test(2));
      EXPECT_TRUE(d.cpu_online(2));
      EXPECT_EQ(online.count(), 1u);
    }
    EXPECT_FALSE(online.test(2));
    EXPECT_FALSE(d.cpu_online(2));
    EXPECT_FALSE(d.cpu_online(kN));
    EXPECT_FALSE(d.cpu_online(no_cpu));
  });
}

TEST_P(DomainTest, CallsFromManyOutsideThreadsAtOnce) {
  run_with_deadline(kUnitDeadline, "concurrent outside callers", [&] {
    run_log log(3);
    domain d(owned_options(3, engine()));
    log.reset(std::thread::id());
    constexpr int kThreads = 6, kRounds = 100;
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kRounds; ++i) {
          switch ((t + i) % 3) {
            case 0:
              EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
              break;
            case 1:
              EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, false), kOk);
              break;
            case 2:
              EXPECT_EQ(d.call_function_single(i % 3, &run_log::record, &log, i % 2), kOk);
              break;
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    // Per thread: rounds with (t+i)%3 in {0,1} make 3 runs, the others 1.
    int expect = 0;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kRounds; ++i) expect += ((t + i) % 3 == 2) ? 1 : 3;
    }
    EXPECT_TRUE(eventually([&] { return log.count() == expect; }))
        << log.count() << " of " << expect;
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(log.count(), expect);
    EXPECT_EQ(log.stray.load(), 0);
  });
}

}  // namespace
