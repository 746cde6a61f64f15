// main.cpp — xcall-bench: one run that measures the floors (cache-line,
// futex, eventfd, signal, membarrier), the peers (mutex/condvar queue, bare
// lock-free list, DPDK remote launch) and xcall (both engines, every idle
// mode, attached hosts reached by polling, by signal, by proxy and through an
// event loop's doorbell fd (beside libuv's uv_async_send), scaling to
// 256 CPUs, waking many sleeping CPUs through the wake tree or serially,
// allocations and memory), then prints every xcall figure beside
// its floor and nearest peer as a ratio, and the targets of issue 5 as MET /
// NOT MET. It measures; it never fails on a figure. It exits non-zero when a
// call did not run exactly as often as it was issued (results::count_errors,
// each named on stderr): that is a bug, not a figure.
//
//   xcall-bench --smoke                      a few seconds; the `bench` CTest
//   xcall-bench --quick                      under a minute
//   xcall-bench                              the full run, under ten minutes
//   xcall-bench --markdown BENCHMARKS.md --json bench/results/latest.json
//               --plot bench/results         (what `make bench` runs)
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "machine.hpp"
#include "plot.hpp"
#include "report.hpp"
#include "results.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {

bool config::wants(const std::string& section) const {
  return sections.empty() || std::find(sections.begin(), sections.end(), section) != sections.end();
}

void progress(const char* section, const std::string& text) {
  std::fprintf(stderr, "[%-9s] %s\n", section, text.c_str());
}

namespace {

/// A baseline measured several times in one run moved by more than 1.5x:
/// say so, with its range (`message` has two {}: low, high).
void warn_if_moved(results& r, const std::string& low, const std::string& high, double lo,
                   double hi, fmt::format_string<const std::string&, const std::string&> message) {
  if (lo > 0 && hi / lo > 1.5) r.warnings.push_back(fmt::format(message, low, high));
}

config quick_config() {
  config c;
  c.quick = true;
  c.latency_samples = 2000;
  c.max_series_seconds = 0.5;
  c.throughput_seconds = 0.1;
  c.trials = 2;
  c.scale_max_cpus = 32;
  c.scale_samples = 300;
  c.scale_seconds = 0.2;
  c.fan_max_cpus = 64;
  c.fan_samples = 60;
  c.fan_seconds = 4;
  c.dpdk_samples = 1000;
  return c;
}

/// --smoke: every section once, as small as it goes. Its figures mean
/// nothing; what it checks is that the bench runs and that every call ran
/// exactly as often as issued.
config smoke_config() {
  config c = quick_config();
  c.smoke = true;
  c.latency_samples = 100;
  c.max_series_seconds = 0.05;
  c.throughput_seconds = 0.02;
  c.trials = 1;
  c.scale_max_cpus = 8;
  c.scale_samples = 20;
  c.scale_seconds = 0.05;
  c.fan_max_cpus = 8;
  c.fan_samples = 5;
  c.fan_seconds = 0.5;
  c.dpdk_samples = 100;
  c.dpdk = false;
  return c;
}

}  // namespace
}  // namespace xcall::bench

int main(int argc, char** argv) {
  using namespace xcall::bench;
  CLI::App app{
      "xcall-bench: xcall's cross-CPU calls beside the physical floor, the kernel's own IPI "
      "path and DPDK, measured in one run. Reports figures and targets; never fails on them."};
  bool quick = false;
  bool smoke = false;
  std::string json_path, plot_dir, markdown_path, only;
  std::size_t samples = 0;
  double seconds = 0;
  unsigned max_cpus = 0;
  bool no_dpdk = false;
  std::string cfg_filter;
  app.add_flag("--quick", quick, "short run (under a minute): fewer samples, sweep to 32 CPUs");
  app.add_flag("--smoke", smoke,
               "a few seconds, every section at its smallest, no DPDK: checks that the bench "
               "runs and every call runs as often as issued (the `bench` CTest)");
  app.add_option("--json", json_path, "write every figure, target and row as JSON to FILE");
  app.add_option("--plot", plot_dir, "write PNG charts into DIR (needs gnuplot)");
  app.add_option("--markdown", markdown_path,
                 "write the report into FILE, between its xcall-bench markers if it has them");
  app.add_option(
      "--only", only,
      "comma-separated sections: floors,peers,dpdk,xcall,attached,scaling,fan_out,footprint");
  app.add_option("--filter", cfg_filter,
                 "xcall figures: only those whose id contains this (e.g. percpu.poll)");
  app.add_option("--samples", samples, "latency samples per series (default 20000, quick 2000)");
  app.add_option("--seconds", seconds,
                 "seconds per throughput trial (default 0.5, quick 0.1; best of 3, quick 2)");
  app.add_option("--max-cpus", max_cpus,
                 "largest domain of the scaling and fan-out sweeps (default 256; quick 32 and "
                 "64)");
  app.add_flag("--no-dpdk", no_dpdk, "do not start DPDK's EAL");
  CLI11_PARSE(app, argc, argv);

  config cfg = smoke ? smoke_config() : quick ? quick_config() : config{};
  if (samples != 0) cfg.latency_samples = samples;
  if (seconds > 0) cfg.throughput_seconds = seconds;
  if (max_cpus != 0) cfg.scale_max_cpus = cfg.fan_max_cpus = max_cpus;
  cfg.dpdk = cfg.dpdk && !no_dpdk;
  cfg.filter = cfg_filter;
  if (!only.empty()) {
    std::stringstream s(only);
    std::string part;
    while (std::getline(s, part, ',')) cfg.sections.push_back(part);
  }

  const double start = now_seconds();
  save_startup_affinity();
  calibrate_clock(std::chrono::milliseconds(quick || smoke ? 20 : 100));
  results r;
  r.cfg = cfg;
  r.machine = describe_machine();
  progress("machine", r.machine.cpu_model + fmt::format(", {} cores, ", r.machine.cores) +
                          r.machine.kernel + (r.machine.virtualized ? ", virtualized" : "") +
                          ", load " + r.machine.load_before + ", xcall " + r.machine.git_revision);

  // DPDK first: it forks, and the child should not inherit running threads.
  if (cfg.wants("dpdk")) run_dpdk(cfg, r);
  if (cfg.wants("floors")) run_floors(cfg, r);
  if (cfg.wants("peers")) run_peers(cfg, r);
  if (cfg.wants("xcall")) run_xcall(cfg, r);
  if (cfg.wants("attached")) run_attached(cfg, r);
  if (cfg.wants("scaling")) run_scaling(cfg, r);
  if (cfg.wants("fan_out")) run_fan_out(cfg, r);
  if (cfg.wants("footprint")) run_footprint(cfg, r);
  if (cfg.wants("floors")) run_floor_recheck(cfg, r);

  // Paired cache-line floors far from the start-of-run floor: the vCPUs
  // moved meanwhile. (Other paired floors, tgkill's and the polling host's,
  // measure other things.)
  if (const measurement* start_floor = r.find("floor.cacheline"); start_floor != nullptr) {
    double lo = start_floor->lat.p50, hi = start_floor->lat.p50;
    for (const measurement& m : r.figures) {
      if (m.paired_floor_ns <= 0 || m.paired_floor_id != "floor.cacheline") continue;
      lo = std::min(lo, m.paired_floor_ns);
      hi = std::max(hi, m.paired_floor_ns);
    }
    warn_if_moved(r, fmt_ns(lo), fmt_ns(hi), lo, hi,
                  "the cache-line floor ranged from {} to {} during the run: the hypervisor "
                  "moved the vCPUs; ratios use floors paired with each series, absolute figures "
                  "from different moments do not compare");
  }
  {
    // The same for the bare list's paired throughput trials.
    double lo = 0, hi = 0;
    for (const measurement& m : r.figures) {
      if (m.paired_floor_rate <= 0) continue;
      lo = lo == 0 ? m.paired_floor_rate : std::min(lo, m.paired_floor_rate);
      hi = std::max(hi, m.paired_floor_rate);
    }
    warn_if_moved(r, fmt_rate(lo), fmt_rate(hi), lo, hi,
                  "the bare lock-free list's paired rate ranged from {} to {} during the run: "
                  "the host slowed the vCPUs down or moved them; async ratios use the trial "
                  "paired with each figure, absolute rates from different moments do not "
                  "compare");
  }
  if (const auto stalls = stall_reports().load(std::memory_order_relaxed); stalls != 0) {
    r.warnings.push_back(fmt::format("{} stall reports from the watchdog during the run", stalls));
  }
  r.machine.load_after = load_average();
  r.seconds = now_seconds() - start;

  std::cout << markdown_report(r) << std::flush;
  std::cerr << "\n";
  for (const target_line& t : evaluate_targets(r)) std::cerr << t.text() << "\n";
  if (!markdown_path.empty()) {
    progress("report",
             (write_markdown(r, markdown_path) ? "wrote " : "FAILED to write ") + markdown_path);
  }
  if (!json_path.empty()) {
    progress("report", (write_json(r, json_path) ? "wrote " : "FAILED to write ") + json_path);
  }
  if (!plot_dir.empty()) {
    for (const std::string& f : write_plots(r, plot_dir)) progress("plot", "wrote " + f);
  }
  progress("report", fmt::format("run took {:.0f} s", r.seconds));
  if (!r.count_errors.empty()) {
    std::cerr << "xcall-bench: " << r.count_errors.size()
              << " case(s) where calls did not run exactly as often as issued:\n";
    for (const std::string& e : r.count_errors) std::cerr << "  " << e << "\n";
    return 1;
  }
  return 0;
}
