// scaling.cpp — how the cost of a multi-CPU call grows with the work: domains
// of 2, 4, ... up to cfg.scale_max_cpus CPUs (256 by default, far more CPUs
// than the host has cores), owned threads in sleep mode (so idle CPUs cost
// nothing and the host's cores stay usable), both engines, interleaved per
// size so that drift in the machine's load hits both alike.
//
//  - on_each_cpu(wait) latency from one outside caller: one doorbell (a
//    futex wake) per CPU, the functions run as the host's cores get to them;
//  - call_function_many(all CPUs, no wait) throughput from all_producers()
//    outside callers at once: calls completed per second, and function runs
//    per second (calls × CPUs). Concurrent callers are where the engines
//    differ: percpu callers share nothing but the targets' queues; classic
//    callers share one list, its lock, and every handler walks every block.
//
// Both also count the futex wakes (doorbells rung) per target CPU per call:
// with sleeping CPUs that is most of the cost, and it is where the engines
// differ most on a small machine.
#include <vector>

#include "affinity.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {
namespace {

std::uint64_t doorbells_rung(const domain& d) {
  std::uint64_t n = 0;
  for (const cpu_stats& s : d.stats()) n += s.doorbells_rung;
  return n;
}

double per_target_call(std::uint64_t wakes, std::uint64_t calls, cpu_t n) {
  return calls == 0 ? 0 : static_cast<double>(wakes) / static_cast<double>(calls * n);
}

scaling_point measure(const config& cfg, results& out, engine e, cpu_t n) {
  domain d(bench_options(e, idle_mode::sleep, n, /*start_threads=*/true, /*pin=*/false));
  cpu_counters runs(n);
  cpumask all(n);
  all.set_all();
  scaling_point p;
  p.engine = engine_name(e);
  p.cpus = n;

  series_options opt;
  opt.samples = cfg.scale_samples;
  opt.warmup = 20;
  opt.max_seconds = cfg.scale_seconds;
  std::uint64_t before = runs.total();
  std::uint64_t rung = doorbells_rung(d);
  const std::uint64_t calls_run0 = stats_total(d, &cpu_stats::calls_run);
  // A failed call runs nothing: the run count checked below reports it.
  auto samples =
      sample_latency(opt, [&] { (void)d.on_each_cpu(&cpu_counters::bump, &runs, true); });
  p.each_wakes = per_target_call(doorbells_rung(d) - rung, opt.warmup + samples.size(), n);
  const std::uint64_t lat_runs = runs.total() - before;
  check_runs(out, fmt::format("scaling {} {} CPUs on_each_cpu", p.engine, n), lat_runs,
             (opt.warmup + samples.size()) * n);
  // The library's own count agrees with the functions'.
  check_runs(out, fmt::format("scaling {} {} CPUs on_each_cpu (stats calls_run)", p.engine, n),
             stats_total(d, &cpu_stats::calls_run) - calls_run0, lat_runs);
  p.on_each_cpu = summarize(samples);

  p.callers = all_producers();
  // The best of the trials, as for every throughput figure (harness.hpp);
  // the wakes per call are those of the best trial.
  double best_wakes = 0;
  const best_trial b = best_of(cfg.trials, [&] {
    before = runs.total();
    rung = doorbells_rung(d);
    const producer_run run = run_producers(
        p.callers, cfg.scale_seconds / (2.0 * cfg.trials), [&](unsigned, std::atomic<bool>& stop) {
          std::uint64_t issued = 0;
          while (!stop.load(std::memory_order_relaxed)) {
            // A failed call queued nothing: left out, so `expected` stays exact.
            if (!d.call_function_many(all, &cpu_counters::bump, &runs, false)) ++issued;
          }
          return issued;
        });
    const std::uint64_t expected = run.issued * n;
    const std::uint64_t end = wait_until_done([&] { return runs.total() - before >= expected; });
    check_runs(out, fmt::format("scaling {} {} CPUs call_function_many", p.engine, n),
               runs.total() - before, expected);
    const double wakes = per_target_call(doorbells_rung(d) - rung, run.issued, n);
    const double rate = rate_of(run, end);
    if (rate > p.many_calls_per_s) {
      p.many_calls_per_s = rate;
      best_wakes = wakes;
    }
    return trial{rate, {}};
  });
  (void)b;
  p.many_wakes = best_wakes;
  p.many_runs_per_s = p.many_calls_per_s * n;
  progress("scaling",
           fmt::format("{:<7} {:4} CPUs  on_each_cpu p50 {:<9} p99 {:<9}  many {} calls ({} runs), "
                       "{:.2f} wakes/CPU/call",
                       p.engine, n, fmt_ns(p.on_each_cpu.p50), fmt_ns(p.on_each_cpu.p99),
                       fmt_rate(p.many_calls_per_s), fmt_rate(p.many_runs_per_s), p.many_wakes));
  return p;
}

}  // namespace

void run_scaling(const config& cfg, results& out) {
  unpin_self();
  for (cpu_t n = 2; n <= cfg.scale_max_cpus && n <= kMaxCpus; n *= 2) {
    for (engine e : {engine::percpu, engine::classic})
      out.scaling.push_back(measure(cfg, out, e, n));
  }
}

}  // namespace xcall::bench
