// hotplug_composition_test.cpp — cpu_down/cpu_up made by functions that calls
// run: of a CPU that waits for the very function, of a CPU whose hotplug is
// already in progress on the same thread (a flip drained inside a flip's
// wait), of the caller's own CPU, two CPUs taking each other down at once,
// and from where the wait could never end (a proxy's home CPU, an irq_guard).
// Each either works or fails at once with resource_deadlock_would_occur.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <system_error>
#include <thread>
#include <vector>

#include "app_host.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::kUnitDeadline;
using xcall_test::owned_options;
using xcall_test::run_with_deadline;

const std::error_code kOk{};
const std::error_code kDeadlk = std::make_error_code(std::errc::resource_deadlock_would_occur);

class HotplugFromFunctionTest : public xcall_test::engine_test {};

struct hotplug_ctx {
  domain* d;
  cpu_t target;
  std::atomic<int> failures{0};
  std::error_code first_error{};

  void note(std::error_code ec) {
    if (ec && failures.fetch_add(1) == 0) first_error = ec;
  }
  static void flip(void* p) noexcept {
    auto* h = static_cast<hotplug_ctx*>(p);
    h->note(h->d->cpu_down(h->target));
    h->note(h->d->cpu_up(h->target));
  }
};

TEST_P(HotplugFromFunctionTest, CpuDownOfTheCpuThatWaitsForTheFunction) {
  domain d(owned_options(3, engine()));
  hotplug_ctx h{&d, 0};
  run_with_deadline(kUnitDeadline, "cpu_down of a CPU waiting for its caller", [&] {
    for (int round = 0; round < 10; ++round) {
      // CPU 0 waits for CPU 1, whose function takes CPU 0 down.
      ASSERT_EQ(d.call_function_single(
                    0, [&] { (void)d.call_function_single(1, [&] { h.note(d.cpu_down(0)); }); }),
                kOk);
      EXPECT_FALSE(d.cpu_online(0)) << "round " << round;
      ASSERT_EQ(d.cpu_up(0), kOk);
      EXPECT_TRUE(d.cpu_online(0));
    }
  });
  EXPECT_EQ(h.failures.load(), 0) << h.first_error.message();
}

TEST_P(HotplugFromFunctionTest, SecondCpuDownFromACpuADyingFunctionWaitsFor) {
  // CPU 1 runs f while it goes down (f was queued just before the request);
  // f waits for CPU 2, whose function asks for CPU 1 to go down as well.
  domain d(owned_options(3, engine()));
  struct chain {
    domain* d;
    hotplug_ctx h;
    std::atomic<int> done{0};
  } c{&d, {&d, 1}, {}};
  run_with_deadline(kUnitDeadline, "a second cpu_down from the CPU a dying function waits for",
                    [&] {
                      for (int round = 0; round < 20; ++round) {
                        c.done.store(0);
                        ASSERT_EQ(d.call_function_single(
                                      1,
                                      [](void* p) noexcept {
                                        auto* cc = static_cast<chain*>(p);
                                        (void)cc->d->call_function_single(
                                            2, [cc] { cc->h.note(cc->d->cpu_down(1)); });
                                        cc->done.fetch_add(1);
                                      },
                                      &c, false),
                                  kOk);
                        ASSERT_EQ(d.cpu_down(1), kOk);
                        EXPECT_TRUE(xcall_test::eventually([&] { return c.done.load() == 1; }));
                        EXPECT_FALSE(d.cpu_online(1));
                        ASSERT_EQ(d.cpu_up(1), kOk);
                      }
                    });
  EXPECT_EQ(c.h.failures.load(), 0) << c.h.first_error.message();
}

TEST_P(HotplugFromFunctionTest, FlipsDrainedInsideAFlipsWait) {
  domain d(owned_options(3, engine()));
  hotplug_ctx h{&d, 1};
  run_with_deadline(kUnitDeadline, "two callers flipping CPU 1 from CPU 0", [&] {
    auto caller = [&] {
      for (int i = 0; i < 100; ++i) {
        if (d.call_function_single(0, &hotplug_ctx::flip, &h, true)) h.failures.fetch_add(1);
      }
    };
    std::thread a(caller);
    std::thread b(caller);
    a.join();
    b.join();
  });
  EXPECT_EQ(h.failures.load(), 0) << h.first_error.message();
  EXPECT_TRUE(d.cpu_online(1));
}

TEST_P(HotplugFromFunctionTest, CpuUpOfOwnCpuWhileAnotherThreadTakesItDown) {
  domain d(owned_options(3, engine()));
  hotplug_ctx h{&d, 2};
  std::atomic<bool> stop{false};
  run_with_deadline(kUnitDeadline, "cpu_up of one's own CPU against cpu_down of it", [&] {
    std::thread flipper([&] {
      for (int i = 0; i < 100; ++i) hotplug_ctx::flip(&h);
      stop.store(true);
    });
    while (!stop.load()) {
      h.note(d.on_each_cpu(
          [](void* p) noexcept {
            auto* hh = static_cast<hotplug_ctx*>(p);
            hh->note(hh->d->cpu_up(xcall::this_cpu()));
          },
          &h, true));
    }
    flipper.join();
  });
  EXPECT_EQ(h.failures.load(), 0) << h.first_error.message();
  EXPECT_TRUE(d.cpu_online(2));
}

TEST_P(HotplugFromFunctionTest, TwoCpusTakeEachOtherDownAtOnce) {
  domain d(owned_options(3, engine()));
  hotplug_ctx to1{&d, 1};
  hotplug_ctx to2{&d, 2};
  run_with_deadline(kUnitDeadline, "CPU 1 flips CPU 2 while CPU 2 flips CPU 1", [&] {
    for (int i = 0; i < 50; ++i) {
      std::thread a([&] { to2.note(d.call_function_single(1, &hotplug_ctx::flip, &to2, true)); });
      std::thread b([&] { to1.note(d.call_function_single(2, &hotplug_ctx::flip, &to1, true)); });
      a.join();
      b.join();
    }
  });
  // A CPU taken down before the other's call reached it makes that call ENXIO.
  const auto enxio = std::make_error_code(std::errc::no_such_device_or_address);
  for (hotplug_ctx* h : {&to1, &to2}) {
    if (h->failures.load() != 0) {
      EXPECT_EQ(h->first_error, enxio) << h->first_error.message();
    }
  }
  EXPECT_TRUE(d.cpu_online(1));
  EXPECT_TRUE(d.cpu_online(2));
}

TEST_P(HotplugFromFunctionTest, OwnCpuDownIsEdeadlkAndUpIsFine) {
  domain d(owned_options(2, engine()));
  std::error_code down, up;
  ASSERT_EQ(d.call_function_single(1,
                                   [&] {
                                     down = d.cpu_down(1);
                                     up = d.cpu_up(1);
                                   }),
            kOk);
  EXPECT_EQ(down, kDeadlk);
  EXPECT_EQ(up, kOk);
}

TEST_P(HotplugFromFunctionTest, InsideAnIrqGuardIsEdeadlk) {
  domain d(owned_options(2, engine()));
  std::error_code down, up;
  {
    xcall::irq_guard guard;
    down = d.cpu_down(1);
    up = d.cpu_up(1);
  }
  EXPECT_EQ(down, kDeadlk);
  EXPECT_EQ(up, kDeadlk);
  EXPECT_TRUE(d.cpu_online(1));
}

TEST_P(HotplugFromFunctionTest, ProxyTakingItsHomeCpuDownIsEdeadlk) {
  // The proxy's home is CPU 0 of an owned domain; it proxies CPU 0 of an
  // attached domain, whose function takes the home CPU down.
  domain owned(owned_options(2, engine()));
  domain app(xcall_test::attached_domain_options(1, engine()));
  xcall_test::parked_cpu0 host(app, {xcall::delivery_mode::poll, true});
  std::error_code down;
  std::atomic<cpu_t> ran_as{xcall::no_cpu};
  run_with_deadline(kUnitDeadline, "a proxy taking its home CPU down", [&] {
    ASSERT_EQ(owned.call_function_single(0,
                                         [&] {
                                           (void)app.call_function_single(0, [&] {
                                             ran_as.store(xcall::this_cpu());
                                             down = owned.cpu_down(0);
                                           });
                                         }),
              kOk);
  });
  EXPECT_EQ(ran_as.load(), 0u);
  EXPECT_EQ(down, kDeadlk);
  EXPECT_TRUE(owned.cpu_online(0));
  host.release();
}

XCALL_TEST_ON_EVERY_ENGINE(HotplugFromFunctionTest);

}  // namespace
