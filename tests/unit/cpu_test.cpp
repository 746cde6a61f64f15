// cpu_test.cpp — the calling thread's CPU context: this_cpu(), poll(),
// idle_wait(), irq_guard / irqs_disabled(), and EDEADLK for a waiting call
// made inside a guard.
#include "xcall/cpu.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <system_error>
#include <thread>

#include "test_support.hpp"
#include "xcall/domain.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::attached_domain_options;
using xcall_test::eventually;
using xcall_test::host_thread;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;

const std::error_code kOk{};
const std::error_code kDeadlk = std::make_error_code(std::errc::resource_deadlock_would_occur);

using clock_type = std::chrono::steady_clock;

// Runs body(d) under the unit deadline on this thread, which hosts CPU 0 of a
// 2-CPU attach domain: calls to CPU 0 run only when this thread polls.
template <class Body>
void on_host_of_cpu0(xcall::engine e, const char* what, Body&& body) {
  run_with_deadline(kUnitDeadline, what, [&] {
    domain d(attached_domain_options(2, e));
    auto att = d.attach(0);
    body(d);
  });
}

// Every test that builds a domain runs once per engine (CpuTest.*/percpu,
// /classic); the irq_guard tests that need none are IrqGuardTest.
class CpuTest : public xcall_test::engine_test {};

// ---------------------------------------------------------------------------
// this_cpu()

TEST_P(CpuTest, ThisCpuIsNoCpuOnPlainThreads) {
  EXPECT_EQ(xcall::this_cpu(), no_cpu);
  cpu_t seen = 0;
  std::thread([&] { seen = xcall::this_cpu(); }).join();
  EXPECT_EQ(seen, no_cpu);
  // A domain existing does not make plain threads CPUs.
  domain d(owned_options(2, engine()));
  EXPECT_EQ(xcall::this_cpu(), no_cpu);
}

TEST_P(CpuTest, ThisCpuIsTheAttachedCpuWhileAttached) {
  run_with_deadline(kUnitDeadline, "this_cpu attached", [&] {
    domain d(attached_domain_options(4, engine()));
    EXPECT_EQ(xcall::this_cpu(), no_cpu);
    {
      auto att = d.attach(2);
      EXPECT_TRUE(att);
      EXPECT_EQ(att.cpu(), 2u);
      EXPECT_EQ(xcall::this_cpu(), 2u);
      EXPECT_TRUE(d.cpu_online(2));
      EXPECT_TRUE(d.online_mask().test(2));
    }
    EXPECT_EQ(xcall::this_cpu(), no_cpu) << "the end of the attachment must reset this_cpu()";
    EXPECT_FALSE(d.cpu_online(2));

    auto att = d.attach(3);
    EXPECT_EQ(xcall::this_cpu(), 3u);
    att.detach();
    EXPECT_FALSE(att);
    EXPECT_EQ(att.cpu(), no_cpu) << "a detached handle is empty";
    EXPECT_EQ(xcall::this_cpu(), no_cpu);
    EXPECT_FALSE(d.cpu_online(3));
  });
}

TEST_P(CpuTest, AttachmentHandleMoves) {
  run_with_deadline(kUnitDeadline, "attachment move", [&] {
    domain d(attached_domain_options(2, engine()));
    xcall::cpu_attachment empty;
    EXPECT_FALSE(empty);
    EXPECT_EQ(empty.cpu(), no_cpu);

    xcall::cpu_attachment a = d.attach(1);
    xcall::cpu_attachment b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_TRUE(b);
    EXPECT_EQ(b.cpu(), 1u);
    EXPECT_EQ(xcall::this_cpu(), 1u) << "moving the handle does not detach";
    EXPECT_TRUE(d.cpu_online(1));

    xcall::cpu_attachment c;
    c = std::move(b);
    EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(c.cpu(), 1u);
    EXPECT_TRUE(d.cpu_online(1));
    c = xcall::cpu_attachment();  // move-assigning an empty handle detaches
    EXPECT_FALSE(d.cpu_online(1));
    EXPECT_EQ(xcall::this_cpu(), no_cpu);
  });
}

struct where {
  std::atomic<cpu_t> cpu{12345};
  std::atomic<int> runs{0};
  static void run(void* p) noexcept {
    auto* w = static_cast<where*>(p);
    w->cpu.store(xcall::this_cpu(), std::memory_order_relaxed);
    w->runs.fetch_add(1, std::memory_order_release);
  }
};

TEST_P(CpuTest, ThisCpuInsideAHandlerOnOwnedCpus) {
  run_with_deadline(kUnitDeadline, "this_cpu owned handler", [&] {
    domain d(owned_options(3, engine()));
    for (cpu_t c = 0; c < 3; ++c) {
      where w;
      ASSERT_EQ(d.call_function_single(c, &where::run, &w, true), kOk);
      EXPECT_EQ(w.cpu.load(), c);
      cpu_t seen = no_cpu;
      ASSERT_EQ(d.call_function_single(c, [&] { seen = xcall::this_cpu(); }), kOk);
      EXPECT_EQ(seen, c);
    }
    EXPECT_EQ(xcall::this_cpu(), no_cpu) << "the outside caller is no CPU";
  });
}

TEST_P(CpuTest, ThisCpuInsideAHandlerOnAnAttachedCpu) {
  run_with_deadline(kUnitDeadline, "this_cpu attached handler", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h(d, 2);
    where w;
    ASSERT_EQ(d.call_function_single(2, &where::run, &w, true), kOk);
    EXPECT_EQ(w.cpu.load(), 2u);
    EXPECT_EQ(w.runs.load(), 1);
  });
}

// ---------------------------------------------------------------------------
// poll() / idle_wait() on threads that host nothing

TEST_P(CpuTest, PollAndIdleWaitOnAPlainThreadDoNothing) {
  domain d(owned_options(2, engine()));
  xcall::poll();  // must simply return
  auto t0 = clock_type::now();
  EXPECT_FALSE(xcall::idle_wait(2s));
  EXPECT_LT(clock_type::now() - t0, 1s) << "idle_wait on a non-host must return at once";
  t0 = clock_type::now();
  EXPECT_FALSE(xcall::idle_wait(0ns));
  EXPECT_LT(clock_type::now() - t0, 1s);
}

TEST_P(CpuTest, PollOnAnOwnedCpuHandlerIsHarmless) {
  run_with_deadline(kUnitDeadline, "poll in owned handler", [&] {
    domain d(owned_options(2, engine()));
    bool ran = false;
    ASSERT_EQ(d.call_function_single(0,
                                     [&] {
                                       xcall::poll();
                                       ran = true;
                                     }),
              kOk);
    EXPECT_TRUE(ran);
  });
}

// ---------------------------------------------------------------------------
// poll() / idle_wait() on an attached host

TEST_P(CpuTest, PollRunsWhatIsQueued) {
  on_host_of_cpu0(engine(), "poll runs queue", [&](domain& d) {
    run_log log(2);
    log.reset(std::thread::id());  // the callers are the helper threads
    // One no-wait call (a caller's no-wait descriptor stays busy until the
    // host polls, so a second one could wait for it) and two async ones.
    xcall::call_single_data csd(&run_log::record, &log);
    xcall::call_single_data csd2(&run_log::record, &log);
    std::thread([&] {
      EXPECT_EQ(d.call_function_single(0, &run_log::record, &log, false), kOk);
      EXPECT_EQ(d.call_function_single_async(0, csd), kOk);
      EXPECT_EQ(d.call_function_single_async(0, csd2), kOk);
    }).join();
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(log.count(), 0) << "ran before the host polled";
    xcall::poll();
    EXPECT_EQ(log.at(0), 3);
    EXPECT_FALSE(csd.in_flight());
    xcall::poll();  // nothing left: no effect
    EXPECT_EQ(log.count(), 3);
  });
}

TEST_P(CpuTest, IdleWaitReturnsTrueWhenACallArrives) {
  on_host_of_cpu0(engine(), "idle_wait wake", [&](domain& d) {
    for (bool wait : {false, true}) {
      SCOPED_TRACE(wait ? "caller waits" : "caller does not wait");
      where w;
      std::thread caller([&] {
        std::this_thread::sleep_for(20ms);  // let the host fall asleep first
        EXPECT_EQ(d.call_function_single(0, &where::run, &w, wait), kOk);
      });
      auto t0 = clock_type::now();
      bool ran = xcall::idle_wait(20s);
      auto took = clock_type::now() - t0;
      EXPECT_TRUE(ran);
      EXPECT_LT(took, 10s) << "idle_wait was not woken by the call";
      EXPECT_EQ(w.runs.load(), 1);
      EXPECT_EQ(w.cpu.load(), 0u);
      caller.join();
    }
  });
}

TEST_P(CpuTest, IdleWaitRunsWhatIsAlreadyQueuedWithoutSleeping) {
  run_with_deadline(kUnitDeadline, "idle_wait queued", [&] {
    domain d(attached_domain_options(2, engine()));
    auto att = d.attach(1);
    where w;
    std::thread([&] { EXPECT_EQ(d.call_function_single(1, &where::run, &w, false), kOk); }).join();
    auto t0 = clock_type::now();
    EXPECT_TRUE(xcall::idle_wait(20s));
    EXPECT_LT(clock_type::now() - t0, 10s);
    EXPECT_EQ(w.runs.load(), 1);
  });
}

TEST_P(CpuTest, IdleWaitReturnsFalseOnTimeout) {
  on_host_of_cpu0(engine(), "idle_wait timeout", [&](domain&) {
    auto t0 = clock_type::now();
    EXPECT_FALSE(xcall::idle_wait(30ms));
    EXPECT_GE(clock_type::now() - t0, 25ms) << "returned before the timeout with nothing run";
    EXPECT_FALSE(xcall::idle_wait(0ns));
  });
}

// ---------------------------------------------------------------------------
// irq_guard

TEST(IrqGuardTest, Nests) {
  EXPECT_FALSE(xcall::irqs_disabled());
  {
    xcall::irq_guard g1;
    EXPECT_TRUE(xcall::irqs_disabled());
    {
      xcall::irq_guard g2;
      EXPECT_TRUE(xcall::irqs_disabled());
      {
        xcall::irq_guard g3;
        EXPECT_TRUE(xcall::irqs_disabled());
      }
      EXPECT_TRUE(xcall::irqs_disabled());
    }
    EXPECT_TRUE(xcall::irqs_disabled()) << "an inner guard's end must not re-enable";
  }
  EXPECT_FALSE(xcall::irqs_disabled());
}

TEST(IrqGuardTest, IsPerThread) {
  xcall::irq_guard g;
  EXPECT_TRUE(xcall::irqs_disabled());
  bool other = true;
  std::thread([&] { other = xcall::irqs_disabled(); }).join();
  EXPECT_FALSE(other);
}

TEST_P(CpuTest, GuardedAttachedCpuRunsNothingUntilTheLastGuardEnds) {
  on_host_of_cpu0(engine(), "guarded poll", [&](domain& d) {
    run_log log(2);
    log.reset();
    {
      xcall::irq_guard outer;
      {
        xcall::irq_guard inner;
        std::thread([&] {
          EXPECT_EQ(d.call_function_single(0, &run_log::record, &log, false), kOk);
        }).join();
        xcall::poll();
        EXPECT_FALSE(xcall::idle_wait(1ms)) << "idle_wait inside a guard runs nothing";
        EXPECT_EQ(log.count(), 0) << "poll() inside an irq_guard ran a call";
      }
      xcall::poll();
      EXPECT_EQ(log.count(), 0) << "the end of an inner guard ran a call";
    }
    // The end of the last guard runs what was queued, on this thread.
    EXPECT_EQ(log.at(0), 1);
    EXPECT_EQ(log.irqs_off[0].load(), 0) << "ran after the guard, irqs enabled";
    xcall::poll();
    EXPECT_EQ(log.count(), 1);
  });
}

TEST_P(CpuTest, WaitingCallerBlocksUntilTheGuardOnTheTargetEnds) {
  on_host_of_cpu0(engine(), "waiting caller vs guard", [&](domain& d) {
    where w;
    std::atomic<bool> returned{false};
    std::thread caller;
    {
      xcall::irq_guard g;
      caller = std::thread([&] {
        EXPECT_EQ(d.call_function_single(0, &where::run, &w, true), kOk);
        returned.store(true);
      });
      for (int i = 0; i < 20; ++i) {
        xcall::poll();
        std::this_thread::sleep_for(1ms);
      }
      EXPECT_EQ(w.runs.load(), 0);
      EXPECT_FALSE(returned.load()) << "a waiting call returned before its function ran";
    }
    EXPECT_EQ(w.runs.load(), 1);
    caller.join();
    EXPECT_TRUE(returned.load());
  });
}

// A waiting call made inside an irq_guard fails at once with EDEADLK, for
// every form, both on a thread that hosts a CPU and on a plain thread; the
// function does not run anywhere.
void expect_every_waiting_form_deadlocks(domain& d, run_log& log) {
  const cpu_t n = d.nr_cpu_ids();
  xcall::cpumask all(n);
  all.set_all();
  const cpu_t self = xcall::this_cpu();
  const cpu_t other = (self == 0) ? 1 : 0;
  xcall::cpumask others = make_mask(n, {other});

  xcall::irq_guard g;
  auto f = &run_log::record;
  void* info = &log;
  EXPECT_EQ(d.call_function_single(other, f, info, true), kDeadlk) << "single";
  EXPECT_EQ(d.call_function_many(all, f, info, true), kDeadlk) << "many";
  EXPECT_EQ(d.call_function_many(others, f, info, true), kDeadlk) << "many, others";
  EXPECT_EQ(d.call_function(f, info, true), kDeadlk) << "call_function";
  EXPECT_EQ(d.call_function_any(others, f, info, true), kDeadlk) << "any";
  EXPECT_EQ(d.on_each_cpu(f, info, true), kDeadlk) << "on_each_cpu";
  EXPECT_EQ(d.on_each_cpu_mask(all, f, info, true), kDeadlk) << "on_each_cpu_mask";
  EXPECT_EQ(d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, f, info, true, all), kDeadlk)
      << "on_each_cpu_cond_mask";
  EXPECT_EQ(d.call_function_single(other, [&] { log.record_here(); }), kDeadlk)
      << "callable single";
  EXPECT_EQ(d.call_function_many(all, [&] { log.record_here(); }), kDeadlk) << "callable many";
  EXPECT_EQ(d.on_each_cpu([&] { log.record_here(); }), kDeadlk) << "callable on_each_cpu";
  EXPECT_EQ(d.on_each_cpu_mask(all, [&] { log.record_here(); }), kDeadlk)
      << "callable on_each_cpu_mask";
  EXPECT_TRUE(xcall::irqs_disabled());
}

// After expect_every_waiting_form_deadlocks: nothing was queued, so a flush
// with wait, a moment and (on a thread that hosts a CPU) a poll find nothing
// from those calls.
void expect_no_deadlocked_call_ran(domain& d, run_log& log) {
  EXPECT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
  std::this_thread::sleep_for(5ms);
  if (xcall::this_cpu() != no_cpu) xcall::poll();
  EXPECT_EQ(log.count(), 0) << "a call that failed with EDEADLK ran anyway";
}

TEST_P(CpuTest, WaitingCallInsideAGuardIsDeadlkOnAnAttachedHost) {
  run_with_deadline(kUnitDeadline, "EDEADLK attached", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h1(d, 1);
    host_thread h2(d, 2);
    auto att = d.attach(0);
    run_log log(3);
    log.reset();
    expect_every_waiting_form_deadlocks(d, log);
    expect_no_deadlocked_call_ran(d, log);
  });
}

TEST_P(CpuTest, WaitingCallInsideAGuardIsDeadlkOnAPlainThread) {
  run_with_deadline(kUnitDeadline, "EDEADLK plain", [&] {
    run_log log(3);
    domain d(owned_options(3, engine()));
    log.reset();
    expect_every_waiting_form_deadlocks(d, log);
    expect_no_deadlocked_call_ran(d, log);
  });
}

TEST_P(CpuTest, WaitingCallInsideAGuardIsDeadlkInAHandler) {
  run_with_deadline(kUnitDeadline, "EDEADLK handler", [&] {
    run_log log(3);
    domain d(owned_options(3, engine()));
    log.reset();
    ASSERT_EQ(d.call_function_single(1, [&] { expect_every_waiting_form_deadlocks(d, log); }), kOk);
    expect_no_deadlocked_call_ran(d, log);
  });
}

TEST_P(CpuTest, NoWaitCallsInsideAGuardWork) {
  run_with_deadline(kUnitDeadline, "no-wait in guard", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h1(d, 1);
    host_thread h2(d, 2);
    auto att = d.attach(0);
    run_log log(3);
    log.reset();
    {
      xcall::irq_guard g;
      EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, false), kOk);
      EXPECT_TRUE(eventually([&] { return log.at(1) == 1; }));
      xcall::cpumask m = make_mask(3, {2});
      EXPECT_EQ(d.call_function_many(m, &run_log::record, &log, false), kOk);
      EXPECT_TRUE(eventually([&] { return log.at(2) == 1; }));
      // on_each_cpu without wait: the local part runs here, guarded already.
      EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, false), kOk);
      EXPECT_EQ(log.at(0), 1) << "on_each_cpu runs the caller's part locally, even in a guard";
      EXPECT_EQ(log.irqs_off[0].load(), 1);
      EXPECT_TRUE(eventually([&] { return log.at(1) == 2 && log.at(2) == 2; }));
    }
    EXPECT_EQ(log.at(0), 1);
    EXPECT_EQ(log.at(1), 2);
    EXPECT_EQ(log.at(2), 2);
    EXPECT_EQ(log.stray.load(), 0);
  });
}

TEST_P(CpuTest, NoWaitCallsInsideAGuardWorkOnAPlainThread) {
  run_with_deadline(kUnitDeadline, "no-wait in guard plain", [&] {
    run_log log(2);
    domain d(owned_options(2, engine()));
    log.reset();
    xcall::irq_guard g;
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, false), kOk);
    xcall::call_single_data csd(&run_log::record, &log);
    EXPECT_EQ(d.call_function_single_async(0, csd), kOk);
    EXPECT_TRUE(eventually([&] { return log.at(0) == 2 && log.at(1) == 1; }));
    EXPECT_EQ(log.on_caller.load(), 0);
  });
}

TEST_P(CpuTest, HandlerOfALocalCallRunsWithIrqsDisabled) {
  on_host_of_cpu0(engine(), "local irqs off", [&](domain& d) {
    bool in_guard = false;
    EXPECT_EQ(d.call_function_single(0, [&] { in_guard = xcall::irqs_disabled(); }), kOk);
    EXPECT_TRUE(in_guard);
    EXPECT_FALSE(xcall::irqs_disabled()) << "the local run's guard must end with it";
  });
}

XCALL_TEST_ON_EVERY_ENGINE(CpuTest);

}  // namespace
