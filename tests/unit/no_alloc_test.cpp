// no_alloc_test.cpp — "no heap allocation on any call path once a caller has
// made its first call": after one warm-up round of every call form, a steady
// stream of rounds allocates nothing, from an outside thread, from an attached
// host, and from a handler, on owned and on attached targets — on both
// engines.
//
// Counting: the test links xcall_test_support, whose counting allocator
// replaces every global operator new/new[] (plain, nothrow, aligned, aligned
// nothrow) and counts them while a window is open. In builds without
// sanitizers this file also interposes malloc & co. (forwarding to glibc's
// __libc_* entry points) and reports them to the same window, so an
// allocation that bypasses operator new is caught too. While a window is
// open no gtest machinery runs on any thread: errors are counted in atomics
// and reported after it closes.
// Every thread of the process counts (targets and hosts too): an allocation
// in a draining host is as much a call-path allocation as one in the caller.
#include <execinfo.h>
#include <gtest/gtest.h>
#include <xcall_test_support/alloc_counter.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "app_host.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

// ---------------------------------------------------------------------------
// Counting: the window of the shared counting allocator, and malloc & co.

namespace alloc_count = xcall::test_support;

#if !defined(XCALL_TEST_ASAN) && !defined(XCALL_TEST_TSAN) && defined(__GLIBC__)
#define XCALL_TEST_INTERPOSE_MALLOC 1
extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t n) {
  alloc_count::count_malloc(n);
  return __libc_malloc(n);
}
void free(void* p) { __libc_free(p); }
void* calloc(std::size_t a, std::size_t b) {
  alloc_count::count_malloc(a * b);
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  alloc_count::count_malloc(n);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t al, std::size_t n) {
  alloc_count::count_malloc(n);
  return __libc_memalign(al, n);
}
void* aligned_alloc(std::size_t al, std::size_t n) { return memalign(al, n); }
int posix_memalign(void** out, std::size_t al, std::size_t n) {
  if (al < sizeof(void*) || (al & (al - 1)) != 0) return EINVAL;
  void* p = memalign(al, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"
#endif

// ---------------------------------------------------------------------------

namespace {

using namespace std::chrono_literals;
using xcall::call_single_data;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::attached_domain_options;
using xcall_test::host_thread;
using xcall_test::kUnitDeadline;
using xcall_test::owned_options;
using xcall_test::run_with_deadline;

constexpr int kRounds = 200;

std::atomic<long> g_runs{0};
std::atomic<long> g_errors{0};

void bump(void*) noexcept { g_runs.fetch_add(1, std::memory_order_relaxed); }
bool cond_all(cpu_t, void*) noexcept { return true; }

void check(std::error_code ec) noexcept {
  if (ec) g_errors.fetch_add(1, std::memory_order_relaxed);
}

// What one caller context needs for a round, set up before any window.
struct caller_kit {
  caller_kit(domain& dom, std::vector<cpu_t> tgts)
      : d(dom), targets(std::move(tgts)), all(dom.nr_cpu_ids()), csds(dom.nr_cpu_ids()) {
    all.set_all();
    for (auto& c : csds) c.func = &bump;
  }
  domain& d;
  std::vector<cpu_t> targets;  // online CPUs, the caller's own included
  cpumask all;
  std::vector<call_single_data> csds;  // one async descriptor per target
};

// One round of every call form. Allocates nothing in the test itself.
void one_round(caller_kit& k) noexcept {
  domain& d = k.d;
  auto lambda = [] { bump(nullptr); };
  for (cpu_t t : k.targets) {
    check(d.call_function_single(t, &bump, nullptr, true));
    check(d.call_function_single(t, &bump, nullptr, false));
    call_single_data& csd = k.csds[t];
    unsigned i = 0;
    while (csd.in_flight()) {
      xcall::poll();
      xcall_test::backoff(i);
    }
    check(d.call_function_single_async(t, csd));
    check(d.call_function_single(t, lambda));
  }
  for (bool wait : {true, false}) {
    check(d.call_function_many(k.all, &bump, nullptr, wait));
    check(d.call_function(&bump, nullptr, wait));
    check(d.call_function_any(k.all, &bump, nullptr, wait));
    check(d.on_each_cpu(&bump, nullptr, wait));
    check(d.on_each_cpu_mask(k.all, &bump, nullptr, wait));
    check(d.on_each_cpu_cond_mask(&cond_all, &bump, nullptr, wait, k.all));
  }
  check(d.call_function_many(k.all, lambda));
  check(d.on_each_cpu(lambda));
  check(d.on_each_cpu_mask(k.all, lambda));
}

// Waits until g_runs stops moving (all no-wait calls of the rounds ran);
// returns its value. Allocates nothing.
long settled_runs() {
  long last = -1;
  for (;;) {
    long now = g_runs.load(std::memory_order_acquire);
    if (now == last) return now;
    last = now;
    unsigned i = 0;
    auto until = std::chrono::steady_clock::now() + 20ms;
    while (std::chrono::steady_clock::now() < until) {
      xcall::poll();
      xcall_test::backoff(i);
    }
  }
}

// Warm-up round via `in_caller`, then kRounds rounds with the window open.
// `in_caller(n)` runs n rounds in the caller's context.
template <class InCaller>
void expect_no_allocation(InCaller&& in_caller) {
  g_errors.store(0);
  // Warm-up: the caller's first calls may set things up. Its runs also tell
  // how many functions one round runs.
  const long before_round = settled_runs();
  in_caller(1);
  const long per_round = settled_runs() - before_round;
  ASSERT_GT(per_round, 0);
  ASSERT_EQ(g_errors.load(), 0) << "a call failed during warm-up";
  // Make sure backtrace() has loaded what it needs outside the window.
  void* frames[4];
  (void)backtrace(frames, 4);

  // A host whose earlier classic block is still in flight after the 20 ms
  // grace takes a spare storage (caller_scope), allocated once and kept: on
  // a loaded machine that can happen inside a window. Steady state is a
  // window that allocates nothing; a spare may be made at most once per
  // depth, so a few windows settle it, and one that allocates every round
  // fails them all.
  constexpr int kWindows = 3;
  std::uint64_t news = 0;
  std::uint64_t mallocs = 0;
  long want = 0;
  for (int window = 0; window < kWindows; ++window) {
    const long start = g_runs.load();
    alloc_count::open_window();
    in_caller(kRounds);
    // Close only once every no-wait call ran, so its handler is counted too.
    want = start + per_round * kRounds;
    unsigned i = 0;
    auto give_up = std::chrono::steady_clock::now() + 20s;
    while (g_runs.load(std::memory_order_acquire) < want &&
           std::chrono::steady_clock::now() < give_up) {
      xcall::poll();
      xcall_test::backoff(i);
    }
    alloc_count::close_window();
    news = alloc_count::window_news();
    mallocs = alloc_count::window_mallocs();
    if (news == 0 && mallocs == 0) break;
    std::fprintf(stderr, "window %d of %d allocated (%llu new, %llu malloc):\n", window + 1,
                 kWindows, static_cast<unsigned long long>(news),
                 static_cast<unsigned long long>(mallocs));
    alloc_count::print_first_allocation();
  }
  EXPECT_EQ(news, 0u) << "operator new calls in each of " << kWindows << " windows of " << kRounds
                      << " steady rounds";
  EXPECT_EQ(mallocs, 0u) << "malloc-family calls in each of " << kWindows << " windows of "
                         << kRounds << " steady rounds";
  EXPECT_EQ(g_runs.load(), want) << "the rounds ran a different number of functions";
  EXPECT_EQ(g_errors.load(), 0) << "a call failed during the steady rounds";
}

TEST(AllocCounterTest, CountingAllocatorSeesAllocations) {
  // The counter itself must work, or every other test here passes vacuously.
  // The pointers escape (asm), so the compiler may not elide the pairs.
  auto escape = [](void* ptr) { asm volatile("" : : "g"(ptr) : "memory"); };
  alloc_count::open_window();
  auto* p = new int(7);
  escape(p);
  auto* q = new (std::nothrow) long[3];
  escape(q);
  struct alignas(64) wide {
    char c[64];
  };
  auto* w = new wide;
  escape(w);
  alloc_count::close_window();
  delete p;
  delete[] q;
  delete w;
  EXPECT_EQ(alloc_count::window_news(), 3u);
#if defined(XCALL_TEST_INTERPOSE_MALLOC)
  alloc_count::open_window();
  void* m = std::malloc(10);
  escape(m);
  alloc_count::close_window();
  std::free(m);
  EXPECT_GE(alloc_count::window_mallocs(), 1u);
#endif
  // And a window that sees none counts none.
  alloc_count::open_window();
  alloc_count::close_window();
  EXPECT_EQ(alloc_count::window_news(), 0u);
}

// Every caller context below runs once per engine (NoAllocTest.*/percpu,
// /classic): after warm-up, every form allocates nothing on either engine.
class NoAllocTest : public xcall_test::engine_test {};

TEST_P(NoAllocTest, OutsideCallerToOwnedCpus) {
  run_with_deadline(kUnitDeadline, "no-alloc outside/owned", [&] {
    domain d(owned_options(4, engine()));
    ASSERT_EQ(d.cpu_down(3), std::error_code());
    caller_kit kit(d, {0, 1, 2});
    expect_no_allocation([&](int n) {
      for (int i = 0; i < n; ++i) one_round(kit);
    });
  });
}

TEST_P(NoAllocTest, HandlerCallerOnAnOwnedCpu) {
  run_with_deadline(kUnitDeadline, "no-alloc handler", [&] {
    domain d(owned_options(4, engine()));
    ASSERT_EQ(d.cpu_down(3), std::error_code());
    caller_kit kit(d, {0, 1, 2});  // the handler runs on CPU 1: its own CPU is a target too
    expect_no_allocation([&](int n) {
      for (int i = 0; i < n; ++i) {
        // One callable call per round: the outside call starts the handler,
        // the handler makes the round from CPU 1.
        check(d.call_function_single(1, [&] { one_round(kit); }));
      }
    });
  });
}

TEST_P(NoAllocTest, AttachedHostCaller) {
  run_with_deadline(kUnitDeadline, "no-alloc attached host", [&] {
    domain d(attached_domain_options(4, engine()));
    host_thread h0(d, 0);
    host_thread h1(d, 1);
    host_thread h2(d, 2);
    caller_kit kit(d, {0, 1, 2});
    expect_no_allocation([&](int n) {
      h0.run([&] {
        for (int i = 0; i < n; ++i) one_round(kit);
      });
    });
  });
}

TEST_P(NoAllocTest, SignalHandlerCallerOnABusyHost) {
  run_with_deadline(kUnitDeadline, "no-alloc signal handler", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h0(d, 0);
    host_thread h2(d, 2);
    // CPU 1's host computes and never polls: each round runs in its doorbell
    // signal's handler, where an allocation could deadlock on malloc's lock.
    xcall_test::app_host h1(d, 1, xcall::attach_options{xcall::delivery_mode::signal, false},
                            [](xcall_test::app_host& h) { h.compute([] { return false; }); });
    caller_kit kit(d, {0, 1, 2});
    auto round_in_handler = [&] { one_round(kit); };
    // The very first round from the handler allocates nothing either: a
    // signal host's caller storage is made when it attaches.
    alloc_count::open_window();
    check(d.call_function_single(1, round_in_handler));
    alloc_count::close_window();
    if (alloc_count::window_news() + alloc_count::window_mallocs() != 0) {
      alloc_count::print_first_allocation();
    }
    EXPECT_EQ(alloc_count::window_news(), 0u) << "first round from a signal handler";
    EXPECT_EQ(alloc_count::window_mallocs(), 0u) << "first round from a signal handler";
    expect_no_allocation([&](int n) {
      for (int i = 0; i < n; ++i) check(d.call_function_single(1, round_in_handler));
    });
    EXPECT_GE(d.stats()[1].signal_runs, 1u) << "the rounds did not run in the handler";
  });
}

TEST_P(NoAllocTest, OutsideCallerToAttachedCpus) {
  run_with_deadline(kUnitDeadline, "no-alloc outside/attached", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h0(d, 0);
    host_thread h2(d, 2);
    caller_kit kit(d, {0, 2});
    expect_no_allocation([&](int n) {
      for (int i = 0; i < n; ++i) one_round(kit);
    });
  });
}

TEST_P(NoAllocTest, ManyOutsideThreadsEachAfterTheirFirstCall) {
  run_with_deadline(kUnitDeadline, "no-alloc many outside threads", [&] {
    domain d(owned_options(3, engine()));
    constexpr int kThreads = 4;
    caller_kit kit0(d, {0, 1, 2}), kit1(d, {0, 1, 2}), kit2(d, {0, 1, 2}), kit3(d, {0, 1, 2});
    caller_kit* kits[kThreads] = {&kit0, &kit1, &kit2, &kit3};
    // Threads live across both phases; each is told how many rounds to run.
    std::atomic<int> go{0}, done{0}, rounds{0};
    std::atomic<bool> quit{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        int seen = 0;
        for (;;) {
          unsigned i = 0;
          while (go.load() == seen && !quit.load()) xcall_test::backoff(i);
          if (quit.load()) return;
          seen = go.load();
          for (int r = rounds.load(); r > 0; --r) one_round(*kits[t]);
          done.fetch_add(1);
        }
      });
    }
    expect_no_allocation([&](int n) {
      done.store(0);
      rounds.store(n);
      go.fetch_add(1);
      unsigned i = 0;
      while (done.load() != kThreads) xcall_test::backoff(i);
    });
    quit.store(true);
    for (auto& t : ts) t.join();
  });
}

XCALL_TEST_ON_EVERY_ENGINE(NoAllocTest);

}  // namespace
