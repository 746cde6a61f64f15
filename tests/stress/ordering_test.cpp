// ordering_test.cpp — guarantee 4 with plain (non-atomic) data, for every
// call form and every kind of caller: what the caller wrote before the call is
// what each function reads, and with wait, what each function wrote is what
// the caller reads after the call returns. ThreadSanitizer checks the same
// edges: any missing happens-before shows up as a data race on the payload.
//
// The payload is plain memory: a sequence number and data derived from it,
// written by the caller before each call; each function checks the data is
// consistent with the sequence number and writes an echo into its own CPU's
// plain slot. After a waiting call returns, the caller reads the slots with no
// synchronisation of its own. After a no-wait call it waits on an atomic
// counter (acquire) that each function bumps (release) after its writes —
// that edge is the test's, so no-wait calls check the first half of the
// guarantee only. The next round rewrites the payload only after every
// function of this one finished reading it. Every test runs on both engines.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "call_forms.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::call_single_data;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::failure_log;
using xcall_test::form;
using xcall_test::rng;
using xcall_test::stopwatch;

constexpr cpu_t kN = 3;
constexpr int kWords = 16;

struct slot {
  std::uint64_t seen_seq = 0;
  std::uint64_t echo[kWords] = {};
  bool consistent = true;
};

struct payload {
  // Written by the caller before each call (plain).
  std::uint64_t seq = 0;
  std::uint64_t data[kWords] = {};
  // Written by the function on CPU c (plain), read by the caller after.
  slot out[kN];
  // Test-side completion count for no-wait calls (never read for wait calls
  // before the slots are, so it adds no edge there).
  std::atomic<int> done{0};
  std::atomic<long> stray{0};

  void fill(std::uint64_t s) {
    seq = s;
    for (int i = 0; i < kWords; ++i) data[i] = s * 1000003u + static_cast<std::uint64_t>(i);
  }

  static void run(void* p) noexcept {
    auto* pl = static_cast<payload*>(p);
    const cpu_t c = xcall::this_cpu();
    if (c >= kN) {
      pl->stray.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    slot& o = pl->out[c];
    const std::uint64_t s = pl->seq;
    bool ok = true;
    for (int i = 0; i < kWords; ++i) {
      const std::uint64_t v = pl->data[i];
      ok = ok && v == s * 1000003u + static_cast<std::uint64_t>(i);
      o.echo[i] = v ^ 0x5555;
    }
    o.consistent = ok;
    o.seen_seq = s;
    pl->done.fetch_add(1, std::memory_order_release);
  }

  static bool cond(cpu_t, void* p) noexcept {
    // Evaluated by the caller: reads the payload on the caller's thread.
    return static_cast<payload*>(p)->seq != 0;
  }
};

// How many functions a call of form f runs, every CPU online.
int expected_runs(form f, cpu_t self) {
  const int others = self == no_cpu ? static_cast<int>(kN) : static_cast<int>(kN) - 1;
  switch (f) {
    case form::single_wait:
    case form::single_nowait:
    case form::single_async:
    case form::fn_single:
    case form::any_wait:
    case form::any_nowait:
      return 1;
    case form::many_wait:
    case form::many_nowait:
    case form::function_wait:
    case form::function_nowait:
    case form::fn_many:
      return others;
    default:
      return static_cast<int>(kN);
  }
}

// Any form, uniformly.
form random_form(rng& r) {
  return xcall_test::kAllForms[r.below(static_cast<std::uint32_t>(xcall_test::kFormCount))];
}

struct tester {
  explicit tester(domain& dom) : d(dom), all(kN) { all.set_all(); }
  domain& d;
  cpumask all;
  payload pl;
  call_single_data csd;
  std::uint64_t next_seq = 1;
  failure_log fails;
  long rounds = 0;

  void round(form f, cpu_t self, cpu_t target) {
    // Every function of the previous round has finished with the payload.
    const std::uint64_t s = next_seq++;
    pl.fill(s);
    pl.done.store(0, std::memory_order_relaxed);
    if (f == form::single_async) {
      unsigned i = 0;
      while (csd.in_flight()) xcall_test::backoff(i);
    }
    const std::error_code ec = xcall_test::call_in_form(d, f,
                                                        {.target = target,
                                                         .mask = all,
                                                         .func = &payload::run,
                                                         .info = &pl,
                                                         .cond = &payload::cond,
                                                         .csd = &csd});
    const std::string what = name_of(f);
    if (ec) {
      fails.add(what + ": " + ec.message());
      return;
    }
    const int want = expected_runs(f, self);
    if (!waits(f)) {
      // The test's own edge: acquire on the count each function released.
      unsigned i = 0;
      const auto give_up = std::chrono::steady_clock::now() + 20s;
      while (pl.done.load(std::memory_order_acquire) < want) {
        xcall::poll();  // an async call to our own CPU may be queued here
        if (std::chrono::steady_clock::now() > give_up) {
          fails.add(what + ": a no-wait call never completed");
          return;
        }
        xcall_test::backoff(i);
      }
    }
    // Wait calls: plain reads with no synchronisation but the call's own.
    int ran = 0;
    for (cpu_t c = 0; c < kN; ++c) {
      const slot& o = pl.out[c];
      if (o.seen_seq != s) continue;
      ++ran;
      if (!o.consistent) fails.add(what + ": CPU " + std::to_string(c) + " read a torn payload");
      for (int i = 0; i < kWords; ++i) {
        if (o.echo[i] != ((s * 1000003u + static_cast<std::uint64_t>(i)) ^ 0x5555)) {
          fails.add(what + ": the caller read a stale echo from CPU " + std::to_string(c));
          break;
        }
      }
    }
    if (ran != want) {
      fails.add(what + ": " + std::to_string(ran) + " functions ran, expected " +
                std::to_string(want));
    }
    ++rounds;
  }

  void loop(cpu_t self, const stopwatch& sw, unsigned seed) {
    rng r(seed);
    while (!sw.expired()) {
      const form f = random_form(r);
      round(f, self, r.below(kN));
    }
  }
};

void report(tester& t) {
  EXPECT_EQ(t.fails.count(), 0) << t.fails.summary();
  EXPECT_EQ(t.pl.stray.load(), 0);
  EXPECT_GT(t.rounds, static_cast<long>(xcall_test::kFormCount)) << "too few rounds";
  std::printf("%ld rounds\n", t.rounds);
}

// Every test runs once per engine (OrderingTest.*/percpu, /classic). The
// percpu engine publishes func/info through each target's queue; the classic
// engine through a shared call block and its refs count, barrier for barrier
// as Linux 2.6.38–3.8 did.
class OrderingTest : public xcall_test::engine_test {};

TEST_P(OrderingTest, PlainPayloadsFromAnOutsideCaller) {
  domain d(xcall_test::owned_options(kN, engine()));
  tester t(d);
  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "ordering, outside caller", [&] {
    stopwatch sw(xcall_test::stress_duration() / 2);
    t.loop(no_cpu, sw, 1);
    // Let every no-wait descriptor be released before the tester goes away.
    unsigned i = 0;
    while (t.csd.in_flight()) xcall_test::backoff(i);
  });
  report(t);
}

TEST_P(OrderingTest, PlainPayloadsFromAnAttachedHost) {
  domain d(xcall_test::attached_domain_options(kN, engine()));
  xcall_test::host_thread h0(d, 0);
  xcall_test::host_thread h2(d, 2);
  tester t(d);
  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "ordering, attached host", [&] {
    auto att = d.attach(1);
    stopwatch sw(xcall_test::stress_duration() / 2);
    t.loop(1, sw, 2);
    unsigned i = 0;
    while (t.csd.in_flight()) {
      xcall::poll();
      xcall_test::backoff(i);
    }
  });
  report(t);
}

TEST_P(OrderingTest, PlainPayloadsFromAHandler) {
  domain d(xcall_test::owned_options(kN, engine()));
  tester t(d);
  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "ordering, handler caller", [&] {
    stopwatch sw(xcall_test::stress_duration() / 2);
    rng r(3);
    while (!sw.expired()) {
      // A handler on CPU 1 makes a few rounds, then returns.
      const std::error_code ec = d.call_function_single(1, [&] {
        for (int k = 0; k < 8; ++k) {
          const form f = random_form(r);
          t.round(f, 1, r.below(kN));
        }
      });
      if (ec) t.fails.add("driver: " + ec.message());
    }
    unsigned i = 0;
    while (t.csd.in_flight()) xcall_test::backoff(i);
  });
  report(t);
}

// Several callers at once, each with its own payload, to the same CPUs.
TEST_P(OrderingTest, PlainPayloadsFromConcurrentCallers) {
  domain d(xcall_test::owned_options(kN, engine()));
  constexpr int kCallers = 3;
  std::vector<std::unique_ptr<tester>> ts;
  for (int i = 0; i < kCallers; ++i) ts.push_back(std::make_unique<tester>(d));
  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "ordering, concurrent callers", [&] {
    stopwatch sw(xcall_test::stress_duration() / 2);
    std::vector<std::thread> threads;
    for (int i = 0; i < kCallers; ++i) {
      threads.emplace_back([&, i] {
        ts[i]->loop(no_cpu, sw, 10 + i);
        unsigned k = 0;
        while (ts[i]->csd.in_flight()) xcall_test::backoff(k);
      });
    }
    for (auto& th : threads) th.join();
  });
  for (auto& t : ts) report(*t);
}

XCALL_TEST_ON_EVERY_ENGINE(OrderingTest);

}  // namespace
