// composition_test.cpp — guarantee 7: a function run by a call is arbitrary
// code. Each suite is one composition that once broke: a function that
// waits, polls or idles inside its own run (nested drains), a parked host
// that proxies, two threads attaching one CPU, durations at their extremes,
// a cond function that throws, ending an attachment from where it cannot end.
// Hotplug from inside functions has its own file (hotplug_composition_test).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

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
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_record;
using xcall_test::run_with_deadline;

const std::error_code kOk{};

// ---------------------------------------------------------------------------
// A function that drains its own CPU while it runs must not run again there.

/// What the function of a multi-CPU call does inside its run.
enum class nested_drain {
  waiting_call,  ///< a waiting call to CPU 0 (its wait drains this CPU)
  poll,          ///< xcall::poll()
  idle_wait,     ///< xcall::idle_wait(1 ms)
  guard_end,     ///< ends an irq_guard while a call to this CPU is pending
};

const char* name_of(nested_drain n) {
  switch (n) {
    case nested_drain::waiting_call:
      return "waiting_call";
    case nested_drain::poll:
      return "poll";
    case nested_drain::idle_wait:
      return "idle_wait";
    case nested_drain::guard_end:
      return "guard_end";
  }
  return "?";
}

struct nested_drain_param {
  xcall::engine engine;
  nested_drain how;
};

class NestedDrainTest : public testing::TestWithParam<nested_drain_param> {};

struct nested_run {
  domain* d;
  nested_drain how;
  std::atomic<int> runs[3] = {};
  std::atomic<int> pings = 0;
};

void sleep_2ms(void*) noexcept { std::this_thread::sleep_for(2ms); }
void ping(void* p) noexcept { static_cast<nested_run*>(p)->pings.fetch_add(1); }

/// The function of the multi-CPU call: counts its runs on this CPU and,
/// the first few times, drains this CPU from inside its run.
void drain_inside(void* p) noexcept {
  auto* r = static_cast<nested_run*>(p);
  const cpu_t self = xcall::this_cpu();
  // Bounded: a broken engine would re-run us from every nested drain.
  if (self >= 3 || r->runs[self].fetch_add(1) >= 5) return;
  switch (r->how) {
    case nested_drain::waiting_call:
      (void)r->d->call_function_single(0, &sleep_2ms, nullptr, true);
      break;
    case nested_drain::poll:
      xcall::poll();
      break;
    case nested_drain::idle_wait:
      (void)xcall::idle_wait(1ms);
      break;
    case nested_drain::guard_end: {
      xcall::irq_guard guard;
      // CPU 0 sends us a call while we are masked; the guard's end drains.
      (void)r->d->call_function_single(
          0,
          [](void* q) noexcept {
            auto* rr = static_cast<nested_run*>(q);
            (void)rr->d->call_function_single(rr->pings.load() % 2 + 1, &ping, rr, false);
          },
          r, false);
      std::this_thread::sleep_for(2ms);
      break;
    }
  }
}

TEST_P(NestedDrainTest, EachTargetRunsTheCallOnce) {
  const nested_drain_param p = GetParam();
  domain d(owned_options(3, p.engine));
  nested_run r{&d, p.how};
  run_with_deadline(kUnitDeadline, "a multi-CPU call whose function drains its CPU", [&] {
    for (int round = 0; round < 20; ++round) {
      for (auto& n : r.runs) n.store(0);
      ASSERT_EQ(d.call_function_many(make_mask(3, {1, 2}), &drain_inside, &r, true), kOk);
      EXPECT_EQ(r.runs[1].load(), 1) << "CPU 1, round " << round;
      EXPECT_EQ(r.runs[2].load(), 1) << "CPU 2, round " << round;
      EXPECT_EQ(r.runs[0].load(), 0) << "CPU 0 was not a target";
    }
    // The guard_end case leaves pings in flight: let them land.
    ASSERT_EQ(d.call_function(&xcall_test::noop, nullptr, true), kOk);
  });
}

std::vector<nested_drain_param> nested_drain_params() {
  std::vector<nested_drain_param> v;
  for (xcall::engine e : xcall_test::kEngines) {
    for (nested_drain n : {nested_drain::waiting_call, nested_drain::poll, nested_drain::idle_wait,
                           nested_drain::guard_end}) {
      v.push_back({e, n});
    }
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(, NestedDrainTest, testing::ValuesIn(nested_drain_params()),
                         [](const testing::TestParamInfo<nested_drain_param>& param_info) {
                           return std::string(name_of(param_info.param.how)) + "_" +
                                  xcall_test::engine_name(param_info.param.engine);
                         });

// ---------------------------------------------------------------------------
// More outside callers than outside slots.

class OutsideCallerCrowdTest : public xcall_test::engine_test {};

TEST_P(OutsideCallerCrowdTest, NoWaitCallsToOneCpuKeepMoving) {
  domain d(owned_options(2, engine()));
  constexpr int kThreads = 64;
  constexpr int kRounds = 200;
  const xcall::cpumask one = make_mask(2, {1});
  std::atomic<int> errors{0};
  run_with_deadline(kUnitDeadline, "64 outside callers of a one-CPU mask", [&] {
    std::vector<std::thread> callers;
    for (int t = 0; t < kThreads; ++t) {
      callers.emplace_back([&] {
        for (int i = 0; i < kRounds; ++i) {
          if (d.call_function_many(one, &xcall_test::noop, nullptr, false)) errors.fetch_add(1);
        }
      });
    }
    for (auto& t : callers) t.join();
  });
  EXPECT_EQ(errors.load(), 0);
}

// A caller that finds every slot held sleeps until one comes back: it does
// not spin (a crowd of spinning callers took the CPUs its targets' hosts
// needed), and the return wakes it.
TEST_P(OutsideCallerCrowdTest, ACallerBeyondTheSlotsSleepsUntilOneComesBack) {
  domain d(owned_options(2, engine()));
  // docs/api.md: max(16, min(1024, 4 x hardware threads + nr_cpus)).
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned slots = std::clamp(4 * hw + 2, 16u, 1024u);
  const xcall::cpumask one = make_mask(2, {1});
  std::atomic<bool> release{false};
  std::atomic<unsigned> holding{0};
  const auto hold = [](void* p) noexcept {
    auto* r = static_cast<std::atomic<bool>*>(p);
    while (!r->load(std::memory_order_acquire)) std::this_thread::sleep_for(1ms);
  };
  run_with_deadline(kUnitDeadline, "one caller more than the outside slots", [&] {
    std::vector<std::thread> holders;
    for (unsigned t = 0; t < slots; ++t) {
      holders.emplace_back([&] {
        // Each waits on CPU 1 inside its call: it holds its slot meanwhile.
        holding.fetch_add(1);
        EXPECT_FALSE(d.call_function_many(one, hold, &release, true));
      });
    }
    while (holding.load() < slots) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(50ms);  // every holder inside its call
    std::atomic<bool> done{false};
    std::atomic<long> cpu_ns{-1};
    std::thread extra([&] {
      timespec before{}, after{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &before);
      EXPECT_FALSE(d.call_function_many(one, &xcall_test::noop, nullptr, true));
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &after);
      cpu_ns.store((after.tv_sec - before.tv_sec) * 1'000'000'000L + after.tv_nsec -
                   before.tv_nsec);
      done.store(true);
    });
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(done.load()) << "a call went through with every outside slot held";
    release.store(true, std::memory_order_release);
    for (auto& t : holders) t.join();
    extra.join();
    // 300 ms without a slot: a spinning caller burns most of it (its fair
    // share of a CPU); a sleeping one, next to nothing.
    EXPECT_LT(cpu_ns.load(), 30'000'000L) << "CPU time of the waiting caller, in ns";
  });
}

XCALL_TEST_ON_EVERY_ENGINE(OutsideCallerCrowdTest);

// ---------------------------------------------------------------------------
// A host parked in a blocking_region that proxies for another parked host,
// whose function calls back into the first host's CPU.

class ParkedProxyHostTest : public xcall_test::engine_test {};

TEST_P(ParkedProxyHostTest, ProxiedFunctionCallsTheProxysOwnParkedCpu) {
  domain d(attached_domain_options(2, engine()));
  const attach_options proxy{delivery_mode::poll, true};
  xcall_test::parked_cpu0 host0(d, proxy);
  struct relay {
    domain* d;
    run_record inner;
    std::error_code inner_ec;
  } r{&d, {}, {}};
  std::atomic<int> outer_ec{-1};
  run_with_deadline(kUnitDeadline, "a parked host's call through a proxy, back to it", [&] {
    app_host host1(d, 1, proxy, [&](app_host&) {
      xcall::blocking_region region;  // parked too: an outside caller now
      const std::error_code ec = d.call_function_single(
          0,
          [](void* p) noexcept {
            auto* rl = static_cast<relay*>(p);
            rl->inner_ec = rl->d->call_function_single(1, &run_record::record, &rl->inner, true);
          },
          &r, true);
      outer_ec.store(ec.value());
    });
    host1.join();
  });
  EXPECT_EQ(outer_ec.load(), 0);
  EXPECT_EQ(r.inner_ec, kOk);
  EXPECT_EQ(r.inner.runs.load(), 1);
  EXPECT_EQ(r.inner.cpu.load(), 1u) << "CPU 1's call runs as CPU 1";
  host0.release();
}

TEST_P(ParkedProxyHostTest, ACrossDomainProxyRunsItsHomeCpuWhileItWaits) {
  // CPU 0 of an owned domain proxies a parked CPU of another domain; the
  // function it runs there waits for the owned domain's CPU 1, whose
  // function waits for the proxy's home, CPU 0.
  domain owned(owned_options(2, engine()));
  domain app(attached_domain_options(1, engine()));
  xcall_test::parked_cpu0 parked(app, {delivery_mode::poll, true});
  std::atomic<int> home_runs{0};
  std::atomic<cpu_t> proxied_as{xcall::no_cpu};
  run_with_deadline(kUnitDeadline, "a proxy waiting on its home domain", [&] {
    ASSERT_EQ(owned.call_function_single(0,
                                         [&] {
                                           (void)app.call_function_single(0, [&] {
                                             proxied_as.store(xcall::this_cpu());
                                             // Long enough that the wait sleeps.
                                             (void)owned.call_function_single(1, [&] {
                                               std::this_thread::sleep_for(2ms);
                                               (void)owned.call_function_single(
                                                   0, [&] { home_runs.fetch_add(1); });
                                             });
                                           });
                                         }),
              kOk);
  });
  EXPECT_EQ(proxied_as.load(), 0u);
  EXPECT_EQ(home_runs.load(), 1);
  parked.release();
}

XCALL_TEST_ON_EVERY_ENGINE(ParkedProxyHostTest);

// ---------------------------------------------------------------------------
// A host's call that would reuse the storage of an earlier no-wait call whose
// function waits for a function below it on the host's own stack.

class StorageReuseTest : public xcall_test::engine_test {};

struct reuse_chain {
  domain* d;
  std::atomic<int> h_ran{0};
  std::atomic<int> tail_ran{0};
  std::error_code h_ec{};
};

void tail(void* p) noexcept { static_cast<reuse_chain*>(p)->tail_ran.fetch_add(1); }

/// On CPU 0, after F returned: a no-wait multi-CPU call from the same depth
/// as F's, whose storage G still holds (G waits for this very function).
void reuse_h(void* p) noexcept {
  auto* r = static_cast<reuse_chain*>(p);
  r->h_ec = r->d->call_function_many(make_mask(3, {1, 2}), &tail, r, false);
  r->h_ran.fetch_add(1);
}

/// On CPU 1: waits for H on CPU 0.
void reuse_g(void* p) noexcept {
  auto* r = static_cast<reuse_chain*>(p);
  (void)r->d->call_function_single(0, &reuse_h, r, true);
}

TEST_P(StorageReuseTest, ANoWaitCallsFunctionWaitingForTheNextCallOfItsCaller) {
  domain d(owned_options(3, engine()));
  reuse_chain r{&d};
  run_with_deadline(kUnitDeadline, "a call that reuses storage its earlier call still holds", [&] {
    for (int round = 0; round < 10; ++round) {
      r.h_ran.store(0);
      r.tail_ran.store(0);
      // F on CPU 0: a no-wait multi-CPU call of G (which waits for H on
      // CPU 0), then F returns; CPU 0 runs H at F's depth.
      ASSERT_EQ(
          d.call_function_single(
              0,
              [&] {
                ASSERT_EQ(d.call_function_many(make_mask(3, {1, 2}), &reuse_g, &r, false), kOk);
              }),
          kOk);
      // G on CPUs 1 and 2, so H twice, each reaching CPUs 1 and 2.
      ASSERT_TRUE(xcall_test::eventually([&] { return r.tail_ran.load() == 4; }))
          << "round " << round << ": H ran " << r.h_ran.load() << " times";
      EXPECT_EQ(r.h_ec, kOk);
    }
  });
}

TEST_P(StorageReuseTest, InsideAnIrqGuardSpareStorageThenEdeadlk) {
  // CPU 1 spins in a function without draining: calls queued for it stay in
  // flight. CPU 0, inside an irq_guard, cannot wait for them (its own calls
  // would not run meanwhile), so each no-wait call takes a spare storage
  // until there is none, and then fails at once.
  domain d(owned_options(2, engine()));
  std::atomic<bool> spinning{false};
  std::atomic<bool> release{false};
  int ok = 0;
  std::error_code last;
  run_with_deadline(kUnitDeadline, "no-wait calls inside an irq_guard with storage in flight", [&] {
    std::thread spinner([&] {
      EXPECT_EQ(d.call_function_single(1,
                                       [&] {
                                         spinning.store(true);
                                         while (!release.load()) std::this_thread::yield();
                                       }),
                kOk);
    });
    ASSERT_TRUE(xcall_test::eventually([&] { return spinning.load(); }));
    ASSERT_EQ(d.call_function_single(0,
                                     [&] {
                                       xcall::irq_guard guard;
                                       for (int i = 0; i < 32 && !last; ++i) {
                                         last = d.call_function_single(1, &xcall_test::noop,
                                                                       nullptr, false);
                                         if (!last) ++ok;
                                       }
                                     }),
              kOk);
    release.store(true);
    spinner.join();
    ASSERT_EQ(d.call_function(&xcall_test::noop, nullptr, true), kOk);
  });
  EXPECT_GE(ok, 2) << "a busy storage must not make a no-wait call wait";
  EXPECT_EQ(last, std::make_error_code(std::errc::resource_deadlock_would_occur))
      << "with every spare storage in flight, the call must fail at once";
}

XCALL_TEST_ON_EVERY_ENGINE(StorageReuseTest);

// ---------------------------------------------------------------------------
// A no-wait call to a host parked in a blocking_region, with proxy on.

class NoWaitToParkedHostTest : public xcall_test::engine_test {};

TEST_P(NoWaitToParkedHostTest, RunsWithoutTheHostLeavingItsRegion) {
  domain d(attached_domain_options(1, engine()));
  xcall_test::parked_cpu0 host(d, {delivery_mode::poll, true});
  run_record single;
  run_record async;
  xcall::call_single_data csd(&run_record::record, &async);
  ASSERT_EQ(d.call_function_single(0, &run_record::record, &single, false), kOk);
  ASSERT_EQ(d.call_function_single_async(0, csd), kOk);
  EXPECT_TRUE(xcall_test::eventually([&] { return single.runs.load() == 1; }, 2s))
      << "the no-wait call waited for the host to leave its region";
  EXPECT_TRUE(xcall_test::eventually([&] { return async.runs.load() == 1; }, 2s));
  EXPECT_EQ(single.cpu.load(), 0u);
  EXPECT_FALSE(host.reader.left_region.load()) << "ran while the host was still parked";
  host.release();
}

XCALL_TEST_ON_EVERY_ENGINE(NoWaitToParkedHostTest);

// ---------------------------------------------------------------------------
// A host parks inside a function of an outside caller's no-wait call and
// calls from there, as an outside caller: the slot it borrows may be the one
// whose call it is running (released by its owner, its call still in flight
// because another target has not run it yet). Waiting for that call is
// waiting for itself.

struct park_and_call {
  domain* d;
  std::atomic<int> runs{0};
  static void run(void* p) noexcept {
    auto* self = static_cast<park_and_call*>(p);
    if (xcall::this_cpu() == 0) {
      xcall::blocking_region region;  // parks CPU 0: we call as an outside caller
      (void)self->d->call_function_many(make_mask(3, {1, 2}), &xcall_test::noop, nullptr, false);
    }
    self->runs.fetch_add(1);
  }
};

class ParkedCallerSlotTest : public xcall_test::engine_test {};

TEST_P(ParkedCallerSlotTest, AParkedHostDoesNotWaitForTheCallItIsRunning) {
  domain d(attached_domain_options(3, engine()));
  park_and_call f{&d};
  // CPU 0 runs every call at once and parks inside each; CPUs 1 and 2 run
  // theirs late, so the senders' call blocks stay in flight meanwhile.
  app_host h0(d, 0, {delivery_mode::poll, true}, [](app_host& h) {
    while (!h.stop_requested()) (void)xcall::idle_wait(1ms);
  });
  auto slow = [](app_host& h) {
    while (!h.stop_requested()) {
      std::this_thread::sleep_for(200us);
      xcall::poll();
    }
  };
  app_host h1(d, 1, {}, slow);
  app_host h2(d, 2, {}, slow);
  // Senders spread over the outside slots, so that one of them shares the
  // slot that CPU 0's host borrows.
  constexpr int kSenders = 24;
  constexpr int kRounds = 40;
  run_with_deadline(kUnitDeadline, "no-wait calls whose function parks and calls", [&] {
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.emplace_back([&] {
        for (int i = 0; i < kRounds; ++i) {
          EXPECT_EQ(d.call_function_many(make_mask(3, {0, 1}), &park_and_call::run, &f, false),
                    std::error_code());
        }
      });
    }
    for (auto& t : senders) t.join();
    EXPECT_TRUE(xcall_test::eventually([&] { return f.runs.load() == 2 * kSenders * kRounds; }));
  });
}

XCALL_TEST_ON_EVERY_ENGINE(ParkedCallerSlotTest);

// ---------------------------------------------------------------------------
// Two threads attaching one CPU at once.

TEST(AttachRaceTest, TheLoserGetsEbusyNamingTheCpu) {
  domain d(attached_domain_options(1));
#if defined(XCALL_TEST_TSAN) || defined(XCALL_TEST_ASAN)
  constexpr int kRounds = 300;
#else
  constexpr int kRounds = 2000;
#endif
  run_with_deadline(kUnitDeadline, "two threads racing to attach CPU 0", [&] {
    for (int round = 0; round < kRounds; ++round) {
      xcall_test::spin_barrier start(2);
      std::atomic<int> won{0};
      std::atomic<int> busy{0};
      std::string message;
      auto racer = [&] {
        start.arrive_and_wait();
        try {
          xcall::cpu_attachment att = d.attach(0, {delivery_mode::signal, false});
          won.fetch_add(1);
        } catch (const std::system_error& e) {
          if (e.code() == std::errc::device_or_resource_busy) {
            busy.fetch_add(1);
            message = e.what();
          }
        }
      };
      std::thread a(racer);
      std::thread b(racer);
      a.join();
      b.join();
      ASSERT_EQ(won.load() + busy.load(), 2) << "round " << round;
      ASSERT_GE(won.load(), 1) << "round " << round;
      if (busy.load() != 0) {
        EXPECT_NE(message.find("CPU 0 is already hosted"), std::string::npos) << message;
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Durations at their extremes saturate; none wraps.

TEST(HugeDurationTest, IdleWaitForeverSleepsUntilACallArrives) {
  domain d(attached_domain_options(1));
  std::atomic<int> returns{0};
  std::atomic<bool> stop{false};
  app_host host(d, 0, {}, [&](app_host&) {
    while (!stop.load(std::memory_order_acquire)) {
      (void)xcall::idle_wait(std::chrono::nanoseconds::max());
      returns.fetch_add(1);
    }
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(returns.load(), 0) << "idle_wait(nanoseconds::max()) returned with nothing queued";
  stop.store(true, std::memory_order_release);
  run_with_deadline(kUnitDeadline, "waking a host in idle_wait(max)", [&] {
    ASSERT_EQ(d.call_function_single(0, &xcall_test::noop, nullptr, true), kOk);
    host.join();
  });
  EXPECT_GE(returns.load(), 1);
}

TEST(HugeDurationTest, IdleWaitOfMinimumAndZeroReturnsAtOnce) {
  domain d(attached_domain_options(1));
  std::atomic<bool> done{false};
  app_host host(d, 0, {}, [&](app_host&) {
    EXPECT_FALSE(xcall::idle_wait(std::chrono::nanoseconds::min()));
    EXPECT_FALSE(xcall::idle_wait(std::chrono::nanoseconds::zero()));
    done.store(true);
  });
  run_with_deadline(kUnitDeadline, "idle_wait(min)", [&] { host.join(); });
  EXPECT_TRUE(done.load());
}

class HugeStallTimeoutTest : public xcall_test::engine_test {};

TEST_P(HugeStallTimeoutTest, NoFalseStallReport) {
  std::atomic<int> reports{0};
  for (auto timeout : {std::chrono::nanoseconds::max(),
                       std::chrono::nanoseconds(std::chrono::hours(24 * 365 * 200))}) {
    xcall::domain_options o = owned_options(2, engine(), xcall::idle_mode::sleep);
    o.stall_timeout = timeout;
    o.on_stall = [&](const xcall::stall_report&) { reports.fetch_add(1); };
    domain d(o);
    run_with_deadline(kUnitDeadline, "a 50 ms call with a huge stall timeout", [&] {
      ASSERT_EQ(d.call_function_single(
                    1, [](void*) noexcept { std::this_thread::sleep_for(50ms); }, nullptr, true),
                kOk);
    });
  }
  EXPECT_EQ(reports.load(), 0);
}

XCALL_TEST_ON_EVERY_ENGINE(HugeStallTimeoutTest);

// ---------------------------------------------------------------------------
// A cond function that throws.

class ThrowingCondTest : public xcall_test::engine_test {};

struct cond_case {
  domain* d;
  std::atomic<int> runs{0};
  bool threw = false;
};

TEST_P(ThrowingCondTest, ForTheCallersOwnCpuNothingRuns) {
  domain d(owned_options(3, engine()));
  cond_case c{&d};
  run_with_deadline(kUnitDeadline, "on_each_cpu_cond_mask with a throwing cond", [&] {
    // From CPU 0, so the caller's own CPU is in the mask.
    ASSERT_EQ(d.call_function_single(0,
                                     [&] {
                                       try {
                                         (void)d.on_each_cpu_cond_mask(
                                             [](cpu_t cpu, void*) -> bool {
                                               if (cpu == 0) throw std::runtime_error("cond");
                                               return true;
                                             },
                                             [](void* p) noexcept {
                                               static_cast<cond_case*>(p)->runs.fetch_add(1);
                                             },
                                             &c, true, d.online_mask());
                                       } catch (const std::runtime_error&) {
                                         c.threw = true;
                                       }
                                     }),
              kOk);
    // Anything queued before the throw would still land: look for it.
    ASSERT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
    std::this_thread::sleep_for(5ms);
  });
  EXPECT_TRUE(c.threw);
  EXPECT_EQ(c.runs.load(), 0) << "a call whose cond threw ran on remote CPUs";
}

TEST_P(ThrowingCondTest, ForARemoteCpuNothingRuns) {
  domain d(owned_options(3, engine()));
  cond_case c{&d};
  try {
    (void)d.on_each_cpu_cond_mask(
        [](cpu_t cpu, void*) -> bool {
          if (cpu == 2) throw std::runtime_error("cond");
          return true;
        },
        [](void* p) noexcept { static_cast<cond_case*>(p)->runs.fetch_add(1); }, &c, true,
        d.online_mask());
  } catch (const std::runtime_error&) {
    c.threw = true;
  }
  ASSERT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
  std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(c.threw);
  EXPECT_EQ(c.runs.load(), 0);
}

TEST_P(ThrowingCondTest, ANullCondMeansEveryCpuOfTheMask) {
  domain d(owned_options(3, engine()));
  xcall_test::run_log log(3);
  const xcall::cpumask mask = make_mask(3, {0, 2});
  for (bool wait : {true, false}) {
    log.reset();
    ASSERT_EQ(d.on_each_cpu_cond_mask(nullptr, &xcall_test::run_log::record, &log, wait, mask),
              kOk);
    EXPECT_TRUE(xcall_test::eventually([&] { return log.count() >= 2; }));
    std::this_thread::sleep_for(5ms);  // a third run, if any, would show now
    EXPECT_EQ(xcall_test::to_string(log.snapshot()), "[1 0 1]") << (wait ? "wait" : "no wait");
  }
}

XCALL_TEST_ON_EVERY_ENGINE(ThrowingCondTest);

// ---------------------------------------------------------------------------
// Ending an attachment from where it cannot end.

/// CPU 1's host waits for CPU 0, whose function sends CPU 1 a function that
/// ends CPU 1's attachment: it runs inside that wait, which drains CPU 1.
void detach_inside_own_wait() {
  domain d(attached_domain_options(2));
  xcall_test::host_thread cpu0(d, 0);
  struct ctx {
    domain* d;
    xcall::cpu_attachment att;
  };
  ctx c{&d, {}};
  std::thread([&c] {
    c.att = c.d->attach(1);
    (void)c.d->call_function_many(
        make_mask(2, {0}),
        [](void* p) noexcept {
          auto* cc = static_cast<ctx*>(p);
          (void)cc->d->call_function_single(
              1, [](void* q) noexcept { static_cast<ctx*>(q)->att.detach(); }, cc, false);
          std::this_thread::sleep_for(20ms);
        },
        &c, true);
    c.att.detach();
  }).join();
}

/// A host ends its attachment from a call it addressed to its own CPU.
void detach_inside_local_run() {
  domain d(attached_domain_options(1));
  std::thread([&d] {
    xcall::cpu_attachment att = d.attach(0);
    (void)d.call_function_single(
        0, [](void* a) noexcept { static_cast<xcall::cpu_attachment*>(a)->detach(); }, &att, false);
  }).join();
}

TEST(DetachInsideACallTest, IsRefusedWithAClearAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(detach_inside_own_wait(), "ended inside a function run by a call");
  EXPECT_DEATH(detach_inside_local_run(), "ended inside a function run by a call");
}

TEST(DetachInsideACallTest, IrqGuardFlagDoesNotOutliveTheAttachment) {
  xcall::domain_options o = attached_domain_options(1);
  std::atomic<int> irqs_off_reports{0};
  std::atomic<int> reports{0};
  o.stall_timeout = 50ms;
  o.on_stall = [&](const xcall::stall_report& r) {
    if (r.unstuck) return;
    reports.fetch_add(1);
    if (r.target_irqs_disabled) irqs_off_reports.fetch_add(1);
  };
  domain d(o);
  std::thread([&] {
    xcall::irq_guard guard;
    xcall::cpu_attachment att = d.attach(0);
    att.detach();  // inside the guard
  }).join();
  // The next host computes for a while without polling: a stall report.
  std::atomic<bool> go{false};
  app_host host(d, 0, {}, [&](app_host& h) {
    h.compute([&] { return go.load(); });
    while (!h.stop_requested()) (void)xcall::idle_wait(1ms);
  });
  run_with_deadline(kUnitDeadline, "a call to a host that computes", [&] {
    std::thread release([&] {
      xcall_test::eventually([&] { return reports.load() != 0; });
      go.store(true);
    });
    ASSERT_EQ(d.call_function_single(0, &xcall_test::noop, nullptr, true), kOk);
    release.join();
  });
  EXPECT_GE(reports.load(), 1);
  EXPECT_EQ(irqs_off_reports.load(), 0) << "the new host is not inside an irq_guard";
}

void host_thread_exits_while_attached() {
  domain d(attached_domain_options(2));
  xcall::cpu_attachment moved;
  std::thread([&moved, &d] { moved = d.attach(1); }).join();
}

TEST(HostThreadExitTest, ExitingWhileHostingAbortsNamingTheCpu) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(host_thread_exits_while_attached(), "exited while hosting CPU 1");
}

}  // namespace
