// counters.hpp — the one table of a CPU's counters: each row names the
// counter, who writes it, its /proc/interrupts-style code and description.
// cpu_counters' fields, the copy into the public cpu_stats (stats.cpp) and
// format_stats()'s rows all expand from it, so a counter is added in one
// place (plus its field and comment in xcall/stats.hpp, which a static_assert
// below keeps in step). Private to the library.
//
// Writers: "host" counters are bumped by the thread holding the CPU's run
// lock (its host or a proxy), single-writer, with a relaxed load and store
// (bump()); "others" are written by any thread on slow paths (a futex wake,
// a signal, a stall report) with a relaxed fetch_add; "handler" ones by the
// doorbell signal's handler, which does not nest with itself.
//
// Ordering: every counter is relaxed; a statistic orders nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "xcall/stats.hpp"

// X(name, writer, code, description), in format_stats() order.
#define XCALL_CPU_COUNTERS(X)                                                   \
  X(calls_run, host, "CFR", "Function call runs")                               \
  X(doorbells_rung, others, "DBR", "Doorbells rung (futex wake)")               \
  X(doorbells_saved, host, "DBS", "Doorbells saved (host polling)")             \
  X(sleeps, host, "SLP", "Host sleeps")                                         \
  X(drained_on_down, host, "DWN", "Calls drained going offline")                \
  X(stalls_reported, others, "STL", "Stalls reported")                          \
  X(signals_sent, others, "SIG", "Doorbell signals sent")                       \
  X(signals_resent, others, "SRS", "Doorbell signals re-sent (no progress)")    \
  X(signal_runs, handler, "SHR", "Signal handler runs")                         \
  X(signals_deferred, handler, "SDF", "Signals deferred (irqs off, running)")   \
  X(proxy_runs, host, "PXY", "Calls run by a proxy (host parked)")              \
  X(doorbell_fd_writes, others, "DFW", "Doorbell fd writes (host in its loop)") \
  X(wakes_relayed, others, "RLY", "Wakes relayed for a fan-out (wake tree)")

namespace xcall::detail {

/// A CPU's live counters (cpu_state::counters, on its host's lines).
struct cpu_counters {
#define XCALL_COUNTER_FIELD(name, writer, code, description) std::atomic<std::uint64_t> name{0};
  XCALL_CPU_COUNTERS(XCALL_COUNTER_FIELD)
#undef XCALL_COUNTER_FIELD
};

/// How many counters the table has.
inline constexpr std::size_t kCpuCounters =
    sizeof(cpu_counters) / sizeof(std::atomic<std::uint64_t>);

// The public snapshot has a field for every row, after `cpu` and `online`.
static_assert(sizeof(cpu_stats) ==
                  offsetof(cpu_stats, calls_run) + kCpuCounters * sizeof(std::uint64_t),
              "xcall/stats.hpp's cpu_stats and XCALL_CPU_COUNTERS disagree");

/// Adds to a counter that only the calling thread writes ("host" rows, and
/// "handler" rows from the handler).
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// Adds to a counter that several threads write ("others" rows).
inline void bump_shared(std::atomic<std::uint64_t>& counter) noexcept {
  counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace xcall::detail
