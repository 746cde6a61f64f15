// report.cpp — console output, statistics lines, final report and JSON.
//
// Ordering: none of its own; counters are read through sum_totals().
#include "report.hpp"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <span>
#include <utility>

#include <nlohmann/json.hpp>

namespace xcall_torture {
namespace {

using clock = std::chrono::steady_clock;

constexpr const char* kEventNames[] = {
    "from-cpu",
    "enxio",
    "ebusy",
    "fallback",
    "handler-runs",
    "mask-flips",
    "cpu-down",
    "cpu-up",
    "detach",
    "attach",
    "nowait-allocated",
    "nowait-freed",
    "probe-sent",
    "probe-ran",
    "stall-reports",
    "stall-starved",
    "starved-timeouts",
    "in-signal",
    "by-proxy",
    "tramp-declined",
    "guarded-work",
    "blocking-waits",
    "nested-ops",
    "skipped",
    "enomem",
    "exceptions",
    "crowd-calls",
    "crowd-sent",
    "crowd-ran",
    "attach-races",
    "racer-won",
    "idle-early",
    "fd-waits",
    "fd-no-block",
    "fd-wakes",
    "fd-wake-runs",
    "fd-doorbell-only",
    "timer-wakes",
};
static_assert(sizeof(kEventNames) / sizeof(kEventNames[0]) ==
                  static_cast<unsigned>(event::nest_first) - static_cast<unsigned>(event::from_cpu),
              "one name per event between the per-operation and the per-nest-kind counters");

constexpr const char* kNestEventNames[kNestKinds] = {
    "nest-call",   "nest-poll",  "nest-idle",    "nest-idle-forever",
    "nest-region", "nest-guard", "nest-hotplug",
};

const char* event_name(event e) {
  const auto i = static_cast<unsigned>(e);
  if (i >= static_cast<unsigned>(event::nest_first)) {
    return kNestEventNames[i - static_cast<unsigned>(event::nest_first)];
  }
  return kEventNames[i - static_cast<unsigned>(event::from_cpu)];
}

std::mutex g_console;
bool g_tty = false;
bool g_progress_shown = false;

void clear_progress_locked() {
  if (!g_progress_shown) return;
  std::fputs("\r\033[K", stdout);
  std::fflush(stdout);
  g_progress_shown = false;
}

/// 1234 -> "1234", 123456 -> "123.5k", 12345678 -> "12.3M".
std::string human(double v) {
  char buf[32];
  if (v >= 1e7) {
    std::snprintf(buf, sizeof(buf), "%.1fM", v / 1e6);
  } else if (v >= 1e5) {
    std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  }
  return buf;
}

/// The library's delivery counters, summed over every CPU.
struct delivery_totals {
  std::uint64_t sent = 0, resent = 0, runs = 0, deferred = 0, proxied = 0, fd_writes = 0;
  explicit delivery_totals(const std::vector<xcall::cpu_stats>& cpus) {
    for (const xcall::cpu_stats& c : cpus) {
      sent += c.signals_sent;
      resent += c.signals_resent;
      runs += c.signal_runs;
      deferred += c.signals_deferred;
      proxied += c.proxy_runs;
      fd_writes += c.doorbell_fd_writes;
    }
  }
};

}  // namespace

namespace console {

void init() { g_tty = isatty(STDOUT_FILENO) == 1; }

void line(const std::string& text) {
  std::lock_guard<std::mutex> g(g_console);
  clear_progress_locked();
  std::fputs(text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void error(const std::string& text) {
  std::lock_guard<std::mutex> g(g_console);
  clear_progress_locked();
  std::fputs(text.c_str(), stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void progress(const std::string& text) {
  if (!g_tty) return;
  std::lock_guard<std::mutex> g(g_console);
  std::fputs(("\r\033[K" + text).c_str(), stdout);
  std::fflush(stdout);
  g_progress_shown = true;
}

}  // namespace console

reporter::reporter(const run_state& run) : run_(run) {
  const auto now = clock::now();
  next_stat_ = now + std::chrono::duration_cast<clock::duration>(
                         std::chrono::duration<double>(run.opt.stat_interval_s));
  next_progress_ = now;
}

bool reporter::shows_delivery() const noexcept {
  return run_.opt.attached && (run_.opt.delivery != xcall::delivery_mode::poll || run_.opt.proxy);
}

std::string reporter::stat_line(const totals& t, const std::vector<xcall::cpu_stats>& cpus) const {
  const double elapsed = run_.elapsed_s();
  char head[96];
  std::snprintf(head, sizeof(head), "xcall-torture: %7.1f s: ops %s (%s/s):", elapsed,
                human(static_cast<double>(t.ops())).c_str(),
                human(elapsed > 0 ? static_cast<double>(t.ops()) / elapsed : 0).c_str());
  std::string s = any_failure() ? std::string("!!! ") + head : std::string(head);
  for (unsigned k = 0; k < kOpKinds; ++k) {
    s += std::string(" ") + op_name(static_cast<op_kind>(k)) + " " +
         human(static_cast<double>(t.get(op_event(static_cast<op_kind>(k)))));
  }
  s += " | from-cpu " + human(static_cast<double>(t.get(event::from_cpu)));
  s += " enxio " + human(static_cast<double>(t.get(event::enxio)));
  s += " ebusy " + human(static_cast<double>(t.get(event::ebusy)));
  s += " fallback " + human(static_cast<double>(t.get(event::fallback)));
  s += " | hotplug " + human(static_cast<double>(t.get(event::cpu_down) + t.get(event::cpu_up) +
                                                 t.get(event::detach) + t.get(event::attach)));
  s += " flips " + human(static_cast<double>(t.get(event::mask_flips)));
  if (shows_delivery() && !cpus.empty() && run_.opt.delivery == xcall::delivery_mode::fd) {
    const delivery_totals d(cpus);
    s += " | fd-writes " + human(static_cast<double>(d.fd_writes));
    s += " fd-waits " + human(static_cast<double>(t.get(event::fd_waits)));
    s += " fd-wakes " + human(static_cast<double>(t.get(event::fd_wakes)));
    s += " wake-runs " + human(static_cast<double>(t.get(event::fd_wake_runs)));
    s += " proxy-runs " + human(static_cast<double>(d.proxied));
  } else if (shows_delivery() && !cpus.empty()) {
    const delivery_totals d(cpus);
    s += " | signals " + human(static_cast<double>(d.sent));
    s += " resent " + human(static_cast<double>(d.resent));
    s += " handler-runs " + human(static_cast<double>(d.runs));
    s += " deferred " + human(static_cast<double>(d.deferred));
    s += " proxy-runs " + human(static_cast<double>(d.proxied));
  }
  s += " | checks " + human(static_cast<double>(t.checks_passed()));
  s += " errors " + std::to_string(t.checks_failed());
  s += " stalls " + std::to_string(t.get(event::stall_reports));
  if (const std::uint64_t starved = t.get(event::stall_starved)) {
    s += " (starved " + std::to_string(starved) + ")";
  }
  if (const std::uint64_t excused = t.get(event::starved_timeouts)) {
    s += " starved-timeouts " + std::to_string(excused);
  }
  return s;
}

void reporter::tick() {
  flush_deferred_failures();
  const auto now = clock::now();
  if (run_.opt.stat_interval_s > 0 && now >= next_stat_) {
    std::vector<xcall::cpu_stats> cpus;
    if (shows_delivery() && run_.dom != nullptr) cpus = run_.dom->stats();
    console::line(stat_line(sum_totals(), cpus));
    next_stat_ += std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double>(run_.opt.stat_interval_s));
  }
  if (now >= next_progress_) {
    next_progress_ = now + std::chrono::milliseconds(250);
    const totals t = sum_totals();
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%s[%6.1f / %.0f s] ops %s  checks %s  errors %" PRIu64,
                  any_failure() ? "!!! " : "", run_.elapsed_s(), run_.opt.duration_s,
                  human(static_cast<double>(t.ops())).c_str(),
                  human(static_cast<double>(t.checks_passed())).c_str(), t.checks_failed());
    console::progress(buf);
  }
}

void reporter::final_report(const std::vector<xcall::cpu_stats>& cpus, bool success,
                            const std::string& note) const {
  flush_deferred_failures();
  const totals t = sum_totals();
  const double elapsed = run_.elapsed_s();
  std::string out;
  out += stat_line(t, cpus) + "\n";
  if (!cpus.empty()) {
    out += "--- per-CPU statistics ---\n";
    out += xcall::format_stats(cpus);
  }
  char buf[256];
  if (shows_delivery() && !cpus.empty()) {
    const delivery_totals d(cpus);
    std::snprintf(buf, sizeof(buf), "--- delivery (%s%s) ---\n", delivery_name(run_.opt.delivery),
                  run_.opt.proxy ? ", proxy" : "");
    out += buf;
    const std::pair<const char*, std::uint64_t> signal_rows[] = {
        {"signals-sent", d.sent},         {"signals-resent", d.resent}, {"signal-runs", d.runs},
        {"signals-deferred", d.deferred}, {"proxy-runs", d.proxied},
    };
    // --delivery fd: the library's writes, then the tool's view of the waits.
    const std::pair<const char*, std::uint64_t> fd_rows[] = {
        {"fd-writes", d.fd_writes},
        {"fd-waits", t.get(event::fd_waits)},
        {"fd-no-block", t.get(event::fd_no_block)},
        {"fd-doorbell-only", t.get(event::fd_doorbell_only)},
        {"fd-wakes", t.get(event::fd_wakes)},
        {"fd-wake-runs", t.get(event::fd_wake_runs)},
        {"timer-wakes", t.get(event::timer_wakes)},
        {"proxy-runs", d.proxied},
    };
    const bool by_fd = run_.opt.delivery == xcall::delivery_mode::fd;
    using rows = std::span<const std::pair<const char*, std::uint64_t>>;
    for (const auto& [name, v] : by_fd ? rows(fd_rows) : rows(signal_rows)) {
      std::snprintf(buf, sizeof(buf), "  %-16s %12" PRIu64 "\n", name, v);
      out += buf;
    }
  }
  std::snprintf(buf, sizeof(buf), "--- totals: %" PRIu64 " operations in %.1f s (%s/s) ---\n",
                t.ops(), elapsed,
                human(elapsed > 0 ? static_cast<double>(t.ops()) / elapsed : 0).c_str());
  out += buf;
  for (unsigned k = 0; k < kOpKinds; ++k) {
    std::snprintf(buf, sizeof(buf), "  %-16s %12" PRIu64 "\n", op_name(static_cast<op_kind>(k)),
                  t.get(op_event(static_cast<op_kind>(k))));
    out += buf;
  }
  out += "events:\n";
  for (unsigned e = static_cast<unsigned>(event::from_cpu); e < kEvents; ++e) {
    std::snprintf(buf, sizeof(buf), "  %-16s %12" PRIu64 "\n", event_name(static_cast<event>(e)),
                  t.events[e]);
    out += buf;
  }
  out += "checks:                  passed       failed\n";
  for (unsigned c = 0; c < kChecks; ++c) {
    std::snprintf(buf, sizeof(buf), "  %-14s %12" PRIu64 " %12" PRIu64 "   %s\n",
                  check_name(static_cast<check>(c)), t.passed[c], t.failed[c],
                  check_description(static_cast<check>(c)));
    out += buf;
  }
  if (!note.empty()) out += note + (note.back() == '\n' ? "" : "\n");
  out += "seed " + std::to_string(run_.opt.seed) + "; to repeat: " + run_.opt.command_line() + "\n";
  out += success ? "End of test: SUCCESS" : "End of test: FAILURE";
  console::line(out);
  if (!run_.opt.json_file.empty()) write_json(t, cpus, success, note);
}

void reporter::write_json(const totals& t, const std::vector<xcall::cpu_stats>& cpus, bool success,
                          const std::string& note) const {
  // ordered_json keeps the keys in the order written: the order of the report.
  using json = nlohmann::ordered_json;
  const torture_options& o = run_.opt;
  json weights = json::object();
  for (unsigned k = 0; k < kOpKinds; ++k) weights[op_name(static_cast<op_kind>(k))] = o.weights[k];
  json nest_weights = json::object();
  for (unsigned k = 0; k < kNestKinds; ++k) {
    nest_weights[nest_name(static_cast<nest_kind>(k))] = o.nest_weights[k];
  }
  json options = {{"cpus", o.cpus},
                  {"threads", o.threads},
                  {"duration_s", o.duration_s},
                  {"engine", engine_name(o.engine)},
                  {"idle", idle_name(o.idle)},
                  {"onoff_interval_s", o.onoff_interval_s},
                  {"mask_churn", o.mask_churn},
                  {"stutter_s", o.stutter_s},
                  {"attached", o.attached},
                  {"delivery", delivery_name(o.delivery)},
                  {"proxy", o.proxy},
                  {"attach_race", o.attach_race},
                  {"handler_delay_us", o.handler_delay_us},
                  {"stall_timeout_ms", o.stall_timeout_ms},
                  {"hang_timeout_s", o.hang_timeout_s},
                  {"nesting", o.nesting},
                  {"nest_one_in", o.nest_one_in},
                  {"crowd", o.crowd},
                  {"crowd_over_slots", o.crowd_over_slots},
                  {"faults", o.faults},
                  {"weights", std::move(weights)},
                  {"nest_weights", std::move(nest_weights)}};

  json ops = json::object();
  for (unsigned k = 0; k < kOpKinds; ++k) {
    ops[op_name(static_cast<op_kind>(k))] = t.get(op_event(static_cast<op_kind>(k)));
  }
  json events = json::object();
  for (unsigned e = static_cast<unsigned>(event::from_cpu); e < kEvents; ++e) {
    events[event_name(static_cast<event>(e))] = t.events[e];
  }
  json checks = json::object();
  for (unsigned c = 0; c < kChecks; ++c) {
    checks[check_name(static_cast<check>(c))] = {{"passed", t.passed[c]}, {"failed", t.failed[c]}};
  }
  json per_cpu = json::array();
  for (const xcall::cpu_stats& s : cpus) {
    per_cpu.push_back({{"cpu", s.cpu},
                       {"online", s.online},
                       {"calls_run", s.calls_run},
                       {"doorbells_rung", s.doorbells_rung},
                       {"doorbells_saved", s.doorbells_saved},
                       {"sleeps", s.sleeps},
                       {"drained_on_down", s.drained_on_down},
                       {"stalls_reported", s.stalls_reported},
                       {"signals_sent", s.signals_sent},
                       {"signals_resent", s.signals_resent},
                       {"signal_runs", s.signal_runs},
                       {"signals_deferred", s.signals_deferred},
                       {"proxy_runs", s.proxy_runs},
                       {"doorbell_fd_writes", s.doorbell_fd_writes}});
  }

  const json j = {{"result", success ? "SUCCESS" : "FAILURE"},
                  {"note", note},
                  {"seed", o.seed},
                  {"command", o.command_line()},
                  {"options", std::move(options)},
                  {"elapsed_s", run_.elapsed_s()},
                  {"ops_total", t.ops()},
                  {"ops", std::move(ops)},
                  {"events", std::move(events)},
                  {"checks", std::move(checks)},
                  {"errors", t.checks_failed()},
                  {"cpus", std::move(per_cpu)}};
  std::ofstream f(o.json_file, std::ios::trunc);
  // A note is the tool's own text, but a malformed byte in it must not throw here.
  f << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  if (!f) console::error("xcall-torture: could not write " + o.json_file);
}

}  // namespace xcall_torture
