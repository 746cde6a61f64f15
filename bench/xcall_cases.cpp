// xcall_cases.cpp — the xcall figures, for each engine and idle mode:
//
//  - call_function_single with wait: an outside caller (on caller_core())
//    and a 1-CPU domain whose owned CPU is pinned to target_core(). The
//    shape of the cache-line, futex and DPDK round trips. (pin_threads pins
//    within the affinity the owned thread inherits from the thread that
//    builds the domain, so the bench unpins itself before building one.)
//  - on_each_cpu and call_function_many over all CPUs, with wait: a domain
//    of one CPU per host core, every CPU attached by a pinned thread; the
//    caller is CPU 0 (as in the kernel, where the caller is a CPU), the
//    others sit in xcall::idle_wait(), which idles the way the mode says.
//    on_each_cpu runs locally on CPU 0 too; call_function_many skips it.
//  - async single calls: call_function_single_async from a ring of 64
//    call_single_data per producer, each re-used once !in_flight(); one
//    producer → the 1-CPU domain, then all_producers() producers → it.
//    Each is preceded by one trial of the bare lock-free list with the same
//    producers (its paired floor), as poll-mode latencies are preceded by a
//    cache-line ping-pong: the vCPUs' placement may change during a run.
//
// Modes: poll; adaptive (back to back: the target is still inside its spin
// window); adaptive_cold (a gap of 2×idle_spin + 50 µs before each call, so
// the target has gone to sleep: the case the futex floor describes); sleep
// (a gap of 20 µs before each call: a sleep-mode host still spins 64 turns
// before it sleeps, and back-to-back calls would catch it in them). Each
// figure's note says how often the target had gone to sleep before a call.
// Async figures skip adaptive_cold (a flooded target never idles) and run
// sleep mode without gaps.
//
// Ordering: the hosts of multi_wait() announce themselves with a release
// fetch_add of `ready` that the caller's acquire load pairs with (they are
// attached, hence online, before the first call); `stop` is a release store
// paired with the hosts' acquire loads. Everything else is xcall's own
// ordering (xcall/domain.hpp), which is what is being measured.
#include <algorithm>
#include <thread>
#include <vector>

#include "affinity.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {

std::atomic<std::uint64_t>& stall_reports() {
  static std::atomic<std::uint64_t> count{0};
  return count;
}

namespace {

constexpr std::size_t kRing = 64;  ///< async descriptors per producer, as in peers.cpp

enum class gap { none, past_spin, past_sleep_spin };

struct mode_spec {
  const char* id;
  const char* label;
  idle_mode mode;
  gap before_call;
  bool cold;  ///< only for latency (the async figures skip it)
};
constexpr mode_spec kModes[] = {
    {"poll", "poll", idle_mode::poll, gap::none, false},
    {"adaptive", "adaptive", idle_mode::adaptive, gap::none, false},
    {"adaptive_cold", "adaptive, past spin", idle_mode::adaptive, gap::past_spin, true},
    {"sleep", "sleep", idle_mode::sleep, gap::past_sleep_spin, false},
};

std::string fig_id(engine e, const mode_spec& m, const char* what) {
  return fmt::format("xcall.{}.{}.{}", engine_name(e), m.id, what);
}

double gap_ns(const domain_options& o, const mode_spec& m) {
  switch (m.before_call) {
    case gap::none:
      return 0;
    case gap::past_spin:
      return 2.0 * static_cast<double>(o.idle_spin.count()) + 50e3;
    case gap::past_sleep_spin:
      return 20e3;
  }
  return 0;
}

/// Times CPUs from `first` up went to sleep.
std::uint64_t total_sleeps(const domain& d, cpu_t first = 0) {
  std::uint64_t n = 0;
  for (const cpu_stats& s : d.stats()) n += s.cpu >= first ? s.sleeps : 0;
  return n;
}

std::uint64_t total_rung(const domain& d) {
  std::uint64_t n = 0;
  for (const cpu_stats& s : d.stats()) n += s.doorbells_rung;
  return n;
}

void report(results& out, measurement m) {
  if (m.kind == figure_kind::latency) {
    progress("xcall", fmt::format("{:<46} p50 {:<9} p99 {:<9} p99.9 {}", m.label, fmt_ns(m.lat.p50),
                                  fmt_ns(m.lat.p99), fmt_ns(m.lat.p999)));
  } else {
    progress("xcall", fmt::format("{:<46} {}", m.label, fmt_rate(m.rate)));
  }
  out.add(std::move(m));
}

// ---- call_function_single with wait --------------------------------------------

/// The cache-line floor measured now, on the cores the next series uses,
/// before its domain exists (a polling domain would compete for the cores);
/// 0 for modes compared with the futex floor.
double paired_floor(const config& cfg, const mode_spec& m) {
  if (m.before_call != gap::none) return 0;
  std::vector<double> ns = cacheline_samples(cfg, std::min<std::size_t>(cfg.latency_samples, 5000));
  return summarize(ns).p50;
}

void single_wait(const config& cfg, results& out, engine e, const mode_spec& m) {
  if (!cfg.selected(fig_id(e, m, "single_wait"))) return;
  const double floor_ns = paired_floor(cfg, m);
  const domain_options o = bench_options(e, m.mode, 1, /*start_threads=*/true, /*pin=*/true);
  unpin_self();  // owned threads pin within the affinity they inherit from us
  domain d(o);
  cpu_counters runs(1);
  pin_self(caller_core());
  std::size_t errors = 0;
  const series_options opt = series(cfg, gap_ns(o, m));
  const std::uint64_t sleeps0 = total_sleeps(d);
  auto samples = sample_latency(opt, [&] {
    if (d.call_function_single(0, &cpu_counters::bump, &runs, true)) ++errors;
  });
  const std::uint64_t slept = total_sleeps(d) - sleeps0;
  const std::size_t calls = opt.warmup + samples.size();
  check_runs(out, fig_id(e, m, "single_wait"), runs.total(), calls - errors);
  std::string note = "outside caller → owned CPU 0";
  if (m.mode != idle_mode::poll) {
    note += fmt::format("; the target went to sleep {:.0f}% of calls",
                        100.0 * static_cast<double>(slept) / static_cast<double>(calls));
  }
  measurement fig = latency_figure(fig_id(e, m, "single_wait"),
                                   fmt::format("{} {} single wait", engine_name(e), m.label),
                                   std::move(samples), note);
  fig.paired_floor_ns = floor_ns;
  report(out, std::move(fig));
}

// ---- on_each_cpu / call_function_many over all CPUs, with wait ------------------

void multi_wait(const config& cfg, results& out, engine e, const mode_spec& m) {
  if (!cfg.selected(fig_id(e, m, "on_each_cpu")) && !cfg.selected(fig_id(e, m, "many_wait")))
    return;
  const double floor_ns = paired_floor(cfg, m);
  unpin_self();
  const cpu_t n = host_cores();
  const domain_options o = bench_options(e, m.mode, n, /*start_threads=*/false, /*pin=*/false);
  domain d(o);
  cpu_counters runs(n);
  std::atomic<unsigned> ready{0};
  std::atomic<bool> stop{false};
  std::vector<int> cores;
  for (int c : allowed_cpus()) {
    if (c != caller_core()) cores.push_back(c);
  }
  std::vector<std::thread> hosts;
  for (cpu_t cpu = 1; cpu < n; ++cpu) {
    hosts.emplace_back([&, cpu] {
      pin_self(cores[(cpu - 1) % cores.size()]);
      cpu_attachment self = d.attach(cpu);
      ready.fetch_add(1, std::memory_order_release);
      while (!stop.load(std::memory_order_acquire)) idle_wait(std::chrono::milliseconds(20));
    });
  }
  pin_self(caller_core());
  {
    cpu_attachment self = d.attach(0);
    while (ready.load(std::memory_order_acquire) != n - 1) std::this_thread::yield();
    cpumask all(n);
    all.set_all();
    const series_options opt = series(cfg, gap_ns(o, m));
    std::size_t errors = 0;
    std::uint64_t before = runs.total();
    const std::uint64_t sleeps0 = total_sleeps(d, 1);
    auto each = sample_latency(opt, [&] {
      if (d.on_each_cpu(&cpu_counters::bump, &runs, true)) ++errors;
    });
    check_runs(out, fig_id(e, m, "on_each_cpu"), runs.total() - before,
               (opt.warmup + each.size() - errors) * n);
    const std::uint64_t each_sleeps = total_sleeps(d, 1) - sleeps0;
    const std::size_t each_calls = opt.warmup + each.size();
    before = runs.total();
    errors = 0;
    auto many = sample_latency(opt, [&] {
      if (d.call_function_many(all, &cpu_counters::bump, &runs, true)) ++errors;
    });
    check_runs(out, fig_id(e, m, "many_wait"), runs.total() - before,
               (opt.warmup + many.size() - errors) * (n - 1));
    std::string note = fmt::format("caller is CPU 0 of {} attached CPUs", n);
    if (m.mode != idle_mode::poll && n > 1) {
      note += fmt::format(
          "; {:.0f} sleeps per 100 calls per other CPU",
          100.0 * static_cast<double>(each_sleeps) / static_cast<double>(each_calls * (n - 1)));
    }
    measurement each_fig =
        latency_figure(fig_id(e, m, "on_each_cpu"),
                       fmt::format("{} {} on_each_cpu wait ({} CPUs)", engine_name(e), m.label, n),
                       std::move(each), note);
    each_fig.paired_floor_ns = floor_ns;
    report(out, std::move(each_fig));
    measurement many_fig =
        latency_figure(fig_id(e, m, "many_wait"),
                       fmt::format("{} {} call_function_many wait ({} other CPU{})", engine_name(e),
                                   m.label, n - 1, n == 2 ? "" : "s"),
                       std::move(many), note);
    many_fig.paired_floor_ns = floor_ns;
    report(out, std::move(many_fig));
    stop.store(true, std::memory_order_release);
  }
  for (auto& t : hosts) t.join();
}

// ---- async single calls: 1 → 1 and all producers → 1 ----------------------------

void async_throughput(const config& cfg, results& out, engine e, const mode_spec& m,
                      unsigned producers) {
  if (!cfg.selected(fig_id(e, m, producers == 1 ? "async_1" : "async_all"))) return;
  // The bare list with the same producers, just before (and before the
  // domain exists, whose polling host would compete): placement-proof ratio.
  const double paired_rate = lockfree_rate(cfg, producers);
  const domain_options o = bench_options(e, m.mode, 1, /*start_threads=*/true, /*pin=*/true);
  unpin_self();  // owned threads pin within the affinity they inherit from us
  domain d(o);
  cpu_counters runs(1);
  std::vector<std::unique_ptr<call_single_data[]>> rings;
  for (unsigned k = 0; k < producers; ++k)
    rings.push_back(std::make_unique<call_single_data[]>(kRing));
  std::atomic<std::uint64_t> errors{0};
  pin_self(caller_core());
  std::vector<std::uint64_t> next(producers, 0);  // each producer's position in its ring
  std::uint64_t total_issued = 0;
  const best_trial b = best_of(cfg.trials, [&] {
    const std::uint64_t before = runs.total();
    const std::uint64_t rung0 = total_rung(d);
    const producer_run run =
        run_producers(producers, cfg.throughput_seconds, [&](unsigned k, std::atomic<bool>& stop) {
          call_single_data* ring = rings[k].get();
          std::uint64_t issued = 0;
          std::uint64_t pos = next[k];  // a local copy: next[] shares a line between producers
          while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; ++i) {
              call_single_data& csd = ring[pos++ % kRing];
              spin_then_yield([&csd] { return !csd.in_flight(); });
              csd.func = &cpu_counters::bump;
              csd.info = &runs;
              if (d.call_function_single_async(0, csd)) {
                errors.fetch_add(1, std::memory_order_relaxed);
              } else {
                ++issued;
              }
            }
          }
          next[k] = pos;
          return issued;
        });
    const std::uint64_t end = wait_until_done([&] { return runs.total() - before >= run.issued; });
    total_issued += run.issued;
    const double rung = static_cast<double>(total_rung(d) - rung0);
    return trial{rate_of(run, end),
                 fmt::format("ring of {} csd per producer; {:.4f} futex wakes per call; ", kRing,
                             run.issued ? rung / static_cast<double>(run.issued) : 0.0) +
                     run_note(run, end)};
  });
  const bool one = producers == 1;
  const char* what = one ? "async_1" : "async_all";
  check_runs(out, fig_id(e, m, what), runs.total(), total_issued);
  if (errors.load(std::memory_order_relaxed) != 0) {
    out.warnings.push_back(fmt::format("{}: {} async calls failed", fig_id(e, m, what),
                                       errors.load(std::memory_order_relaxed)));
  }
  measurement fig = throughput_figure(
      fig_id(e, m, what), fmt::format("{} {} async {}→1", engine_name(e), m.label, producers),
      b.best.rate, b.note());
  fig.paired_floor_rate = paired_rate;
  report(out, std::move(fig));
}

}  // namespace

void run_xcall(const config& cfg, results& out) {
  for (engine e : {engine::percpu, engine::classic}) {
    for (const mode_spec& m : kModes) single_wait(cfg, out, e, m);
    for (const mode_spec& m : kModes) multi_wait(cfg, out, e, m);
    for (const mode_spec& m : kModes) {
      if (m.cold) continue;
      async_throughput(cfg, out, e, m, 1);
      async_throughput(cfg, out, e, m, all_producers());
    }
  }
  unpin_self();
}

}  // namespace xcall::bench
