// no_alloc_test.cpp — "no heap allocation on any call path once a caller has
// made its first call": after one warm-up round of every call form, a steady
// stream of rounds allocates nothing, from an outside thread, from an attached
// host, and from a handler, on owned and on attached targets — on both
// engines.
//
// Counting: this file replaces every global operator new/new[] (plain,
// nothrow, aligned, aligned nothrow). In builds without sanitizers it also
// interposes malloc & co. (forwarding to glibc's __libc_* entry points), so an
// allocation that bypasses operator new is caught too. Allocations are counted
// only while a window is open, and while it is open no gtest machinery runs on
// any thread: errors are counted in atomics and reported after it closes.
// Every thread of the process counts (targets and hosts too): an allocation
// in a draining host is as much a call-path allocation as one in the caller.
#include <execinfo.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "app_host.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

// ---------------------------------------------------------------------------
// Counting allocator

namespace alloc_count {

std::atomic<bool> counting{false};
std::atomic<long> news{0};     // operator new calls in the window
std::atomic<long> mallocs{0};  // malloc-family calls in the window (interposed builds)

// The first allocation of a window: its size and stack, printed on failure.
constexpr int kMaxFrames = 32;
void* first_stack[kMaxFrames];
std::atomic<int> first_depth{0};
std::atomic<std::size_t> first_size{0};
std::atomic<bool> first_taken{false};
thread_local bool in_hook = false;

inline void note(std::size_t n) noexcept {
  if (!counting.load(std::memory_order_relaxed) || in_hook) return;
  in_hook = true;
  if (!first_taken.exchange(true, std::memory_order_relaxed)) {
    first_size.store(n, std::memory_order_relaxed);
    first_depth.store(backtrace(first_stack, kMaxFrames), std::memory_order_release);
  }
  in_hook = false;
}

void open_window() {
  news.store(0);
  mallocs.store(0);
  first_taken.store(false);
  first_depth.store(0);
  counting.store(true, std::memory_order_seq_cst);
}

void close_window() { counting.store(false, std::memory_order_seq_cst); }

void print_first_stack() {
  const int depth = first_depth.load(std::memory_order_acquire);
  if (depth <= 0) return;
  std::fprintf(stderr, "first allocation in the window: %zu bytes, at\n", first_size.load());
  backtrace_symbols_fd(first_stack, depth, 2);
}

}  // namespace alloc_count

#if !defined(XCALL_TEST_ASAN) && !defined(XCALL_TEST_TSAN) && defined(__GLIBC__)
#define XCALL_TEST_INTERPOSE_MALLOC 1
extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t n) {
  if (alloc_count::counting.load(std::memory_order_relaxed) && !alloc_count::in_hook) {
    alloc_count::mallocs.fetch_add(1, std::memory_order_relaxed);
    alloc_count::note(n);
  }
  return __libc_malloc(n);
}
void free(void* p) { __libc_free(p); }
void* calloc(std::size_t a, std::size_t b) {
  if (alloc_count::counting.load(std::memory_order_relaxed) && !alloc_count::in_hook) {
    alloc_count::mallocs.fetch_add(1, std::memory_order_relaxed);
    alloc_count::note(a * b);
  }
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  if (alloc_count::counting.load(std::memory_order_relaxed) && !alloc_count::in_hook) {
    alloc_count::mallocs.fetch_add(1, std::memory_order_relaxed);
    alloc_count::note(n);
  }
  return __libc_realloc(p, n);
}
void* memalign(std::size_t al, std::size_t n) {
  if (alloc_count::counting.load(std::memory_order_relaxed) && !alloc_count::in_hook) {
    alloc_count::mallocs.fetch_add(1, std::memory_order_relaxed);
    alloc_count::note(n);
  }
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

namespace {

void* counted_alloc(std::size_t n) noexcept {
  if (alloc_count::counting.load(std::memory_order_relaxed) && !alloc_count::in_hook) {
    alloc_count::news.fetch_add(1, std::memory_order_relaxed);
    alloc_count::note(n);
  }
  return std::malloc(n == 0 ? 1 : n);
}

void* counted_aligned_alloc(std::size_t n, std::align_val_t al) noexcept {
  if (alloc_count::counting.load(std::memory_order_relaxed) && !alloc_count::in_hook) {
    alloc_count::news.fetch_add(1, std::memory_order_relaxed);
    alloc_count::note(n);
  }
  std::size_t a = static_cast<std::size_t>(al);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, a, n == 0 ? 1 : n) != 0) return nullptr;
  return p;
}

}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t al) {
  if (void* p = counted_aligned_alloc(n, al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t al) {
  if (void* p = counted_aligned_alloc(n, al)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(n, al);
}

// GCC sees our operator new inlined into callers and flags the free() below
// as a mismatch; with both sides replaced here, malloc/free is the pairing.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

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

  const long start = g_runs.load();
  alloc_count::open_window();
  in_caller(kRounds);
  // Close only once every no-wait call ran, so its handler is counted too.
  const long want = start + per_round * kRounds;
  unsigned i = 0;
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (g_runs.load(std::memory_order_acquire) < want &&
         std::chrono::steady_clock::now() < give_up) {
    xcall::poll();
    xcall_test::backoff(i);
  }
  alloc_count::close_window();

  const long news = alloc_count::news.load();
  const long mallocs = alloc_count::mallocs.load();
  if (news != 0 || mallocs != 0) alloc_count::print_first_stack();
  EXPECT_EQ(news, 0) << "operator new calls during " << kRounds << " steady rounds";
  EXPECT_EQ(mallocs, 0) << "malloc-family calls during " << kRounds << " steady rounds";
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
  struct alignas(64) wide { char c[64]; };
  auto* w = new wide;
  escape(w);
  alloc_count::close_window();
  delete p;
  delete[] q;
  delete w;
  EXPECT_EQ(alloc_count::news.load(), 3);
#if defined(XCALL_TEST_INTERPOSE_MALLOC)
  alloc_count::open_window();
  void* m = std::malloc(10);
  escape(m);
  alloc_count::close_window();
  std::free(m);
  EXPECT_GE(alloc_count::mallocs.load(), 1);
#endif
  // And a window that sees none counts none.
  alloc_count::open_window();
  alloc_count::close_window();
  EXPECT_EQ(alloc_count::news.load(), 0);
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
    if (alloc_count::news.load() + alloc_count::mallocs.load() != 0) {
      alloc_count::print_first_stack();
    }
    EXPECT_EQ(alloc_count::news.load(), 0) << "first round from a signal handler";
    EXPECT_EQ(alloc_count::mallocs.load(), 0) << "first round from a signal handler";
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
