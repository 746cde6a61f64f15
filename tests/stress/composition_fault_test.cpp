// composition_fault_test.cpp — the composition bugs brought back on purpose,
// to show that the scenarios of composition_test catch them: a classic walker
// that clears its bit after the run (nested drains run the call again), a
// one-target classic call that borrows a second outside slot (a crowd of
// outside callers deadlocks), hotplug that holds a mutex across its wait (a
// flip drained inside a flip's wait locks it twice). Each hang runs in a
// child process and is ended by the test's deadline ("HANG: ...").
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "app_host.hpp"
#include "fault_injection.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
namespace fault = xcall::detail::fault;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::make_mask;
using xcall_test::owned_options;

struct poll_inside {
  std::atomic<int> runs[3] = {};
  static void run(void* p) noexcept {
    auto* self = static_cast<poll_inside*>(p);
    const cpu_t cpu = xcall::this_cpu();
    if (cpu < 3 && self->runs[cpu].fetch_add(1) < 5) xcall::poll();
  }
};

/// Rounds of call_function_many({1, 2}, f, wait) where f polls its CPU;
/// returns the largest number of runs of one call on one CPU.
int nested_poll_rounds(xcall::engine e) {
  domain d(owned_options(3, e));
  poll_inside p;
  int worst = 0;
  xcall_test::run_with_deadline(30s, "multi-CPU calls whose function polls", [&] {
    for (int round = 0; round < 50; ++round) {
      for (auto& r : p.runs) r.store(0);
      EXPECT_FALSE(d.call_function_many(make_mask(3, {1, 2}), &poll_inside::run, &p, true));
      worst = std::max({worst, p.runs[1].load(), p.runs[2].load()});
    }
  });
  return worst;
}

TEST(CompositionFault, ClearAfterRunRunsANestedCallAgain) {
  // The re-run is reported on stderr; its late bit clear and refs decrement
  // then land on the block's next flight, which can skip a run and hang the
  // next wait: either way the child fails.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fault::arm(fault::kind::clear_after_run, 1);
        const int worst = nested_poll_rounds(xcall::engine::classic);
        std::fprintf(stderr, "most runs of one call on one CPU: %d\n", worst);
        _exit(worst > 1 ? 3 : 0);
      },
      [](int status) { return WIFEXITED(status) && WEXITSTATUS(status) != 0; },
      "classic engine: CPU [12] ran a call twice");
}

TEST(CompositionFault, WithoutTheFaultEachCallRunsOnce) {
  fault::disarm_all();
  EXPECT_EQ(nested_poll_rounds(xcall::engine::classic), 1);
  EXPECT_EQ(nested_poll_rounds(xcall::engine::percpu), 1);
}

/// 64 outside threads, no-wait calls to a one-CPU mask of a 2-CPU domain.
void crowd_of_outside_callers() {
  domain d(owned_options(2, xcall::engine::classic));
  const xcall::cpumask one = make_mask(2, {1});
  xcall_test::run_with_deadline(10s, "64 outside callers of a one-CPU mask", [&] {
    std::vector<std::thread> callers;
    for (int t = 0; t < 64; ++t) {
      callers.emplace_back([&] {
        for (int i = 0; i < 2000; ++i) {
          (void)d.call_function_many(one, &xcall_test::noop, nullptr, false);
        }
      });
    }
    for (auto& t : callers) t.join();
  });
}

TEST(CompositionFault, BorrowingASecondSlotDeadlocksACrowd) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fault::arm(fault::kind::borrow_second_slot, 1);
        crowd_of_outside_callers();
        std::fprintf(stderr, "the crowd finished\n");
        _exit(0);
      },
      testing::ExitedWithCode(1), "HANG: 64 outside callers");
}

TEST(CompositionFault, WithoutTheFaultTheCrowdFinishes) {
  fault::disarm_all();
  crowd_of_outside_callers();
}

struct flip_ctx {
  domain* d;
  static void flip(void* p) noexcept {
    auto* f = static_cast<flip_ctx*>(p);
    (void)f->d->cpu_down(1);
    (void)f->d->cpu_up(1);
  }
};

/// Two outside threads: waiting calls to CPU 0 of a function that takes
/// CPU 1 down and up.
void flips_from_two_callers() {
  domain d(owned_options(3));
  flip_ctx f{&d};
  xcall_test::run_with_deadline(10s, "two callers flipping CPU 1 from CPU 0", [&] {
    auto caller = [&] {
      for (int i = 0; i < 300; ++i) (void)d.call_function_single(0, &flip_ctx::flip, &f, true);
    };
    std::thread a(caller);
    std::thread b(caller);
    a.join();
    b.join();
  });
}

TEST(CompositionFault, AHotplugMutexHeldAcrossTheWaitDeadlocks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fault::arm(fault::kind::hotplug_mutex, 1);
        flips_from_two_callers();
        std::fprintf(stderr, "the flips finished\n");
        _exit(0);
      },
      testing::ExitedWithCode(1), "HANG: two callers flipping");
}

TEST(CompositionFault, WithoutTheFaultTheFlipsFinish) {
  fault::disarm_all();
  flips_from_two_callers();
}

// ---------------------------------------------------------------------------
// A no-wait call sent to a parked host while a proxy still holds its run lock:
// the sender's help finds the lock taken and leaves the call to the proxy,
// which must look at the queue again after its release (skip_proxy_recheck
// skips that look; widen_proxy_window holds the proxy between its drain and
// its release long enough for the sender to come).

class ProxyReleaseFault : public xcall_test::engine_test {
 protected:
  void TearDown() override { fault::disarm_all(); }
};

/// Whether a no-wait call sent inside a proxy's release window runs while
/// the host stays parked (within 2 s).
bool no_wait_call_in_a_proxy_window_runs(xcall::engine e) {
  domain d(xcall_test::attached_domain_options(1, e));
  xcall_test::parked_cpu0 host(d, {xcall::delivery_mode::poll, true});
  xcall_test::run_record proxied;
  std::thread proxy([&] {
    // Its wait proxies CPU 0 and then sits in the widened window.
    EXPECT_FALSE(d.call_function_single(0, &xcall_test::run_record::record, &proxied, true));
  });
  EXPECT_TRUE(xcall_test::eventually([&] { return proxied.runs.load() == 1; }, 2s));
  std::this_thread::sleep_for(20ms);  // well inside the proxy's 500 ms window
  xcall_test::run_record late;
  EXPECT_FALSE(d.call_function_single(0, &xcall_test::run_record::record, &late, false));
  const bool ran = xcall_test::eventually([&] { return late.runs.load() == 1; }, 2s);
  EXPECT_FALSE(host.reader.left_region.load()) << "the host left its region too early";
  host.release();
  proxy.join();
  EXPECT_EQ(late.runs.load(), 1) << "the host's way out of its region runs it at the latest";
  return ran;
}

TEST_P(ProxyReleaseFault, ANoWaitCallLeftToAReleasingProxyRuns) {
  fault::arm(fault::kind::widen_proxy_window, 500'000);
  EXPECT_TRUE(no_wait_call_in_a_proxy_window_runs(engine()))
      << "the call waited for the host to leave its region";
}

TEST_P(ProxyReleaseFault, WithoutTheRecheckTheCallWaitsForTheHost) {
  fault::arm(fault::kind::widen_proxy_window, 500'000);
  fault::arm(fault::kind::skip_proxy_recheck, 1);
  EXPECT_FALSE(no_wait_call_in_a_proxy_window_runs(engine()))
      << "the scenario no longer reaches the proxy's release window";
}

/// A signal-delivery host's async call to a parked CPU proxies it at once
/// (help_parked), outside any wait of its own; a call to the host's own CPU,
/// whose function waits for the parked CPU, arrives meanwhile. Its doorbell
/// must wait until the proxy has released the parked CPU's run lock: run in
/// between, the function would wait for a lock its own thread still holds,
/// and nobody would run the parked CPU's calls.
TEST_P(ProxyReleaseFault, ADoorbellArrivingAsAProxyReleasesWaitsForTheRelease) {
  fault::arm(fault::kind::widen_proxy_window, 300'000);
  domain d(xcall_test::attached_domain_options(2, engine()));
  xcall_test::parked_cpu0 parked(d, {xcall::delivery_mode::poll, true});
  std::atomic<bool> go{false};
  xcall_test::run_record first;
  xcall::call_single_data first_csd(&xcall_test::run_record::record, &first);
  xcall_test::app_host proxy_host(d, 1, {xcall::delivery_mode::signal, false},
                                  [&](xcall_test::app_host& h) {
                                    h.compute([&] { return go.load(); });
                                    // Proxies CPU 0 at once, then sits in the widened window.
                                    EXPECT_FALSE(d.call_function_single_async(0, first_csd));
                                    h.compute([] { return false; });
                                  });
  struct relay {
    domain* d;
    xcall_test::run_record inner;
    std::atomic<bool> done{false};
    static void run(void* p) noexcept {
      auto* r = static_cast<relay*>(p);
      (void)r->d->call_function_single(0, &xcall_test::run_record::record, &r->inner, true);
      r->done.store(true);
    }
  } r{&d, {}, {}};
  xcall_test::run_with_deadline(30s, "a doorbell arriving during a proxy's release", [&] {
    go.store(true);
    EXPECT_TRUE(xcall_test::eventually([&] { return first.runs.load() == 1; }, 5s));
    std::this_thread::sleep_for(20ms);  // inside the 300 ms window
    // Reaches CPU 1's host by signal while it still holds CPU 0's run lock.
    EXPECT_FALSE(d.call_function_single(1, &relay::run, &r, false));
    EXPECT_TRUE(xcall_test::eventually([&] { return r.done.load(); }, 20s));
  });
  EXPECT_EQ(r.inner.runs.load(), 1);
  parked.release();
  proxy_host.join();
}

XCALL_TEST_ON_EVERY_ENGINE(ProxyReleaseFault);

// ---------------------------------------------------------------------------
// A no-wait or async call sent to a parked host from inside an irq_guard: the
// sender may run no calls there, so its help is owed to the guard's end
// (forget_guarded_help drops it: the call then waits for the host to leave
// its region, which, in the nesting torture under ThreadSanitizer, was
// itself waiting for a function that polled for that very call).

class GuardedSendFault : public xcall_test::engine_test {
 protected:
  void TearDown() override { fault::disarm_all(); }
};

/// Whether a no-wait (or async) call sent inside an irq_guard to the parked
/// CPU 0 runs, after the guard, while the host stays parked (within 2 s).
bool guarded_send_to_a_parked_host_runs(xcall::engine e, bool async) {
  domain d(xcall_test::attached_domain_options(1, e));
  xcall_test::parked_cpu0 host(d, {xcall::delivery_mode::poll, true});
  xcall_test::run_record r;
  xcall::call_single_data csd(&xcall_test::run_record::record, &r);
  {
    xcall::irq_guard guard;
    EXPECT_FALSE(async ? d.call_function_single_async(0, csd)
                       : d.call_function_single(0, &xcall_test::run_record::record, &r, false));
    EXPECT_EQ(r.runs.load(), 0) << "a call ran inside the sender's irq_guard";
  }
  const bool ran = xcall_test::eventually([&] { return r.runs.load() == 1; }, 2s);
  EXPECT_FALSE(host.reader.left_region.load()) << "the host left its region too early";
  host.release();
  EXPECT_EQ(r.runs.load(), 1) << "the host's way out of its region runs it at the latest";
  return ran;
}

TEST_P(GuardedSendFault, ANoWaitCallSentInsideAGuardRunsAtItsEnd) {
  EXPECT_TRUE(guarded_send_to_a_parked_host_runs(engine(), false))
      << "the call waited for the host to leave its region";
}

TEST_P(GuardedSendFault, AnAsyncCallSentInsideAGuardRunsAtItsEnd) {
  EXPECT_TRUE(guarded_send_to_a_parked_host_runs(engine(), true))
      << "the call waited for the host to leave its region";
}

TEST_P(GuardedSendFault, ForgottenTheCallWaitsForTheHost) {
  fault::arm(fault::kind::forget_guarded_help, 1);
  EXPECT_FALSE(guarded_send_to_a_parked_host_runs(engine(), false))
      << "the scenario no longer strands the call without the guard's help";
}

XCALL_TEST_ON_EVERY_ENGINE(GuardedSendFault);

}  // namespace
