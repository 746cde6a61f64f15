// csd_test.cpp — call_single_data: its flight (in_flight from queueing until
// the target releases it), reuse from its own function, and the errors of
// domain::call_function_single_async (EBUSY, EINVAL, ENXIO). Every test that
// builds a domain runs on both engines.
#include "xcall/csd.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <system_error>
#include <thread>
#include <type_traits>

#include "test_support.hpp"
#include "xcall/cpu.hpp"
#include "xcall/domain.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::call_single_data;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::attached_domain_options;
using xcall_test::kUnitDeadline;
using xcall_test::owned_options;
using xcall_test::run_with_deadline;

const std::error_code kOk{};
const std::error_code kBusy = std::make_error_code(std::errc::device_or_resource_busy);
const std::error_code kInval = std::make_error_code(std::errc::invalid_argument);
const std::error_code kNxio = std::make_error_code(std::errc::no_such_device_or_address);

struct counter {
  std::atomic<int> runs{0};
  std::atomic<cpu_t> last_cpu{xcall::no_cpu};
  static void bump(void* p) noexcept {
    auto* c = static_cast<counter*>(p);
    c->last_cpu.store(xcall::this_cpu(), std::memory_order_relaxed);
    c->runs.fetch_add(1, std::memory_order_release);
  }
  int get() const noexcept { return runs.load(std::memory_order_acquire); }
};

// From another (plain) thread: the test body below is the attached host and
// must not call into its own CPU from itself.
std::error_code async_from_other_thread(domain& d, cpu_t cpu, call_single_data& csd) {
  std::error_code ec;
  std::thread([&] { ec = d.call_function_single_async(cpu, csd); }).join();
  return ec;
}

// The descriptor as a value: no domain, so no engine.
TEST(CsdValueTest, LayoutAndTraits) {
  static_assert(!std::is_copy_constructible_v<call_single_data>, "identity is the address");
  static_assert(!std::is_copy_assignable_v<call_single_data>, "identity is the address");
  static_assert(std::is_nothrow_default_constructible_v<call_single_data> ||
                    std::is_default_constructible_v<call_single_data>,
                "default constructible");
  SUCCEED();
}

TEST(CsdValueTest, DefaultStateIsEmptyAndNotInFlight) {
  call_single_data csd;
  EXPECT_EQ(csd.func, nullptr);
  EXPECT_EQ(csd.info, nullptr);
  EXPECT_FALSE(csd.in_flight());

  int x = 0;
  call_single_data filled(&xcall_test::noop, &x);
  EXPECT_EQ(filled.func, &xcall_test::noop);
  EXPECT_EQ(filled.info, &x);
  EXPECT_FALSE(filled.in_flight());
}

// Every test from here on runs once per engine (CsdTest.*/percpu, /classic).
class CsdTest : public xcall_test::engine_test {};

TEST_P(CsdTest, InFlightWhileQueuedToAnAttachedCpuUntilItPolls) {
  run_with_deadline(kUnitDeadline, "in_flight until poll", [&] {
    domain d(attached_domain_options(2, engine()));
    auto att = d.attach(0);
    counter c;
    call_single_data csd(&counter::bump, &c);

    ASSERT_EQ(async_from_other_thread(d, 0, csd), kOk);
    // The host has not polled: the call waits in its queue.
    EXPECT_TRUE(csd.in_flight());
    std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(csd.in_flight()) << "released without the host draining";
    EXPECT_EQ(c.get(), 0) << "ran without the host draining";

    xcall::poll();
    EXPECT_FALSE(csd.in_flight());
    EXPECT_EQ(c.get(), 1);
    EXPECT_EQ(c.last_cpu.load(), 0u);

    // Reusable once released, and it runs once per queueing.
    ASSERT_EQ(async_from_other_thread(d, 0, csd), kOk);
    EXPECT_TRUE(csd.in_flight());
    xcall::poll();
    EXPECT_FALSE(csd.in_flight());
    EXPECT_EQ(c.get(), 2);
  });
}

TEST_P(CsdTest, InFlightTurnsFalseOnceAnOwnedCpuRanIt) {
  run_with_deadline(kUnitDeadline, "owned async", [&] {
    domain d(owned_options(2, engine()));
    counter c;
    call_single_data csd(&counter::bump, &c);
    for (int i = 1; i <= 50; ++i) {
      ASSERT_EQ(d.call_function_single_async(static_cast<cpu_t>(i % 2), csd), kOk);
      ASSERT_TRUE(xcall_test::eventually([&] { return !csd.in_flight(); }));
      // Released before the function runs (async rule), so wait for the run.
      ASSERT_TRUE(xcall_test::eventually([&] { return c.get() == i; }));
      EXPECT_EQ(c.last_cpu.load(), static_cast<cpu_t>(i % 2));
    }
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(c.get(), 50) << "a descriptor ran more than once";
  });
}

// The function re-queues its own descriptor: allowed, because the target
// releases an async descriptor before running its function.
struct requeuer {
  domain* d = nullptr;
  call_single_data csd;
  int target_runs = 0;
  bool to_self = false;
  std::atomic<int> runs{0};
  std::atomic<int> errors{0};
  std::atomic<int> wrong_cpu{0};
  std::atomic<cpu_t> expected_next{0};

  static void run(void* p) noexcept {
    auto* r = static_cast<requeuer*>(p);
    const cpu_t me = xcall::this_cpu();
    if (me != r->expected_next.load(std::memory_order_relaxed)) {
      r->wrong_cpu.fetch_add(1, std::memory_order_relaxed);
    }
    const int n = r->runs.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (n < r->target_runs) {
      const cpu_t next = r->to_self ? me : (me + 1) % r->d->nr_cpu_ids();
      r->expected_next.store(next, std::memory_order_relaxed);
      if (r->d->call_function_single_async(next, r->csd)) {
        r->errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
};

// Queues r's descriptor to `first` and waits until its function ran
// `target_runs` times, re-queueing the descriptor (to the next CPU, or to its
// own with `to_self`), and the descriptor was released for the last time.
void run_requeuer(domain& d, requeuer& r, cpu_t first, int target_runs, bool to_self) {
  r.d = &d;
  r.target_runs = target_runs;
  r.to_self = to_self;
  r.csd.func = &requeuer::run;
  r.csd.info = &r;
  r.expected_next.store(first);
  ASSERT_EQ(d.call_function_single_async(first, r.csd), kOk);
  ASSERT_TRUE(xcall_test::eventually([&] { return r.runs.load() == r.target_runs; }))
      << "runs=" << r.runs.load() << " errors=" << r.errors.load();
  ASSERT_TRUE(xcall_test::eventually([&] { return !r.csd.in_flight(); }));
}

TEST_P(CsdTest, AsyncFunctionRequeuesItsOwnDescriptorOnAnotherCpu) {
  run_with_deadline(kUnitDeadline, "async requeue ping-pong", [&] {
    domain d(owned_options(3, engine()));
    requeuer r;
    ASSERT_NO_FATAL_FAILURE(run_requeuer(d, r, 0, 300, false));
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(r.runs.load(), r.target_runs);
    EXPECT_EQ(r.errors.load(), 0) << "re-queueing from the function failed (EBUSY: not released "
                                     "before the function ran?)";
    EXPECT_EQ(r.wrong_cpu.load(), 0);
  });
}

TEST_P(CsdTest, AsyncFunctionRequeuesItsOwnDescriptorOnItsOwnCpu) {
  run_with_deadline(kUnitDeadline, "async requeue to self", [&] {
    domain d(owned_options(2, engine()));
    requeuer r;
    ASSERT_NO_FATAL_FAILURE(run_requeuer(d, r, 1, 50, true));
    EXPECT_EQ(r.errors.load(), 0);
    EXPECT_EQ(r.wrong_cpu.load(), 0);
  });
}

TEST_P(CsdTest, QueuedTwiceIsBusy) {
  run_with_deadline(kUnitDeadline, "EBUSY", [&] {
    domain d(attached_domain_options(2, engine()));
    auto att = d.attach(1);
    counter c;
    call_single_data csd(&counter::bump, &c);
    ASSERT_EQ(async_from_other_thread(d, 1, csd), kOk);
    EXPECT_EQ(async_from_other_thread(d, 1, csd), kBusy);
    EXPECT_TRUE(csd.in_flight()) << "the failed call must not disturb the queued one";
    xcall::poll();
    EXPECT_EQ(c.get(), 1) << "a descriptor queued once ran " << c.get() << " times";
    EXPECT_FALSE(csd.in_flight());
    // Free again after the run.
    EXPECT_EQ(async_from_other_thread(d, 1, csd), kOk);
    xcall::poll();
    EXPECT_EQ(c.get(), 2);
  });
}

TEST_P(CsdTest, BusyAlsoForAnotherTargetCpu) {
  run_with_deadline(kUnitDeadline, "EBUSY other cpu", [&] {
    domain d(attached_domain_options(2, engine()));
    xcall_test::start_gate queued, done;
    counter c;
    call_single_data csd(&counter::bump, &c);
    std::error_code second;
    std::thread other([&] {
      auto att = d.attach(1);
      queued.wait();
      done.wait();
      xcall::poll();
    });
    auto att = d.attach(0);
    ASSERT_TRUE(xcall_test::eventually([&] { return d.cpu_online(1); }));
    std::thread([&] {
      EXPECT_EQ(d.call_function_single_async(0, csd), kOk);
      second = d.call_function_single_async(1, csd);
    }).join();
    EXPECT_EQ(second, kBusy) << "a descriptor in flight to CPU 0 was queued to CPU 1 too";
    queued.open();
    xcall::poll();
    EXPECT_EQ(c.get(), 1);
    done.open();
    other.join();
    EXPECT_EQ(c.get(), 1);
    EXPECT_EQ(c.last_cpu.load(), 0u);
  });
}

TEST_P(CsdTest, NullFuncIsInvalid) {
  run_with_deadline(kUnitDeadline, "EINVAL", [&] {
    domain d(owned_options(2, engine()));
    call_single_data csd;
    EXPECT_EQ(d.call_function_single_async(0, csd), kInval);
    EXPECT_FALSE(csd.in_flight());
    int x = 0;
    call_single_data with_info(nullptr, &x);
    EXPECT_EQ(d.call_function_single_async(1, with_info), kInval);
    EXPECT_FALSE(with_info.in_flight());
  });
}

TEST_P(CsdTest, OfflineCpuIsNxio) {
  run_with_deadline(kUnitDeadline, "ENXIO offline", [&] {
    {
      // Attach domain: a CPU nobody attached is offline.
      domain d(attached_domain_options(2, engine()));
      counter c;
      call_single_data csd(&counter::bump, &c);
      EXPECT_EQ(d.call_function_single_async(1, csd), kNxio);
      EXPECT_FALSE(csd.in_flight());
      auto att = d.attach(0);
      EXPECT_EQ(async_from_other_thread(d, 1, csd), kNxio);
      EXPECT_FALSE(csd.in_flight());
      xcall::poll();
      EXPECT_EQ(c.get(), 0);
    }
    {
      // Owned domain: a CPU taken down.
      domain d(owned_options(2, engine()));
      counter c;
      call_single_data csd(&counter::bump, &c);
      ASSERT_EQ(d.cpu_down(1), kOk);
      EXPECT_EQ(d.call_function_single_async(1, csd), kNxio);
      EXPECT_FALSE(csd.in_flight());
      ASSERT_EQ(d.cpu_up(1), kOk);
      EXPECT_EQ(d.call_function_single_async(1, csd), kOk);
      EXPECT_TRUE(xcall_test::eventually([&] { return c.get() == 1; }));
    }
  });
}

TEST_P(CsdTest, OutOfRangeCpuIsNxio) {
  run_with_deadline(kUnitDeadline, "ENXIO range", [&] {
    domain d(owned_options(2, engine()));
    counter c;
    call_single_data csd(&counter::bump, &c);
    for (cpu_t cpu : {2u, 3u, 64u, 4096u, xcall::no_cpu}) {
      EXPECT_EQ(d.call_function_single_async(cpu, csd), kNxio) << "cpu " << cpu;
      EXPECT_FALSE(csd.in_flight());
    }
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(c.get(), 0);
  });
}

TEST_P(CsdTest, ManyDescriptorsQueuedAtOnceAllRunOnce) {
  run_with_deadline(kUnitDeadline, "many csds", [&] {
    domain d(attached_domain_options(2, engine()));
    auto att = d.attach(0);
    constexpr int kN = 64;
    counter c;
    std::vector<call_single_data> csds(kN);
    for (auto& csd : csds) {
      csd.func = &counter::bump;
      csd.info = &c;
    }
    std::thread([&] {
      for (auto& csd : csds) EXPECT_EQ(d.call_function_single_async(0, csd), kOk);
    }).join();
    for (auto& csd : csds) EXPECT_TRUE(csd.in_flight());
    EXPECT_EQ(c.get(), 0);
    xcall::poll();
    EXPECT_EQ(c.get(), kN);
    for (auto& csd : csds) EXPECT_FALSE(csd.in_flight());
  });
}

XCALL_TEST_ON_EVERY_ENGINE(CsdTest);

}  // namespace
