// xcall_support.hpp — what the xcall measurements share: the function every
// call runs (a per-CPU counter bump, so that the bench can check every call
// ran exactly once) and that check, domain options, names of engines and
// idle modes. Used by every file that measures xcall.
//
// The bump is async-signal-safe (a lock-free atomic and this_cpu()): calls
// to a CPU with signal delivery run it inside the doorbell signal's handler.
//
// Ordering: a counter is written by one CPU's host only (relaxed load and
// store); the bench reads the totals after the calls completed, and a
// completed call (its wait returned, or its csd left flight) already
// happens-before that read through xcall's own release/acquire pairs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <xcall/xcall.hpp>

#include "format.hpp"
#include "results.hpp"

namespace xcall::bench {

/// One counter per CPU of a domain, each on its own line: the function a
/// call runs bumps the counter of the CPU it runs on (single writer).
class cpu_counters {
 public:
  explicit cpu_counters(cpu_t n) : n_(n), c_(std::make_unique<slot[]>(n)) {}
  std::uint64_t total() const noexcept {
    std::uint64_t sum = 0;
    // acquire: harmless and cheap here; the ordering that matters comes from
    // the calls' completion (see the file comment). Throughput loops poll
    // total() while calls still run: they only need to see it grow.
    for (cpu_t i = 0; i < n_; ++i) sum += c_[i].n.load(std::memory_order_acquire);
    return sum;
  }
  /// The call function: info is the cpu_counters.
  static void bump(void* info) noexcept {
    auto* self = static_cast<cpu_counters*>(info);
    const cpu_t cpu = this_cpu();
    slot& s = self->c_[cpu < self->n_ ? cpu : 0];
    // relaxed load + store: only the CPU's host runs functions on it.
    s.n.store(s.n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

 private:
  struct alignas(64) slot {
    std::atomic<std::uint64_t> n{0};
  };
  cpu_t n_;
  std::unique_ptr<slot[]> c_;
};

inline const char* engine_name(engine e) { return e == engine::percpu ? "percpu" : "classic"; }
inline const char* mode_name(idle_mode m) {
  switch (m) {
    case idle_mode::poll:
      return "poll";
    case idle_mode::adaptive:
      return "adaptive";
    case idle_mode::sleep:
      return "sleep";
  }
  return "?";
}

/// Stall reports seen during the run (the watchdog stays on: a stall in a
/// benchmark is worth knowing about, and it costs nothing when none happen).
std::atomic<std::uint64_t>& stall_reports();

/// A call that did not run as often as it should: a warning, and a count
/// error that makes xcall-bench exit non-zero (the `bench` CTest's check).
inline void count_error(results& out, std::string text) {
  out.warnings.push_back(text);
  out.count_errors.push_back(std::move(text));
}

/// A count error when a series' calls did not run exactly as often as issued.
inline void check_runs(results& out, const std::string& what, std::uint64_t ran,
                       std::uint64_t expected) {
  if (ran == expected) return;
  count_error(out, fmt::format("{}: {} function runs, expected {}", what, ran, expected));
}

/// Sum of one cpu_stats counter over a domain's CPUs.
template <class Field>
std::uint64_t stats_total(const domain& d, Field field) {
  std::uint64_t n = 0;
  for (const cpu_stats& s : d.stats()) n += s.*field;
  return n;
}

inline domain_options bench_options(engine e, idle_mode m, cpu_t nr_cpus, bool start_threads,
                                    bool pin) {
  domain_options o;
  o.nr_cpus = nr_cpus;
  o.start_threads = start_threads;
  o.pin_threads = pin;
  o.idle = m;
  o.engine_kind = e;
  o.on_stall = [](const stall_report&) {
    // relaxed: a tally read at the end of the run.
    stall_reports().fetch_add(1, std::memory_order_relaxed);
  };
  return o;
}

}  // namespace xcall::bench
