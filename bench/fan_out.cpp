// fan_out.cpp — waking many sleeping CPUs at once: the wake tree
// (src/wake_tree.hpp) against the serial design it replaced
// (domain_options::wake_tree = false: the caller futex-wakes every sleeping
// target itself, one after another).
//
// Per domain size (2, 4, ... up to cfg.fan_max_cpus owned CPUs in sleep
// mode), four domains live side by side — both engines, tree on and off —
// and their samples are taken in turn, one of each, so that all four see the
// same machine load. Before every call each CPU of the domain has gone back
// to sleep since the last one (its `sleeps` counter moved), plus a
// millisecond to get into the kernel, as tests/unit/fan_out_test.cpp waits.
//
//  - call_function_many(all CPUs, no wait): the caller's time to return,
//    which is its claims plus the futex wakes it makes itself;
//  - on_each_cpu with wait: until every CPU ran the call;
//  - futex wakes per call: received (sum of doorbells_rung), of which made
//    by woken CPUs (sum of wakes_relayed); the caller's own are the rest;
//  - the critical path: the heap's depth, floor(log2 n) + 1 sequential wakes
//    when all CPUs sleep. Computed from the shape: a CPU's depth in the
//    chain that woke it is not exposed.
//
// Every call is counted: each CPU's function runs (the bench's counters)
// and the library's calls_run must both equal the calls issued.
#include <memory>
#include <thread>
#include <vector>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {
namespace {

/// The longest chain of sequential wakes when all n sleep: the caller wakes
/// a fan-out of up to 4 itself (the library's kCallerDeliveries), a larger
/// one through the heap, floor(log2 n) + 1 levels.
unsigned wake_levels(unsigned n) {
  if (n <= 4) return 1;
  unsigned levels = 0;
  while (n != 0) {
    ++levels;
    n >>= 1;
  }
  return levels;
}

/// One engine × wake-tree setting at one size: its domain, counters and samples.
struct fan_case {
  fan_case(engine kind, bool wake_tree, cpu_t cpus)
      : e(kind), tree(wake_tree), n(cpus), runs(cpus), all(cpus) {
    domain_options o = bench_options(e, idle_mode::sleep, n, /*start_threads=*/true, false);
    o.wake_tree = tree;
    d = std::make_unique<domain>(o);
    all.set_all();
    slept.assign(n, 0);
  }

  std::string name() const {
    return fmt::format("fan_out {} {} CPUs, wake tree {}", engine_name(e), n, tree ? "on" : "off");
  }

  /// Waits until every CPU has been to sleep since the last call, then a
  /// millisecond more. False after 10 s (a CPU that never sleeps: the
  /// sample is taken anyway, and the wakes per call show it).
  bool let_them_sleep() {
    const double start = now_seconds();
    bool ok = true;
    for (;;) {
      const std::vector<cpu_stats> s = d->stats();
      bool all_slept = true;
      for (cpu_t c = 0; c < n && all_slept; ++c) all_slept = s[c].sleeps > slept[c];
      if (all_slept) {
        for (cpu_t c = 0; c < n; ++c) slept[c] = s[c].sleeps;
        break;
      }
      if (now_seconds() - start > 10) {
        ok = false;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return ok;
  }

  /// One no-wait call_function_many over all CPUs; its duration in ns.
  /// Waits (untimed) until every CPU ran it.
  double many_once(results& out) {
    const std::uint64_t before = runs.total();
    const std::uint64_t t0 = now_ticks();
    const bool failed = static_cast<bool>(d->call_function_many(all, &cpu_counters::bump, &runs,
                                                                /*wait=*/false));
    const std::uint64_t t1 = now_ticks();
    if (failed) {
      count_error(out, name() + ": call_function_many failed");
      return -1;
    }
    ++issued;
    wait_until_done([&] { return runs.total() - before >= n; }, 30);
    return ticks_to_ns(t1 - t0);
  }

  double each_once(results& out) {
    const std::uint64_t t0 = now_ticks();
    const bool failed = static_cast<bool>(d->on_each_cpu(&cpu_counters::bump, &runs, true));
    const std::uint64_t t1 = now_ticks();
    if (failed) {
      count_error(out, name() + ": on_each_cpu failed");
      return -1;
    }
    ++issued;
    return ticks_to_ns(t1 - t0);
  }

  engine e;
  bool tree;
  cpu_t n;
  cpu_counters runs;
  cpumask all;
  std::unique_ptr<domain> d;
  std::vector<std::uint64_t> slept;
  std::uint64_t issued = 0;  ///< successful calls, each to all n CPUs
  std::vector<double> many, each;
  unsigned not_asleep = 0;  ///< samples taken without every CPU having slept again
};

void measure_size(const config& cfg, results& out, cpu_t n) {
  std::vector<std::unique_ptr<fan_case>> cases;
  for (engine e : {engine::percpu, engine::classic}) {
    for (bool tree : {true, false}) cases.push_back(std::make_unique<fan_case>(e, tree, n));
  }
  struct base {
    std::uint64_t rung, relayed, calls_run;
  };
  std::vector<base> at0;
  for (auto& c : cases) {
    at0.push_back({stats_total(*c->d, &cpu_stats::doorbells_rung),
                   stats_total(*c->d, &cpu_stats::wakes_relayed),
                   stats_total(*c->d, &cpu_stats::calls_run)});
  }
  const std::size_t warmup = cfg.smoke ? 1 : 3;
  const double start = now_seconds();
  // Round-robin: one sample of each case in turn, many then each.
  for (std::size_t i = 0; i < warmup + cfg.fan_samples; ++i) {
    for (auto& c : cases) {
      if (!c->let_them_sleep()) ++c->not_asleep;
      const double ns = c->many_once(out);
      if (i >= warmup && ns >= 0) c->many.push_back(ns);
    }
    for (auto& c : cases) {
      if (!c->let_them_sleep()) ++c->not_asleep;
      const double ns = c->each_once(out);
      if (i >= warmup && ns >= 0) c->each.push_back(ns);
    }
    if (i >= warmup + 10 && now_seconds() - start > cfg.fan_seconds) break;
  }
  for (std::size_t k = 0; k < cases.size(); ++k) {
    fan_case& c = *cases[k];
    // Every call reached every CPU exactly once, by the functions' count and
    // by the library's (calls_run of a no-wait call may trail its run on
    // classic, which counts after the function: wait for it briefly).
    const std::uint64_t expected = c.issued * n;
    wait_until_done([&] { return c.runs.total() >= expected; }, 30);
    check_runs(out, c.name(), c.runs.total(), expected);
    wait_until_done(
        [&] { return stats_total(*c.d, &cpu_stats::calls_run) - at0[k].calls_run >= expected; }, 5);
    check_runs(out, c.name() + " (stats calls_run)",
               stats_total(*c.d, &cpu_stats::calls_run) - at0[k].calls_run, expected);
    if (c.not_asleep != 0) {
      out.warnings.push_back(
          fmt::format("{}: {} samples taken before every CPU slept again", c.name(), c.not_asleep));
    }
    fan_out_point p;
    p.engine = engine_name(c.e);
    p.cpus = n;
    p.wake_tree = c.tree;
    p.many_return = summarize(c.many);
    p.each = summarize(c.each);
    p.calls = c.issued;
    const std::uint64_t rung = stats_total(*c.d, &cpu_stats::doorbells_rung) - at0[k].rung;
    const std::uint64_t relayed = stats_total(*c.d, &cpu_stats::wakes_relayed) - at0[k].relayed;
    if (c.issued != 0) {
      p.caller_wakes = static_cast<double>(rung - relayed) / static_cast<double>(c.issued);
      p.relayed_wakes = static_cast<double>(relayed) / static_cast<double>(c.issued);
    }
    p.levels = wake_levels(n);
    progress(
        "fan_out",
        fmt::format("{:<7} {:4} CPUs tree {:<3}  many returns p50 {:<9} p99 {:<9}  "
                    "on_each_cpu p50 {:<9} p99 {:<9}  wakes/call: caller {:.1f}, relayed {:.1f}",
                    p.engine, n, c.tree ? "on" : "off", fmt_ns(p.many_return.p50),
                    fmt_ns(p.many_return.p99), fmt_ns(p.each.p50), fmt_ns(p.each.p99),
                    p.caller_wakes, p.relayed_wakes));
    out.fan_out.push_back(std::move(p));
  }
}

}  // namespace

void run_fan_out(const config& cfg, results& out) {
  unpin_self();
  for (cpu_t n = 2; n <= cfg.fan_max_cpus && n <= kMaxCpus; n *= 2) measure_size(cfg, out, n);
}

}  // namespace xcall::bench
