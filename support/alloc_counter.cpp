// alloc_counter.cpp — the replaced global operator new/delete and the counts
// (xcall_test_support/alloc_counter.hpp).
//
// Ordering: the counts are relaxed fetch_adds, tallies that order nothing;
// readers look at them around quiescent stretches (see the header). The
// window flag is stored seq_cst by open_window()/close_window() and read
// relaxed here: an allocation racing with the flag's change may or may not
// be counted, and the callers open and close the window around work they
// start and wait for themselves.
#include "xcall_test_support/alloc_counter.hpp"

#include <execinfo.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace xcall::test_support {
namespace {

std::atomic<std::uint64_t> g_allocations{0};  // operator new since the start
std::atomic<bool> g_counting{false};          // the window is open
std::atomic<std::uint64_t> g_news{0};         // operator new in the window
std::atomic<std::uint64_t> g_mallocs{0};      // count_malloc() in the window

// The first allocation of a window: its size and stack.
constexpr int kMaxFrames = 32;
void* g_first_stack[kMaxFrames];
std::atomic<int> g_first_depth{0};
std::atomic<std::size_t> g_first_size{0};
std::atomic<bool> g_first_taken{false};
// Inside note(): backtrace() may allocate, which must not count or recurse.
thread_local bool t_in_hook = false;

bool counting() noexcept {
  return g_counting.load(std::memory_order_relaxed) && !t_in_hook;  // see file comment
}

void note(std::size_t n) noexcept {
  t_in_hook = true;
  if (!g_first_taken.exchange(true, std::memory_order_relaxed)) {
    g_first_size.store(n, std::memory_order_relaxed);
    // Publishes g_first_stack; pairs with the acquire in print_first_allocation().
    g_first_depth.store(backtrace(g_first_stack, kMaxFrames), std::memory_order_release);
  }
  t_in_hook = false;
}

void count_new(std::size_t n) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);  // a tally: see file comment
  if (counting()) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    note(n);
  }
}

}  // namespace

std::uint64_t allocations() noexcept { return g_allocations.load(std::memory_order_relaxed); }

void open_window() noexcept {
  g_news.store(0, std::memory_order_relaxed);
  g_mallocs.store(0, std::memory_order_relaxed);
  g_first_taken.store(false, std::memory_order_relaxed);
  g_first_depth.store(0, std::memory_order_relaxed);
  // Orders the resets before any count of the window (which read the flag).
  g_counting.store(true, std::memory_order_seq_cst);
}

void close_window() noexcept { g_counting.store(false, std::memory_order_seq_cst); }

std::uint64_t window_news() noexcept { return g_news.load(std::memory_order_relaxed); }
std::uint64_t window_mallocs() noexcept { return g_mallocs.load(std::memory_order_relaxed); }

void count_malloc(std::size_t size) noexcept {
  if (!counting()) return;
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  note(size);
}

void print_first_allocation() noexcept {
  // Pairs with the release in note().
  const int depth = g_first_depth.load(std::memory_order_acquire);
  if (depth <= 0) return;
  std::fprintf(stderr, "first allocation in the window: %zu bytes, at\n",
               g_first_size.load(std::memory_order_relaxed));
  backtrace_symbols_fd(g_first_stack, depth, 2);
}

}  // namespace xcall::test_support

namespace {

void* counted_alloc(std::size_t size) noexcept {
  xcall::test_support::count_new(size);
  return std::malloc(size == 0 ? 1 : size);
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t align) noexcept {
  xcall::test_support::count_new(size);
  std::size_t a = static_cast<std::size_t>(align);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, a, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

}  // namespace

void* operator new(std::size_t size) {
  if (void* p = counted_alloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  if (void* p = counted_alloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_alloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_alloc(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (void* p = counted_aligned_alloc(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
  if (void* p = counted_aligned_alloc(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, align);
}

// GCC may see operator new inlined into a caller here and flag the free()
// below as a mismatch; with both sides replaced, malloc/free is the pairing.
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
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
