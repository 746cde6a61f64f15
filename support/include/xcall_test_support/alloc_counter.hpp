// alloc_counter.hpp — the one counting allocator of xcall's tests and
// xcall-bench (target xcall_test_support; never part of the library).
//
// Linking xcall_test_support replaces the global operator new and delete,
// every form (plain, array, nothrow, aligned, sized), with versions that
// count and forward to malloc / posix_memalign and free, so memory from any
// form may be released by any delete, as the standard's replaceable set
// requires. It keeps two counts:
//
//   - allocations(): every operator new since the process started, on every
//     thread (xcall-bench's "allocations per call", cpumask_test);
//   - a window: operator new calls between open_window() and close_window(),
//     with the size and stack of the first one (no_alloc_test). A program
//     that interposes malloc & co. itself reports those calls with
//     count_malloc(); they are counted apart (window_mallocs()).
//
// Thread safety: every function, from any thread; the window is one for the
// whole process.
//
// Memory ordering: the counts are relaxed tallies and order nothing. Read
// them around quiescent stretches (after the threads that allocate joined or
// were waited for through some other acquire), as the bench and the tests
// do. open_window() and close_window() store the window flag seq_cst; the
// allocation paths read it relaxed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xcall::test_support {

/// Allocations (operator new of any form) since the process started.
std::uint64_t allocations() noexcept;

/// Zeroes the window's counts and starts counting. Not reentrant: one window
/// at a time, opened and closed by the same test.
void open_window() noexcept;
/// Stops counting; the counts stay readable until the next open_window().
void close_window() noexcept;

/// operator new calls while the window was open.
std::uint64_t window_news() noexcept;
/// count_malloc() calls while the window was open.
std::uint64_t window_mallocs() noexcept;

/// For a program that interposes malloc, calloc, realloc and memalign: counts
/// one malloc-family call of `size` bytes if the window is open. Safe from
/// inside an allocator (it never allocates; backtrace()'s own allocations
/// are not counted).
void count_malloc(std::size_t size) noexcept;

/// Prints the first allocation of the last window (size and stack, with
/// backtrace_symbols_fd) on stderr; nothing if there was none. Call
/// backtrace() once before the window opens: its first call loads libgcc
/// and allocates.
void print_first_allocation() noexcept;

}  // namespace xcall::test_support
