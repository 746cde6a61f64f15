// stats.cpp — per-CPU counters (domain::stats) and their /proc/interrupts-
// style formatter.
//
// Ordering: every counter is read relaxed: a statistic needs no ordering
// with anything else, and each is a single atomic word.
#include <algorithm>
#include <iterator>
#include <cinttypes>
#include <cstdio>

#include "counters.hpp"
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
#define XCALL_COUNTER_COPY(name, writer, code, description) \
  s.name = c.counters.name.load(std::memory_order_relaxed);
    XCALL_CPU_COUNTERS(XCALL_COUNTER_COPY)
#undef XCALL_COUNTER_COPY
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
#define XCALL_COUNTER_ROW(name, writer, code, description) {code, description, &cpu_stats::name},
    XCALL_CPU_COUNTERS(XCALL_COUNTER_ROW)
#undef XCALL_COUNTER_ROW
};
static_assert(std::size(kRows) == detail::kCpuCounters);

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
      append(out, " %10s",
             ("CPU" + std::to_string(stats[i].cpu) + (stats[i].online ? "" : "-")).c_str());
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
