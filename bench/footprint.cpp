// footprint.cpp — what a call and a CPU cost in memory:
//
//  - allocations per call, by kind of call and caller, once warm (the design
//    promises none: descriptors live on the caller's stack or in per-caller
//    storage that the first call allocates), and how many the very first
//    call made (that storage);
//  - resident memory per CPU: /proc/self/statm before and after building a
//    domain (without threads, with owned threads, and after one caller's
//    first fan-out to every CPU, which allocates its per-target descriptors);
//    and a domain of kMaxCpus (4096) owned threads, with the time to build it
//    (all threads started) and to destroy it (all joined).
//
// Every call made here is counted: the functions' runs must match.
//
// Domains here sleep when idle, so nothing spins while allocations are counted.
//
// Ordering: the helper host of allocations_attached() announces itself with
// a release store of `ready` (acquire load by the caller) and leaves on a
// release store of `stop` (acquire load by the helper).
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <xcall_test_support/alloc_counter.hpp>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {
namespace {

/// Allocations made by `calls` calls of fn after `warm` unmeasured ones;
/// also what the first call of all made.
using xcall::test_support::allocations;

alloc_row count_allocs(engine e, const char* caller, const char* call, std::size_t calls,
                       const std::function<void()>& fn) {
  alloc_row r;
  r.engine = engine_name(e);
  r.caller = caller;
  r.call = call;
  r.calls = calls;
  std::uint64_t a0 = allocations();
  fn();
  r.first_call = allocations() - a0;
  for (int i = 0; i < 10; ++i) fn();
  a0 = allocations();
  for (std::size_t i = 0; i < calls; ++i) fn();
  r.per_call = static_cast<double>(allocations() - a0) / static_cast<double>(calls);
  return r;
}

/// What a row's calls should have run: a failed call runs nothing.
struct call_tally {
  std::size_t failed = 0;
  std::uint64_t expected = 0;  ///< function runs of the calls that did not fail

  /// Counts a call's result: `runs_if_ok` function runs if it succeeded.
  void issued(bool error, std::uint64_t runs_if_ok) {
    if (error) {
      ++failed;
    } else {
      expected += runs_if_ok;
    }
  }
};

/// A failed call runs and allocates nothing, so a row built on failures would
/// pass for a measurement: the callers count them (no allocation) and
/// report_failed() turns a count into a warning.
void report_failed(results& out, engine e, const char* caller, std::size_t failed) {
  if (failed == 0) return;
  out.warnings.push_back(
      fmt::format("footprint {}, {}: {} calls failed", engine_name(e), caller, failed));
}

void allocations_outside(const config& cfg, results& out, engine e) {
  const cpu_t n = host_cores() < 2 ? 2 : host_cores();
  domain d(bench_options(e, idle_mode::sleep, n, /*start_threads=*/true, /*pin=*/false));
  cpu_counters runs(n);
  cpumask all(n);
  all.set_all();
  call_single_data csd(&cpu_counters::bump, &runs);
  const std::size_t calls = cfg.smoke ? 20 : cfg.quick ? 200 : 1000;
  const char* who = "outside thread";
  auto& rows = out.allocations;
  call_tally tally;
  rows.push_back(count_allocs(e, who, "call_function_single, wait", calls, [&] {
    tally.issued(static_cast<bool>(d.call_function_single(0, &cpu_counters::bump, &runs, true)), 1);
  }));
  rows.push_back(count_allocs(e, who, "call_function_single, no wait", calls, [&] {
    tally.issued(static_cast<bool>(d.call_function_single(0, &cpu_counters::bump, &runs, false)),
                 1);
  }));
  rows.push_back(count_allocs(e, who, "call_function_single_async", calls, [&] {
    while (csd.in_flight()) cpu_relax();
    tally.issued(static_cast<bool>(d.call_function_single_async(0, csd)), 1);
  }));
  rows.push_back(count_allocs(e, who, "call_function_many (all), wait", calls, [&] {
    tally.issued(static_cast<bool>(d.call_function_many(all, &cpu_counters::bump, &runs, true)), n);
  }));
  rows.push_back(count_allocs(e, who, "call_function_many (all), no wait", calls, [&] {
    tally.issued(static_cast<bool>(d.call_function_many(all, &cpu_counters::bump, &runs, false)),
                 n);
  }));
  rows.push_back(count_allocs(e, who, "on_each_cpu, wait", calls, [&] {
    tally.issued(static_cast<bool>(d.on_each_cpu(&cpu_counters::bump, &runs, true)), n);
  }));
  rows.push_back(count_allocs(e, who, "on_each_cpu(callable)", calls, [&] {
    tally.issued(static_cast<bool>(d.on_each_cpu([&runs] { cpu_counters::bump(&runs); })), n);
  }));
  rows.push_back(count_allocs(e, who, "call_function_any, wait", calls, [&] {
    tally.issued(static_cast<bool>(d.call_function_any(all, &cpu_counters::bump, &runs, true)), 1);
  }));
  while (csd.in_flight()) cpu_relax();  // the descriptor outlives its flight
  report_failed(out, e, who, tally.failed);
  wait_until_done([&] { return runs.total() >= tally.expected; }, 30);
  check_runs(out, fmt::format("footprint {}, {}", engine_name(e), who), runs.total(),
             tally.expected);
}

void allocations_attached(const config& cfg, results& out, engine e) {
  const cpu_t n = 2;  // CPU 0: this thread; CPU 1: a helper in idle_wait()
  domain d(bench_options(e, idle_mode::sleep, n, /*start_threads=*/false, /*pin=*/false));
  cpu_counters runs(n);
  cpumask all(n);
  all.set_all();
  std::atomic<bool> ready{false};
  std::atomic<bool> stop{false};
  std::thread helper([&] {
    cpu_attachment self = d.attach(1);
    ready.store(true, std::memory_order_release);
    while (!stop.load(std::memory_order_acquire)) idle_wait(std::chrono::milliseconds(20));
  });
  {
    cpu_attachment self = d.attach(0);
    while (!ready.load(std::memory_order_acquire)) std::this_thread::yield();
    const std::size_t calls = cfg.smoke ? 20 : cfg.quick ? 200 : 1000;
    const char* who = "attached CPU 0";
    auto& rows = out.allocations;
    call_tally tally;
    // From CPU 0 of 2: many reaches CPU 1 only; on_each_cpu runs locally too.
    rows.push_back(count_allocs(e, who, "call_function_single, wait", calls, [&] {
      tally.issued(static_cast<bool>(d.call_function_single(1, &cpu_counters::bump, &runs, true)),
                   1);
    }));
    rows.push_back(count_allocs(e, who, "call_function_many (all), wait", calls, [&] {
      tally.issued(static_cast<bool>(d.call_function_many(all, &cpu_counters::bump, &runs, true)),
                   1);
    }));
    rows.push_back(count_allocs(e, who, "on_each_cpu, wait", calls, [&] {
      tally.issued(static_cast<bool>(d.on_each_cpu(&cpu_counters::bump, &runs, true)), 2);
    }));
    report_failed(out, e, who, tally.failed);
    check_runs(out, fmt::format("footprint {}, {}", engine_name(e), who), runs.total(),
               tally.expected);
    stop.store(true, std::memory_order_release);
  }
  helper.join();
}

long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

memory_row memory_of(const char* what, cpu_t n, long before, long after) {
  memory_row r;
  r.what = what;
  r.cpus = n;
  r.rss_before_kib = before;
  r.rss_after_kib = after;
  r.bytes_per_cpu = static_cast<double>(after - before) * 1024.0 / n;
  return r;
}

/// A domain of `n` owned threads (sleep mode): RSS per CPU, and the time to
/// build it (every thread started) and to destroy it (every thread joined).
memory_row owned_domain_row(results& out, cpu_t n, const char* what) {
  malloc_trim(0);
  const long before = rss_kib();
  const double t0 = now_seconds();
  auto d = std::make_unique<domain>(
      bench_options(engine::percpu, idle_mode::sleep, n, /*start_threads=*/true, false));
  const double t1 = now_seconds();
  const long after = rss_kib();
  // It works: one call reaches every CPU.
  cpu_counters runs(n);
  if (d->on_each_cpu(&cpu_counters::bump, &runs, true)) {
    report_failed(out, engine::percpu, what, 1);
  } else {
    check_runs(out, fmt::format("footprint {} ({} CPUs), on_each_cpu", what, n), runs.total(), n);
  }
  const double t2 = now_seconds();
  d.reset();
  const double t3 = now_seconds();
  memory_row r = memory_of(what, n, before, after);
  r.construct_ms = (t1 - t0) * 1e3;
  r.destroy_ms = (t3 - t2) * 1e3;
  return r;
}

void resident_memory(results& out, cpu_t n_threads, cpu_t n_bare, cpu_t n_many_threads) {
  malloc_trim(0);
  long before = rss_kib();
  {
    domain d(bench_options(engine::percpu, idle_mode::sleep, n_bare, false, false));
    out.memory.push_back(
        memory_of("domain, no threads (CPUs offline until attached)", n_bare, before, rss_kib()));
  }
  malloc_trim(0);
  before = rss_kib();
  {
    domain d(bench_options(engine::percpu, idle_mode::sleep, n_threads, true, false));
    const long with_threads = rss_kib();
    out.memory.push_back(
        memory_of("domain with owned threads (sleep mode)", n_threads, before, with_threads));
    cpumask all(n_threads);
    all.set_all();
    cpu_counters runs(n_threads);
    if (d.call_function_many(all, &cpu_counters::bump, &runs, true)) {
      report_failed(out, engine::percpu, "resident memory, first fan-out", 1);
    }
    check_runs(out, "footprint: first fan-out", runs.total(), n_threads);
    out.memory.push_back(memory_of("+ one outside caller's first fan-out to all CPUs", n_threads,
                                   with_threads, rss_kib()));
  }
  out.memory.push_back(
      owned_domain_row(out, n_many_threads, "domain with owned threads (sleep mode), timed"));
  for (const memory_row& r : out.memory) {
    progress(
        "footprint",
        fmt::format("{:<52} {:5} CPUs: {:+6} KiB, {:.0f} bytes/CPU{}", r.what, r.cpus,
                    r.rss_after_kib - r.rss_before_kib, r.bytes_per_cpu,
                    r.construct_ms < 0 ? std::string()
                                       : fmt::format("; built in {:.1f} ms, destroyed in {:.1f} ms",
                                                     r.construct_ms, r.destroy_ms)));
  }
}

}  // namespace

void run_footprint(const config& cfg, results& out) {
  unpin_self();
  for (engine e : {engine::percpu, engine::classic}) {
    allocations_outside(cfg, out, e);
    allocations_attached(cfg, out, e);
  }
  double worst = 0;
  for (const alloc_row& r : out.allocations) worst = r.per_call > worst ? r.per_call : worst;
  progress("footprint",
           fmt::format("allocations per call once warm: at most {:.3f} over {} kinds of call",
                       worst, out.allocations.size()));
  if (cfg.smoke) {
    resident_memory(out, 8, 64, 64);
  } else {
    resident_memory(out, cfg.quick ? 64 : 256, cfg.quick ? 1024 : 4096, cfg.quick ? 1024 : 4096);
  }
}

}  // namespace xcall::bench
