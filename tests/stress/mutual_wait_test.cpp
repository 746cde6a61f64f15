// mutual_wait_test.cpp — guarantee 6: a CPU that waits keeps running the
// calls addressed to it, so handlers (and attached hosts) that call each
// other with wait, at the same time, never deadlock.
//
// Scenarios: two handlers calling each other with wait; every CPU's handler
// calling on_each_cpu/call_function with wait at once (nested calls); calls
// bouncing between two CPUs several levels deep; attached hosts calling each
// other with wait while both wait; handlers mixing no-wait and wait calls to
// each other (a no-wait call reuses its caller's descriptor and so waits for
// the previous one, the kernel's csd_lock); and a deterministic construction
// of that last case. Every scenario runs under run_with_deadline: a deadlock
// fails with a HANG report naming where each thread was. Each scenario runs
// on both engines.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::call_single_data;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::attached_domain_options;
using xcall_test::eventually;
using xcall_test::failure_log;
using xcall_test::owned_options;
using xcall_test::progress_board;
using xcall_test::rng;
using xcall_test::run_with_deadline;
using xcall_test::stopwatch;

const std::error_code kOk{};

struct counters {
  explicit counters(cpu_t n) : per_cpu(n) {}
  std::vector<std::atomic<long>> per_cpu;
  std::atomic<long> stray{0};
  static void bump(void* p) noexcept {
    auto* c = static_cast<counters*>(p);
    const cpu_t me = xcall::this_cpu();
    if (me >= c->per_cpu.size()) {
      c->stray.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // release: a reader that sees the count sees the run finished with it.
    c->per_cpu[me].fetch_add(1, std::memory_order_release);
  }
  long total() const {
    long t = 0;
    for (auto& x : per_cpu) t += x.load(std::memory_order_acquire);
    return t;
  }
};

// A kick: an async descriptor per CPU whose function runs `body` on that CPU.
// Async descriptors are released before their function runs, so the next
// round may re-kick as soon as in_flight() is false.
struct kicker {
  kicker(domain& dom, cpu_t n) : d(dom), csds(n), done(0) {
    for (auto& c : csds) {
      c.func = &kicker::run;
      c.info = this;
    }
  }
  static void run(void* p) noexcept {
    auto* k = static_cast<kicker*>(p);
    k->body(xcall::this_cpu());
    k->done.fetch_add(1, std::memory_order_acq_rel);
  }
  // Kicks every CPU in `cpus` at once and waits until all ran their body.
  void kick_all(const std::vector<cpu_t>& cpus) {
    done.store(0, std::memory_order_relaxed);
    for (cpu_t c : cpus) {
      unsigned i = 0;
      while (csds[c].in_flight()) xcall_test::backoff(i);
      const std::error_code ec = d.call_function_single_async(c, csds[c]);
      if (ec) fails.add("kick CPU " + std::to_string(c) + ": " + ec.message());
    }
    unsigned i = 0;
    while (done.load(std::memory_order_acquire) < static_cast<long>(cpus.size())) {
      xcall_test::backoff(i);
    }
  }
  domain& d;
  std::vector<call_single_data> csds;
  std::function<void(cpu_t)> body;
  std::atomic<long> done;
  failure_log fails;
};

// Every scenario runs once per engine (MutualWaitTest.*/percpu, /classic).
class MutualWaitTest : public xcall_test::engine_test {};

TEST_P(MutualWaitTest, TwoHandlersCallEachOtherWithWait) {
  counters cnt(2);  // before the domain: it outlives every run
  domain d(owned_options(2, engine()));
  kicker k(d, 2);
  progress_board pb(1);
  pb.name(0, "kicker");
  xcall_test::scoped_hang_diagnostic diag([&] {
    return pb.render() + "\nruns: CPU0 " + std::to_string(cnt.per_cpu[0].load()) + ", CPU1 " +
           std::to_string(cnt.per_cpu[1].load());
  });
  constexpr int kInner = 20;
  k.body = [&](cpu_t me) {
    const cpu_t other = 1 - me;
    for (int i = 0; i < kInner; ++i) {
      const std::error_code ec = d.call_function_single(other, &counters::bump, &cnt, true);
      if (ec)
        k.fails.add("CPU " + std::to_string(me) + " -> " + std::to_string(other) + ": " +
                    ec.message());
    }
  };
  long rounds = 0;
  run_with_deadline(xcall_test::stress_deadline(), "two handlers calling each other", [&] {
    stopwatch sw(xcall_test::stress_duration() / 2);
    while (!sw.expired()) {
      pb.at(0, "kick both");
      k.kick_all({0, 1});
      pb.tick(0);
      ++rounds;
    }
  });
  EXPECT_EQ(k.fails.count(), 0) << k.fails.summary();
  EXPECT_EQ(cnt.per_cpu[0].load(), rounds * kInner);
  EXPECT_EQ(cnt.per_cpu[1].load(), rounds * kInner);
  EXPECT_EQ(cnt.stray.load(), 0);
  EXPECT_GT(rounds, 5);
}

TEST_P(MutualWaitTest, EveryHandlerCallsOnEachCpuWithWaitAtOnce) {
  constexpr cpu_t kN = 4;
  counters cnt(kN);  // before the domain: it outlives every run
  domain d(owned_options(kN, engine()));
  kicker k(d, kN);
  progress_board pb(1);
  pb.name(0, "kicker");
  xcall_test::scoped_hang_diagnostic diag([&] { return pb.render(); });
  std::atomic<long> expected{0};
  k.body = [&](cpu_t me) {
    cpumask all(kN);
    all.set_all();
    auto check = [&](const char* what, std::error_code ec) {
      if (ec)
        k.fails.add(std::string(what) + " from CPU " + std::to_string(me) + ": " + ec.message());
    };
    // Each adds to every CPU: on_each_cpu kN, call_function kN-1, many kN-1,
    // callable on_each_cpu kN, on_each_cpu_mask kN.
    check("on_each_cpu", d.on_each_cpu(&counters::bump, &cnt, true));
    check("call_function", d.call_function(&counters::bump, &cnt, true));
    check("call_function_many", d.call_function_many(all, &counters::bump, &cnt, true));
    check("callable on_each_cpu", d.on_each_cpu([&] { counters::bump(&cnt); }));
    check("on_each_cpu_mask", d.on_each_cpu_mask(all, &counters::bump, &cnt, true));
    expected.fetch_add(3 * kN + 2 * (kN - 1));
  };
  long rounds = 0;
  run_with_deadline(xcall_test::stress_deadline(), "nested on_each_cpu from every handler", [&] {
    stopwatch sw(xcall_test::stress_duration() / 2);
    while (!sw.expired()) {
      pb.at(0, "kick all");
      k.kick_all({0, 1, 2, 3});
      pb.tick(0);
      ++rounds;
    }
  });
  EXPECT_EQ(k.fails.count(), 0) << k.fails.summary();
  EXPECT_EQ(cnt.total(), expected.load());
  EXPECT_EQ(cnt.stray.load(), 0);
  EXPECT_GT(rounds, 5);
}

// A call bounces between CPU 0 and 1: each level calls the other CPU with
// wait, `depth` levels deep, started from both sides at once.
struct bouncer {
  domain* d;
  std::atomic<long> leaves{0};
  failure_log fails;
  void bounce(int depth) {
    if (depth == 0) {
      leaves.fetch_add(1);
      return;
    }
    const cpu_t other = 1 - xcall::this_cpu();
    const std::error_code ec = d->call_function_single(other, [&] { bounce(depth - 1); });
    if (ec) fails.add("bounce at depth " + std::to_string(depth) + ": " + ec.message());
  }
};

TEST_P(MutualWaitTest, CallsBounceBetweenTwoCpusManyLevelsDeep) {
  domain d(owned_options(2, engine()));
  bouncer b;
  b.d = &d;
  kicker k(d, 2);
  constexpr int kDepth = 12;
  k.body = [&](cpu_t) { b.bounce(kDepth); };
  long rounds = 0;
  run_with_deadline(xcall_test::stress_deadline(), "deep bouncing", [&] {
    stopwatch sw(xcall_test::stress_duration() / 4);
    while (!sw.expired()) {
      k.kick_all({0, 1});
      ++rounds;
    }
  });
  EXPECT_EQ(b.fails.count(), 0) << b.fails.summary();
  EXPECT_EQ(k.fails.count(), 0) << k.fails.summary();
  EXPECT_EQ(b.leaves.load(), 2 * rounds);
}

TEST_P(MutualWaitTest, AttachedHostsCallEachOtherWithWaitWhileBothWait) {
  constexpr cpu_t kN = 3;
  counters cnt(kN);  // before the domain: it outlives every run
  domain d(attached_domain_options(kN, engine()));
  failure_log fails;
  progress_board pb(kN);
  xcall_test::scoped_hang_diagnostic diag([&] { return pb.render(); });
  std::atomic<int> done{0};
  std::vector<long> made(kN, 0);
  run_with_deadline(xcall_test::stress_deadline(), "attached hosts waiting on each other", [&] {
    xcall_test::spin_barrier ready(kN);
    stopwatch* sw = nullptr;
    stopwatch watch(xcall_test::stress_duration() / 2);
    sw = &watch;
    std::vector<std::thread> ts;
    for (cpu_t h = 0; h < kN; ++h) {
      pb.name(h, "host " + std::to_string(h));
      ts.emplace_back([&, h] {
        auto att = d.attach(h);
        ready.arrive_and_wait();  // everyone online before anyone calls
        const cpu_t next = (h + 1) % kN;
        long calls = 0;
        while (!sw->expired()) {
          pb.at(h, "single to next, wait");
          if (auto ec = d.call_function_single(next, &counters::bump, &cnt, true)) {
            fails.add("single: " + ec.message());
          }
          pb.at(h, "call_function, wait");
          if (auto ec = d.call_function(&counters::bump, &cnt, true)) {
            fails.add("call_function: " + ec.message());
          }
          pb.at(h, "on_each_cpu, wait");
          if (auto ec = d.on_each_cpu(&counters::bump, &cnt, true)) {
            fails.add("on_each_cpu: " + ec.message());
          }
          calls += 1 + (kN - 1) + kN;
          pb.tick(h);
        }
        made[h] = calls;
        done.fetch_add(1);
        pb.at(h, "serving until all are done");
        while (done.load() < static_cast<int>(kN)) (void)xcall::idle_wait(1ms);
      });
    }
    for (auto& t : ts) t.join();
  });
  long expect = 0;
  for (long m : made) expect += m;
  EXPECT_EQ(fails.count(), 0) << fails.summary();
  EXPECT_EQ(cnt.total(), expect);
  EXPECT_EQ(cnt.stray.load(), 0);
  for (cpu_t h = 0; h < kN; ++h) EXPECT_GT(made[h], 0) << "host " << h << " made no call";
}

// Handlers on two CPUs mix no-wait and wait calls to each other. A no-wait
// call reuses its caller's descriptor for that target and first waits until
// the previous no-wait call released it (csd_lock), so this is mutual waiting
// too, on descriptors queued by *earlier* calls.
TEST_P(MutualWaitTest, HandlersMixNoWaitAndWaitCallsToEachOther) {
  constexpr cpu_t kN = 3;
  counters cnt(kN);  // before the domain: it outlives every run
  domain d(owned_options(kN, engine()));
  kicker k(d, kN);
  std::atomic<long> made{0};
  progress_board pb(1);
  pb.name(0, "kicker");
  xcall_test::scoped_hang_diagnostic diag([&] { return pb.render(); });
  k.body = [&](cpu_t me) {
    rng r(me * 7919 + static_cast<unsigned>(made.load()));
    for (int i = 0; i < 8; ++i) {
      const cpu_t other = (me + 1 + r.below(kN - 1)) % kN;
      const bool wait = r.below(2) == 0;
      if (auto ec = d.call_function_single(other, &counters::bump, &cnt, wait)) {
        k.fails.add("single: " + ec.message());
      }
      made.fetch_add(1);
    }
    cpumask all(kN);
    all.set_all();
    if (auto ec = d.call_function_many(all, &counters::bump, &cnt, false)) {
      k.fails.add("many no-wait: " + ec.message());
    }
    made.fetch_add(kN - 1);
  };
  run_with_deadline(xcall_test::stress_deadline(), "handlers mixing wait and no-wait calls", [&] {
    stopwatch sw(xcall_test::stress_duration() / 2);
    while (!sw.expired()) {
      pb.at(0, "kick all");
      k.kick_all({0, 1, 2});
      pb.tick(0);
    }
    pb.at(0, "waiting for the last no-wait calls");
    EXPECT_TRUE(eventually([&] { return cnt.total() == made.load(); }, 20s))
        << cnt.total() << " of " << made.load();
  });
  EXPECT_EQ(k.fails.count(), 0) << k.fails.summary();
  EXPECT_EQ(cnt.total(), made.load());
}

// The deterministic form of the case above, on two attached hosts:
//  1. each host makes a no-wait call to the other; neither polls, so each
//     host's no-wait descriptor sits in the other's queue;
//  2. an outside thread had queued, before those, an async call H to each
//     CPU whose function makes another no-wait call to the other CPU;
//  3. both hosts poll: each takes [H, the other's descriptor] and runs H,
//     whose no-wait call must first wait for this CPU's previous descriptor,
//     which sits on the other CPU behind the other H.
// Guarantee 6 says a waiting CPU keeps running the calls addressed to it, so
// each must run the other's descriptor while it waits; a drain that only
// looks at newly queued calls deadlocks here.
struct reuse_ctx {
  domain* d = nullptr;
  std::atomic<int> ran{0};
  std::atomic<int> errors{0};
};
reuse_ctx* g_reuse = nullptr;

void reuse_leaf(void*) noexcept { g_reuse->ran.fetch_add(1); }

void reuse_handler(void*) noexcept {
  const cpu_t other = 1 - xcall::this_cpu();
  if (g_reuse->d->call_function_single(other, &reuse_leaf, nullptr, false)) {
    g_reuse->errors.fetch_add(1);
  }
  g_reuse->ran.fetch_add(1);
}

TEST_P(MutualWaitTest, NoWaitReuseWhileThePreviousCallIsQueuedBehindAWaitingHandler) {
  std::atomic<int> step{0};
  progress_board pb(2);
  pb.name(0, "host of CPU 0");
  pb.name(1, "host of CPU 1");
  xcall_test::scoped_hang_diagnostic diag([&] {
    return pb.render() + "\nfunctions run: " + std::to_string(g_reuse ? g_reuse->ran.load() : -1) +
           " of 6";
  });
  run_with_deadline(xcall_test::kUnitDeadline, "no-wait reuse behind a waiting handler", [&] {
    domain d(attached_domain_options(2, engine()));
    reuse_ctx ctx;
    ctx.d = &d;
    g_reuse = &ctx;
    call_single_data h0(&reuse_handler, nullptr), h1(&reuse_handler, nullptr);
    auto wait_step = [&](int n) {
      unsigned i = 0;
      while (step.load() < n) xcall_test::backoff(i);
    };
    auto host = [&](cpu_t me) {
      auto att = d.attach(me);
      step.fetch_add(1);
      wait_step(3);  // H is queued on both CPUs
      pb.at(me, "no-wait call to the other CPU");
      EXPECT_EQ(d.call_function_single(1 - me, &reuse_leaf, nullptr, false), kOk);
      step.fetch_add(1);
      wait_step(5);  // both descriptors queued behind H
      pb.at(me, "poll: runs H, whose no-wait call reuses our descriptor");
      xcall::poll();
      pb.at(me, "serving until all six functions ran");
      while (ctx.ran.load() < 6) (void)xcall::idle_wait(1ms);
      pb.at(me, "detaching");
    };
    std::thread t0(host, 0), t1(host, 1);
    wait_step(2);
    EXPECT_EQ(d.call_function_single_async(0, h0), kOk);
    EXPECT_EQ(d.call_function_single_async(1, h1), kOk);
    step.fetch_add(1);
    t0.join();
    t1.join();
    EXPECT_EQ(ctx.ran.load(), 6);
    EXPECT_EQ(ctx.errors.load(), 0);
    g_reuse = nullptr;
  });
}

XCALL_TEST_ON_EVERY_ENGINE(MutualWaitTest);

}  // namespace
