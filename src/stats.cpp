// stats.cpp — per-CPU counters (domain::stats) and their /proc/interrupts-
// style formatter.
//
// Ordering: every counter is read relaxed: a statistic needs no ordering
// with anything else, and each is a single atomic word.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "domain_impl.hpp"

namespace xcall {
namespace detail {

std::vector<cpu_stats> domain_impl::stats() const {
  std::vector<cpu_stats> all(nr_cpu_ids());
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    const cpu_state& c = cpus_[id];
    cpu_stats& s = all[id];
    s.cpu = id;
    s.online = online_.test(id);
    s.calls_run = c.calls_run.load(std::memory_order_relaxed);
    s.doorbells_rung = c.doorbells_rung.load(std::memory_order_relaxed);
    s.doorbells_saved = c.doorbells_saved.load(std::memory_order_relaxed);
    s.sleeps = c.sleeps.load(std::memory_order_relaxed);
    s.drained_on_down = c.drained_on_down.load(std::memory_order_relaxed);
    s.stalls_reported = c.stalls_reported.load(std::memory_order_relaxed);
    s.signals_sent = c.signals_sent.load(std::memory_order_relaxed);
    s.signals_resent = c.signals_resent.load(std::memory_order_relaxed);
    s.signal_runs = c.signal_runs.load(std::memory_order_relaxed);
    s.signals_deferred = c.signals_deferred.load(std::memory_order_relaxed);
    s.proxy_runs = c.proxy_runs.load(std::memory_order_relaxed);
  }
  return all;
}

}  // namespace detail

namespace {

struct counter_row {
  const char* code;
  const char* description;
  std::uint64_t cpu_stats::*field;
};

constexpr counter_row kRows[] = {
    {"CFR", "Function call runs", &cpu_stats::calls_run},
    {"DBR", "Doorbells rung (futex wake)", &cpu_stats::doorbells_rung},
    {"DBS", "Doorbells saved (host polling)", &cpu_stats::doorbells_saved},
    {"SLP", "Host sleeps", &cpu_stats::sleeps},
    {"DWN", "Calls drained going offline", &cpu_stats::drained_on_down},
    {"STL", "Stalls reported", &cpu_stats::stalls_reported},
    {"SIG", "Doorbell signals sent", &cpu_stats::signals_sent},
    {"SRS", "Doorbell signals re-sent (no progress)", &cpu_stats::signals_resent},
    {"SHR", "Signal handler runs", &cpu_stats::signal_runs},
    {"SDF", "Signals deferred (irqs off, running)", &cpu_stats::signals_deferred},
    {"PXY", "Calls run by a proxy (host parked)", &cpu_stats::proxy_runs},
};

void append(std::string& out, const char* format, auto... args) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, args...);
  out += buf;
}

}  // namespace

std::string format_stats(std::span<const cpu_stats> stats, unsigned columns) {
  if (columns == 0) columns = 1;
  std::string out;
  for (std::size_t first = 0; first < stats.size(); first += columns) {
    const std::size_t last = std::min(stats.size(), first + columns);
    out += "     ";
    for (std::size_t i = first; i < last; ++i) {
      append(out, " %10s", ("CPU" + std::to_string(stats[i].cpu) +
                             (stats[i].online ? "" : "-")).c_str());
    }
    out += '\n';
    for (const counter_row& row : kRows) {
      append(out, "%4s:", row.code);
      for (std::size_t i = first; i < last; ++i) {
        append(out, " %10" PRIu64, stats[i].*row.field);
      }
      out += "   ";
      out += row.description;
      out += '\n';
    }
  }
  return out;
}

}  // namespace xcall
