// callable_test.cpp — xcall::domain's callable forms: an exception is
// rethrown once every target ran; values captured by reference come back.
// Each test runs on both engines.
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "domain_test_support.hpp"
#include "test_support.hpp"
#include "xcall/cpu.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall_test::attached_domain_options;
using xcall_test::host_thread;
using xcall_test::kN;
using xcall_test::kOk;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;
using xcall_test::to_string;

// Each test runs once per engine (CallableTest.Name/percpu and /classic):
// the callable forms are built on the engine's waiting calls.
class CallableTest : public xcall_test::engine_test {};
XCALL_TEST_ON_EVERY_ENGINE(CallableTest);

// ---------------------------------------------------------------------------
// Callable forms: exceptions

struct boom : std::runtime_error {
  explicit boom(cpu_t c) : std::runtime_error("boom on " + std::to_string(c)), cpu(c) {}
  cpu_t cpu;
};

TEST_P(CallableTest, AnExceptionOnOneTargetIsRethrownAfterEveryTargetRan) {
  run_with_deadline(kUnitDeadline, "callable exception", [&] {
    run_log log(kN);
    domain d(owned_options(kN, engine()));
    for (cpu_t thrower = 0; thrower < kN; ++thrower) {
      SCOPED_TRACE(testing::Message() << "thrower " << thrower);
      log.reset();
      auto f = [&] {
        const cpu_t me = xcall::this_cpu();
        if (me == thrower) throw boom(me);
        std::this_thread::sleep_for(10ms);  // slow targets still finish first
        log.record_here();
      };
      try {
        (void)d.on_each_cpu(f);
        ADD_FAILURE() << "on_each_cpu swallowed the exception";
      } catch (const boom& e) {
        EXPECT_EQ(e.cpu, thrower);
      }
      EXPECT_EQ(log.count(), static_cast<int>(kN) - 1)
          << "rethrown before every target finished: " << to_string(log.snapshot());
      EXPECT_EQ(log.at(thrower), 0);

      log.reset();
      cpumask m = make_mask(kN, {0, 1, 2, 3});
      EXPECT_THROW((void)d.call_function_many(m, f), boom);
      EXPECT_EQ(log.count(), static_cast<int>(kN) - 1);
      log.reset();
      EXPECT_THROW((void)d.on_each_cpu_mask(m, f), boom);
      EXPECT_EQ(log.count(), static_cast<int>(kN) - 1);
      EXPECT_THROW((void)d.call_function_single(thrower, f), boom);
    }
  });
}

TEST_P(CallableTest, EveryTargetThrowingRethrowsOne) {
  run_with_deadline(kUnitDeadline, "callable all throw", [&] {
    domain d(owned_options(kN, engine()));
    std::atomic<int> ran{0};
    try {
      (void)d.on_each_cpu([&] {
        ran.fetch_add(1);
        throw boom(xcall::this_cpu());
      });
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_LT(e.cpu, kN);
    }
    EXPECT_EQ(ran.load(), static_cast<int>(kN));
  });
}

TEST_P(CallableTest, LocalRunThrowingIsRethrownAfterRemoteTargets) {
  run_with_deadline(kUnitDeadline, "callable local throw", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h0(d, 0);
    host_thread h2(d, 2);
    auto att = d.attach(1);
    run_log log(3);
    log.reset();
    auto f = [&] {
      if (xcall::this_cpu() == 1) throw boom(1);
      log.record_here();
    };
    EXPECT_THROW((void)d.on_each_cpu(f), boom);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 0, 1}));
    EXPECT_THROW((void)d.call_function_single(1, f), boom);
    EXPECT_FALSE(xcall::irqs_disabled()) << "the local guard must end even when f throws";
  });
}

TEST_P(CallableTest, ValuesCapturedByReferenceComeBack) {
  run_with_deadline(kUnitDeadline, "callable captures", [&] {
    domain d(owned_options(3, engine()));
    std::atomic<int> sum{0};
    EXPECT_EQ(d.on_each_cpu([&] { sum.fetch_add(static_cast<int>(xcall::this_cpu()) + 1); }), kOk);
    EXPECT_EQ(sum.load(), 1 + 2 + 3);
    int plain = 0;
    EXPECT_EQ(d.call_function_single(2, [&] { plain = 42; }), kOk);
    EXPECT_EQ(plain, 42);
    // A const callable and an rvalue callable both work.
    const auto cf = [&] { sum.fetch_add(100); };
    EXPECT_EQ(d.call_function_many(make_mask(3, {0, 1}), cf), kOk);
    EXPECT_EQ(sum.load(), 206);
    EXPECT_EQ(d.on_each_cpu_mask(make_mask(3, {2}), [&] { sum.fetch_add(1000); }), kOk);
    EXPECT_EQ(sum.load(), 1206);
  });
}

}  // namespace
