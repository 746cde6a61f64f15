// blocking_region_test.cpp — xcall::blocking_region and proxy execution
// (attach_options::proxy): a host parked in read() has its calls run at once
// by the waiting caller, as its CPU and under its run lock; the host cannot
// leave the region while a proxy runs; without proxy the region changes
// nothing; entering and leaving the region are safe points.
#include <unistd.h>

#include <atomic>
#include <thread>

#include "app_host.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::attach_options;
using xcall::cpu_t;
using xcall::delivery_mode;
using xcall::domain;
using xcall_test::app_host;
using xcall_test::attached_domain_options;
using xcall_test::kUnitDeadline;
using xcall_test::parked_cpu0;
using xcall_test::parked_reader;
using xcall_test::run_record;
using xcall_test::run_with_deadline;

const attach_options kProxy{delivery_mode::poll, true};

class BlockingRegionTest : public xcall_test::engine_test {};

TEST_P(BlockingRegionTest, WaitingCallsToAParkedHostRunAtOnceAsItsCpu) {
  run_with_deadline(kUnitDeadline, "proxy for a host parked in read()", [&] {
    domain d(attached_domain_options(2, engine()));
    parked_cpu0 parked(d, kProxy);
    parked_reader& reader = parked.reader;
    for (int i = 0; i < 100; ++i) {
      run_record r;
      ASSERT_FALSE(d.call_function_single(0, &run_record::record, &r, true));
      ASSERT_EQ(r.runs.load(), 1);
      EXPECT_EQ(r.cpu.load(), 0u) << "this_cpu() inside a proxied call is the target";
      EXPECT_EQ(r.tid.load(), xcall_test::gettid_now()) << "the caller is the proxy";
    }
    // Multi-CPU calls are proxied too (the classic engine waits on a block).
    std::atomic<int> runs{0};
    ASSERT_FALSE(d.call_function_many(
        xcall_test::make_mask(2, {0}),
        [](void* n) noexcept { static_cast<std::atomic<int>*>(n)->fetch_add(1); }, &runs, true));
    EXPECT_EQ(runs.load(), 1);
    EXPECT_FALSE(reader.left_region.load()) << "the host was never interrupted";
    EXPECT_EQ(reader.cpu_inside.load(), xcall::no_cpu) << "inside the region the host is outside";
    EXPECT_GE(d.stats()[0].proxy_runs, 101u);
    parked.release();
    EXPECT_EQ(reader.read_result.load(), 1);
  });
}

TEST_P(BlockingRegionTest, TheHostCannotLeaveWhileAProxyRunsItsCall) {
  run_with_deadline(kUnitDeadline, "run lock holds the host in its region", [&] {
    domain d(attached_domain_options(2, engine()));
    parked_cpu0 parked(d, kProxy);
    parked_reader& reader = parked.reader;
    struct gate_t {
      std::atomic<bool> entered{false};
      std::atomic<bool> open{false};
    } gate;
    std::thread caller([&] {
      EXPECT_FALSE(d.call_function_single(
          0,
          [](void* g) noexcept {
            auto* gt = static_cast<gate_t*>(g);
            gt->entered.store(true, std::memory_order_release);
            unsigned i = 0;
            while (!gt->open.load(std::memory_order_acquire)) xcall_test::backoff(i);
          },
          &gate, true));
    });
    unsigned i = 0;
    while (!gate.entered.load(std::memory_order_acquire)) xcall_test::backoff(i);
    parked.pipe.release_reader();  // read() returns; the region's end must wait
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(reader.read_result.load(), 1) << "the host should be out of read() by now";
    EXPECT_FALSE(reader.left_region.load()) << "the host left its region under a running proxy";
    gate.open.store(true, std::memory_order_release);
    caller.join();
    parked.host.join();
    EXPECT_TRUE(reader.left_region.load());
  });
}

TEST_P(BlockingRegionTest, WithoutProxyTheRegionChangesNothing) {
  run_with_deadline(kUnitDeadline, "region without proxy", [&] {
    domain d(attached_domain_options(2, engine()));
    parked_cpu0 parked(d, attach_options{});
    parked_reader& reader = parked.reader;
    EXPECT_EQ(reader.cpu_inside.load(), 0u) << "no proxy: the host is still CPU 0";
    std::atomic<bool> done{false};
    run_record r;
    std::thread caller([&] {
      EXPECT_FALSE(d.call_function_single(0, &run_record::record, &r, true));
      done.store(true);
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(done.load()) << "a poll host in read() cannot have run the call";
    parked.release();  // detaching runs the queue
    caller.join();
    EXPECT_EQ(r.runs.load(), 1);
    EXPECT_EQ(r.tid.load(), parked.host.tid());
    EXPECT_EQ(d.stats()[0].proxy_runs, 0u);
  });
}

TEST_P(BlockingRegionTest, EnteringAndLeavingAreSafePoints) {
  run_with_deadline(kUnitDeadline, "region edges run calls", [&] {
    domain d(attached_domain_options(2, engine()));
    xcall::call_single_data before(&run_record::record, nullptr);
    xcall::call_single_data during(&run_record::record, nullptr);
    run_record r_before, r_during;
    before.info = &r_before;
    during.info = &r_during;
    std::atomic<int> step{0};
    std::atomic<int> before_ran_at{-1}, during_ran_at{-1};
    app_host host(d, 0, kProxy, [&](app_host&) {
      unsigned i = 0;
      while (step.load(std::memory_order_acquire) != 1) xcall_test::backoff(i);
      {
        xcall::blocking_region region;  // runs `before`
        before_ran_at.store(r_before.runs.load());
        step.store(2, std::memory_order_release);
        while (step.load(std::memory_order_acquire) != 3) xcall_test::backoff(i);
        during_ran_at.store(r_during.runs.load());
      }  // runs `during`
      EXPECT_EQ(r_during.runs.load(), 1) << "leaving the region did not run the new call";
    });
    ASSERT_FALSE(d.call_function_single_async(0, before));
    step.store(1, std::memory_order_release);
    unsigned i = 0;
    while (step.load(std::memory_order_acquire) != 2) xcall_test::backoff(i);
    {
      // A no-wait sender proxies for a parked host at once, unless it runs
      // no calls itself (inside an irq_guard): then it owes that to its
      // guard's end. The guard lasts until the host has left the region, so
      // the host's way out is what runs the call.
      xcall::irq_guard guard;
      ASSERT_FALSE(d.call_function_single_async(0, during));
      step.store(3, std::memory_order_release);
      host.join();
    }
    EXPECT_EQ(before_ran_at.load(), 1) << "entering the region did not run the queued call";
    EXPECT_EQ(during_ran_at.load(), 0);
    EXPECT_EQ(r_during.tid.load(), host.tid());
  });
}

TEST_P(BlockingRegionTest, AProxiedFunctionMayWaitForItsCaller) {
  run_with_deadline(kUnitDeadline, "proxied function calls back", [&] {
    domain d(attached_domain_options(2, engine()));
    parked_cpu0 parked(d, kProxy);
    // The caller hosts CPU 1; the proxied function (running as CPU 0 on the
    // caller's thread) calls CPU 1 with wait: the proxy must serve its own
    // CPU meanwhile.
    auto att = d.attach(1);
    xcall_test::expect_relayed_calls(d, 0, 1, 20);
    att.detach();
    parked.release();
  });
}

TEST_P(BlockingRegionTest, PollInAProxiedFunctionRunsTheProxysOwnCpu) {
  run_with_deadline(kUnitDeadline, "poll() from a proxied function", [&] {
    domain d(attached_domain_options(2, engine()));
    parked_cpu0 parked(d, kProxy);
    auto att = d.attach(1);  // the caller is CPU 1, and will proxy for CPU 0
    struct poll_t {
      domain* d;
      xcall::call_single_data csd;
      std::atomic<bool> flag{false};
    } pl{&d,
         xcall::call_single_data(
             [](void* f) noexcept { static_cast<std::atomic<bool>*>(f)->store(true); }, nullptr)};
    pl.csd.info = &pl.flag;
    ASSERT_FALSE(d.call_function_single(
        0,
        [](void* arg) noexcept {
          auto* q = static_cast<poll_t*>(arg);
          // As CPU 0 (proxied), send to CPU 1, whose host is this very
          // thread, and poll until it ran: poll() must serve CPU 1 too.
          if (q->d->call_function_single_async(1, q->csd)) return;
          while (!q->flag.load()) xcall::poll();
        },
        &pl, true));
    EXPECT_TRUE(pl.flag.load());
    EXPECT_GE(d.stats()[0].proxy_runs, 1u);
    att.detach();
    parked.release();
  });
}

// A waiting fan-out whose functions on two targets wait for what its
// function on a parked target between them does: whichever descriptor the
// caller waits on first (percpu waits on one at a time), it must proxy the
// parked target meanwhile, or that wait never ends.
TEST_P(BlockingRegionTest, AFanOutWaitProxiesAParkedTargetTheOthersWaitFor) {
  run_with_deadline(kUnitDeadline, "fan-out: CPUs 0 and 2 wait for the parked CPU 1", [&] {
    domain d(attached_domain_options(3, engine()));
    xcall_test::parked_cpu parked(d, 1, kProxy);
    auto poll_until_stopped = [](app_host& h) {
      while (!h.stop_requested()) xcall::poll();
    };
    app_host first(d, 0, attach_options{}, poll_until_stopped);
    app_host last(d, 2, attach_options{}, poll_until_stopped);
    struct handshake {
      std::atomic<bool> parked_ran{false};
      std::atomic<int> saw_it{0};
    } hs;
    ASSERT_FALSE(d.on_each_cpu(
        [](void* p) noexcept {
          auto& h = *static_cast<handshake*>(p);
          if (xcall::this_cpu() == 1) {
            h.parked_ran.store(true, std::memory_order_release);
            return;
          }
          // Bounded, so that a caller that never proxies CPU 1 fails the
          // test instead of hanging it.
          if (xcall_test::eventually([&] { return h.parked_ran.load(std::memory_order_acquire); },
                                     3s)) {
            h.saw_it.fetch_add(1);
          }
        },
        &hs, true));
    EXPECT_EQ(hs.saw_it.load(), 2) << "the caller did not run the parked CPU 1's call while the "
                                      "functions on CPUs 0 and 2 waited for it";
    EXPECT_GE(d.stats()[1].proxy_runs, 1u);
    first.join();
    last.join();
    parked.release();
  });
}

// Two parked targets whose functions meet (a rendezvous): the caller is the
// only thread that can run them, one at a time, so the first one's wait
// must run the second as its proxy (nested) or it never meets it.
TEST_P(BlockingRegionTest, FunctionsOfTwoParkedTargetsThatWaitForEachOtherMeet) {
  run_with_deadline(kUnitDeadline, "rendezvous of the parked CPUs 0 and 1", [&] {
    domain d(attached_domain_options(2, engine()));
    xcall_test::parked_cpu first(d, 0, kProxy);
    xcall_test::parked_cpu second(d, 1, kProxy);
    struct meeting {
      std::atomic<int> arrived{0};
      std::atomic<int> met{0};
    } m;
    xcall::cpumask both(2);
    both.set(0);
    both.set(1);
    ASSERT_FALSE(d.call_function_many(
        both,
        [](void* p) noexcept {
          auto& here = *static_cast<meeting*>(p);
          here.arrived.fetch_add(1, std::memory_order_release);
          // Bounded, so that a wait that never runs the other parked CPU's
          // call fails the test instead of hanging it.
          if (xcall_test::eventually_polling(
                  [&] { return here.arrived.load(std::memory_order_acquire) == 2; }, 3s)) {
            here.met.fetch_add(1);
          }
        },
        &m, true));
    EXPECT_EQ(m.met.load(), 2) << "a function run for one parked CPU waited for the other's, "
                                  "and nothing ran it";
    EXPECT_GE(d.stats()[0].proxy_runs + d.stats()[1].proxy_runs, 2u);
    first.release();
    second.release();
  });
}

TEST_P(BlockingRegionTest, SignalDeliveryDoesNotInterruptAParkedProxyHost) {
  run_with_deadline(kUnitDeadline, "signal + proxy", [&] {
    domain d(attached_domain_options(2, engine()));
    parked_cpu0 parked(d, attach_options{delivery_mode::signal, true});
    for (int i = 0; i < 20; ++i) {
      run_record r;
      ASSERT_FALSE(d.call_function_single(0, &run_record::record, &r, true));
      EXPECT_EQ(r.tid.load(), xcall_test::gettid_now());
    }
    EXPECT_EQ(d.stats()[0].signal_runs, 0u) << "a parked host was signalled";
    parked.release();
  });
}

XCALL_TEST_ON_EVERY_ENGINE(BlockingRegionTest);

TEST(BlockingRegion, AParkedHostCannotAttachAnotherCpu) {
  domain d(attached_domain_options(2));
  auto att = d.attach(0, kProxy);
  {
    xcall::blocking_region region;
    EXPECT_EQ(xcall::this_cpu(), xcall::no_cpu);
    try {
      auto other = d.attach(1);
      FAIL() << "a thread parked as CPU 0 attached CPU 1";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
      EXPECT_NE(std::string(e.what()).find("already hosts CPU 0"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(xcall::this_cpu(), 0u);
}

TEST(BlockingRegion, OnAThreadThatHostsNothingItIsANoOp) {
  xcall::blocking_region region;
  EXPECT_EQ(xcall::this_cpu(), xcall::no_cpu);
}

}  // namespace
