// report.cpp — tables, targets, Markdown and JSON (report.hpp).
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "format.hpp"
#include "results.hpp"

namespace xcall::bench {

// ---- results ------------------------------------------------------------------

const measurement* results::find(const std::string& id) const {
  for (const measurement& m : figures) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

measurement& results::add(measurement m) {
  figures.push_back(std::move(m));
  return figures.back();
}

namespace {

constexpr const char* kBegin = "<!-- xcall-bench:begin -->";
constexpr const char* kEnd = "<!-- xcall-bench:end -->";

struct mode_row {
  const char* id;
  const char* label;
  bool throughput;  ///< has async figures
  bool sleeping;    ///< the target sleeps before each call: the futex floor applies
};
constexpr mode_row kModes[] = {
    {"poll", "poll", true, false},
    {"adaptive", "adaptive", true, false},
    {"adaptive_cold", "adaptive, past spin", false, true},
    {"sleep", "sleep", true, true},
};
constexpr const char* kEngines[] = {"percpu", "classic"};

bool usable(const measurement* m) {
  if (m == nullptr || !m->available) return false;
  return m->kind == figure_kind::latency ? m->lat.n > 0 : m->rate > 0;
}

std::string xid(const char* engine, const char* mode, const char* what) {
  return fmt::format("xcall.{}.{}.{}", engine, mode, what);
}

/// The first usable figure among ids.
const measurement* first_of(const results& r, std::initializer_list<const char*> ids) {
  for (const char* id : ids) {
    if (const measurement* m = r.find(id); usable(m)) return m;
  }
  return nullptr;
}

/// Short names of floors and peers for the headline table: the name of the
/// figure `id`, or `fallback` for one without a short name.
std::string short_name_of(const std::string& id, const std::string& fallback) {
  static const std::map<std::string, std::string> names = {
      {"floor.cacheline", "cache-line ping-pong"},
      {"floor.futex", "futex ping-pong"},
      {"floor.eventfd", "eventfd ping-pong"},
      {"floor.eventfd_epoll", "eventfd ping-pong (epoll)"},
      {"floor.tgkill", "tgkill + ack"},
      {"floor.membarrier.busy", "membarrier (busy CPUs)"},
      {"floor.membarrier.idle", "membarrier (idle CPUs)"},
      {"peer.mutex_queue.roundtrip", "mutex/condvar queue round trip"},
      {"peer.mutex_queue.async_1", "mutex/condvar queue"},
      {"peer.mutex_queue.async_all", "mutex/condvar queue"},
      {"peer.lockfree_list.roundtrip", "bare lock-free list round trip"},
      {"peer.lockfree_list.async_1", "bare lock-free list"},
      {"peer.lockfree_list.async_all", "bare lock-free list"},
      {"peer.dpdk.remote_launch", "DPDK remote launch"},
      {"peer.dpdk.mp_launch_call_main", "DPDK mp launch (CALL_MAIN)"},
      {"peer.dpdk.mp_launch_skip_main", "DPDK mp launch (SKIP_MAIN)"},
      {"peer.libuv.async_roundtrip", "libuv uv_async_send round trip"},
      {"xcall.percpu.attached_poll.single_wait", "polling attached host"},
  };
  const auto it = names.find(id);
  return it != names.end() ? it->second : fallback;
}

std::string short_name(const measurement& m) { return short_name_of(m.id, m.label); }

// Floors and nearest peers of each xcall figure (see BENCHMARKS.md).
const measurement* latency_floor(const results& r, const mode_row& mode) {
  return mode.sleeping ? first_of(r, {"floor.futex"}) : first_of(r, {"floor.cacheline"});
}

const measurement* latency_peer(const results& r, const char* what) {
  const std::string w = what;
  if (w == "single_wait")
    return first_of(r, {"peer.dpdk.remote_launch", "peer.mutex_queue.roundtrip"});
  if (w == "on_each_cpu")
    return first_of(r, {"floor.membarrier.busy", "peer.dpdk.mp_launch_call_main"});
  return first_of(r, {"peer.dpdk.mp_launch_skip_main", "peer.mutex_queue.roundtrip"});
}

std::string with_value(const measurement* m) {
  if (m == nullptr) return "–";
  return short_name(*m) + " " +
         (m->kind == figure_kind::latency ? fmt_ns(m->lat.p50) : fmt_rate(m->rate));
}

double ratio(double a, double b) { return (a > 0 && b > 0) ? a / b : 0; }

// ---- targets ------------------------------------------------------------------

std::string verdict_name(verdict v) {
  switch (v) {
    case verdict::met:
      return "MET";
    case verdict::not_met:
      return "NOT MET";
    case verdict::not_measured:
      return "NOT MEASURED";
  }
  return "?";
}

/// A target over several sub-figures (modes, engines): MET when all are.
struct multi_check {
  std::vector<std::string> parts;
  std::vector<std::string> failed;
  void add(const std::string& name, bool ok, const std::string& shown) {
    parts.push_back(name + " " + shown);
    if (!ok) failed.push_back(name);
  }
  target_line line(std::string target) const {
    target_line t;
    t.target = std::move(target);
    if (parts.empty()) {
      t.v = verdict::not_measured;
      t.measured = "not measured";
      return t;
    }
    std::string m;
    for (const std::string& p : parts) m += (m.empty() ? "" : ", ") + p;
    t.measured = m;
    t.v = failed.empty() ? verdict::met : verdict::not_met;
    if (!failed.empty()) {
      std::string f;
      for (const std::string& x : failed) f += (f.empty() ? "" : ", ") + x;
      t.measured += " (short: " + f + ")";
    }
    return t;
  }
};

// ---- the targets table ------------------------------------------------------------
//
// Most targets are a ratio: an xcall figure ÷ a floor or peer, for each engine
// (one idle mode) or for each idle mode with async figures (percpu engine),
// against a limit. kTargets lists them in the order they are printed; those
// that are not ratios (fd delivery's doorbell writes per burst, the engines'
// crossing, allocations) have their own function.

/// Which side of its limit a ratio must lie on.
enum class bound {
  at_most,   ///< q ≤ limit
  below,     ///< q < limit
  at_least,  ///< q ≥ limit
};

bool within(double q, bound b, double limit) {
  switch (b) {
    case bound::at_most:
      return q <= limit;
    case bound::below:
      return q < limit;
    case bound::at_least:
      return q >= limit;
  }
  return false;
}

/// Which parts a ratio target has.
enum class parts_kind {
  engines,  ///< percpu and classic, for the row's idle mode (the attached
            ///< "modes" exist for percpu only: classic is then skipped)
  modes,    ///< percpu, each idle mode with async figures
};

/// A floor measured just before each figure (measurement::paired_floor_*).
enum class pairing {
  none,
  /// the paired floor when there is one, else the reference; a part needs one of them
  or_reference,
  /// the paired floor when there is one and the reference was measured too
  with_reference,
};

/// How one part is shown after its name.
enum class shown {
  ratio_vs_floor,  ///< "1.23× (90 ns vs 70 ns paired floor)"
  ratio_and_p50,   ///< "0.91× (45.1 µs)"
  ratio,           ///< "2.31×", "0.95× (paired)"
};

using target_extra = void (*)(const results& r, const measurement* reference, target_line& t);
using target_custom = target_line (*)(const results& r);

struct target_spec {
  const char* name;       ///< for the reader of this table only
  const char* text;       ///< the target; {} is the reference's value
  const char* reference;  ///< the floor or peer the xcall figure is divided by
  bool reference_named;   ///< {} shows "<short name> <value>", not only the value
  parts_kind parts;
  const char* mode;  ///< parts_kind::engines: the idle mode
  const char* what;  ///< the xcall figure: xcall.<engine>.<mode>.<what>
  pairing paired;
  bound b;
  double limit;
  shown show;
  target_extra extra;    ///< adds to the line after the parts (may be null)
  target_custom custom;  ///< not a ratio: computes the whole line (the rest unused)
};

double value_of(const measurement& m) {
  return m.kind == figure_kind::latency ? m.lat.p50 : m.rate;
}
double paired_value_of(const measurement& m) {
  return m.kind == figure_kind::latency ? m.paired_floor_ns : m.paired_floor_rate;
}

target_line evaluate_ratio(const results& r, const target_spec& t) {
  const measurement* ref = first_of(r, {t.reference});
  std::vector<std::pair<std::string, std::string>> parts;  // (name, figure id)
  if (t.parts == parts_kind::engines) {
    for (const char* e : kEngines) parts.emplace_back(e, xid(e, t.mode, t.what));
  } else {
    for (const mode_row& m : kModes) {
      if (m.throughput) parts.emplace_back(m.id, xid("percpu", m.id, t.what));
    }
  }
  multi_check c;
  for (const auto& [name, id] : parts) {
    const measurement* x = first_of(r, {id.c_str()});
    if (x == nullptr) continue;
    if (ref == nullptr && t.paired != pairing::or_reference) continue;
    const bool paired = t.paired != pairing::none && paired_value_of(*x) > 0;
    if (!paired && ref == nullptr) continue;
    const double base = paired ? paired_value_of(*x) : value_of(*ref);
    const double q = ratio(value_of(*x), base);
    std::string s = fmt_ratio(q);
    switch (t.show) {
      case shown::ratio_vs_floor:
        s +=
            " (" + fmt_ns(value_of(*x)) + " vs " + fmt_ns(base) + (paired ? " paired floor)" : ")");
        break;
      case shown::ratio_and_p50:
        s += " (" + fmt_ns(value_of(*x)) + ")";
        break;
      case shown::ratio:
        s += paired ? " (paired)" : "";
        break;
    }
    c.add(name, within(q, t.b, t.limit), s);
  }
  const std::string ref_text = t.reference_named ? with_value(ref)
                               : ref != nullptr  ? fmt_ns(ref->lat.p50)
                                                 : std::string("–");
  target_line line = c.line(fmt::format(fmt::runtime(t.text), ref_text));
  if (t.extra != nullptr) t.extra(r, ref, line);
  return line;
}

// ---- what some targets add ----

/// The structural floor: the same lines moving through a bare list.
void add_bare_list(const results& r, const measurement* cacheline, target_line& t) {
  const measurement* bare = first_of(r, {"peer.lockfree_list.roundtrip"});
  if (bare == nullptr || cacheline == nullptr) return;
  t.measured += " [a bare lock-free list round trip, which moves the same lines, is " +
                fmt_ratio(ratio(bare->lat.p50, cacheline->lat.p50)) + " (" + fmt_ns(bare->lat.p50) +
                ")]";
}

/// Without DPDK, why not (the unavailable figure's note).
void add_dpdk_note(const results& r, const measurement* dpdk, target_line& t) {
  if (dpdk != nullptr) return;
  const measurement* d = r.find("peer.dpdk.remote_launch");
  t.measured = d ? d->note : "DPDK not measured";
}

/// Whether membarrier really interrupted anyone is in its note (CAL count).
void add_membarrier_ipis(const results&, const measurement* membarrier, target_line& t) {
  if (membarrier == nullptr) return;
  const auto at = membarrier->note.rfind("; ");
  if (at != std::string::npos)
    t.measured += " [membarrier: " + membarrier->note.substr(at + 2) + "]";
}

/// fd delivery's round trip beside libuv's (the same caller wait, same gap).
void add_libuv(const results& r, const measurement*, target_line& t) {
  const measurement* x = first_of(r, {"xcall.percpu.attached_fd.single_wait"});
  const measurement* uv = first_of(r, {"peer.libuv.async_roundtrip"});
  if (uv != nullptr) {
    t.measured += " [libuv uv_async_send round trip, the same caller wait: " + fmt_ns(uv->lat.p50) +
                  (x != nullptr ? "; xcall ÷ libuv " + fmt_ratio(ratio(x->lat.p50, uv->lat.p50))
                                : std::string()) +
                  "]";
  } else if (const measurement* u = r.find("peer.libuv.async_roundtrip"); u != nullptr) {
    t.measured += " [libuv: " + u->note + "]";
  }
}

// ---- the targets that are not ratios ----

const burst_row* find_burst(const results& r, const std::string& id) {
  for (const burst_row& b : r.bursts) {
    if (b.id == id && b.available && b.bursts > 0) return &b;
  }
  return nullptr;
}

/// n per burst, "–" when not counted.
std::string per_burst(const burst_row& b, std::int64_t n) {
  if (n < 0 || b.bursts == 0) return "–";
  return fmt::format("{:.2f}", static_cast<double>(n) / b.bursts);
}

/// libuv's burst row for the same kind of host, as " [libuv uv_async_send: 1.00 write(2) per
/// burst]".
std::string libuv_burst_note(const results& r, bool blocked) {
  const burst_row* uv =
      find_burst(r, blocked ? "peer.libuv.burst_blocked" : "peer.libuv.burst_running");
  if (uv == nullptr || uv->doorbell_writes < 0) return {};
  return " [libuv uv_async_send to the same host: " + per_burst(*uv, uv->doorbell_writes) +
         " write(2) per burst]";
}

/// fd delivery: a burst to a host blocked in its loop costs one write.
target_line fd_burst_blocked(const results& r) {
  target_line t;
  t.target =
      "fd delivery: a burst of no-wait calls to a host blocked in epoll_wait costs its sender at "
      "most one doorbell write (a burst the host took in two wake-ups, because the sender was "
      "preempted, counts as two)";
  const burst_row* b = find_burst(r, "xcall.percpu.attached_fd.burst_blocked");
  if (b == nullptr || b->doorbell_writes < 0) {
    t.measured = "not measured";
    return t;
  }
  t.measured = fmt::format(
                   "{} doorbell writes per burst of {} ({:.3f} per call) over {} bursts, at most "
                   "{} in a whole burst; {} bursts split, {} writes in excess; the sender's "
                   "write(2)s (the kernel's count): {} per burst",
                   per_burst(*b, b->doorbell_writes), b->calls_per_burst,
                   static_cast<double>(b->doorbell_writes) / (b->bursts * b->calls_per_burst),
                   b->bursts, b->max_writes_in_a_burst, b->split_bursts, b->excess_writes,
                   per_burst(*b, b->sender_writes)) +
               libuv_burst_note(r, true);
  t.v = b->max_writes_in_a_burst <= 1 && b->excess_writes == 0 ? verdict::met : verdict::not_met;
  return t;
}

/// fd delivery: nothing for a host that runs its own code.
target_line fd_burst_running(const results& r) {
  target_line t;
  t.target =
      "fd delivery: no system call for the sender while the host runs its own code (0 doorbell "
      "writes, 0 futex wakes)";
  const burst_row* b = find_burst(r, "xcall.percpu.attached_fd.burst_running");
  if (b == nullptr || b->doorbell_writes < 0 || b->futex_wakes < 0) {
    t.measured = "not measured";
    return t;
  }
  t.measured = fmt::format(
                   "{} doorbell writes and {} futex wakes over {} bursts of {}; the sender's "
                   "write(2)s (the kernel's count): {}",
                   b->doorbell_writes, b->futex_wakes, b->bursts, b->calls_per_burst,
                   b->sender_writes < 0 ? std::string("–") : std::to_string(b->sender_writes)) +
               libuv_burst_note(r, false);
  t.v = b->doorbell_writes == 0 && b->futex_wakes == 0 ? verdict::met : verdict::not_met;
  return t;
}

/// percpu faster than classic for call_function_many from 16 CPUs up.
target_line engines_crossing(const results& r) {
  std::map<unsigned, std::pair<double, double>> tput;  // cpus -> (percpu, classic)
  for (const scaling_point& p : r.scaling) {
    auto& slot = tput[p.cpus];
    (p.engine == "percpu" ? slot.first : slot.second) = p.many_calls_per_s;
  }
  target_line t;
  t.target =
      "percpu faster than classic for call_function_many (all CPUs) from 16 CPUs up, "
      "crossing point shown";
  if (tput.empty()) {
    t.measured = "not measured";
    t.v = verdict::not_measured;
    return t;
  }
  std::string m;
  bool any16 = false, ok = true;
  for (const auto& [n, pc] : tput) {
    if (pc.first <= 0 || pc.second <= 0) continue;
    m += (m.empty() ? "" : ", ") + fmt::format("{}: {}", n, fmt_ratio(pc.first / pc.second));
    if (n >= 16) {
      any16 = true;
      if (pc.first <= pc.second) ok = false;
    }
  }
  // The crossing: the smallest size from which one engine stays ahead up
  // to the largest size measured.
  const auto ahead_from = [&tput](bool percpu) {
    unsigned from = 0;
    for (auto it = tput.rbegin(); it != tput.rend(); ++it) {
      const auto [pc, cl] = it->second;
      if (pc <= 0 || cl <= 0 || (percpu ? pc <= cl : cl <= pc)) break;
      from = it->first;
    }
    return from;
  };
  const unsigned smallest = tput.begin()->first;
  const unsigned percpu_from = ahead_from(true);
  const unsigned classic_from = ahead_from(false);
  std::string crossing;
  if (percpu_from == smallest) {
    crossing = fmt::format("percpu ahead at every size (from {} CPUs)", smallest);
  } else if (percpu_from != 0) {
    crossing = fmt::format("percpu ahead from {} CPUs up", percpu_from);
  } else if (classic_from == smallest) {
    crossing = fmt::format("classic ahead at every size (from {} CPUs)", smallest);
  } else if (classic_from != 0) {
    crossing =
        fmt::format("classic ahead from {} CPUs up, percpu ahead or even below", classic_from);
  } else {
    crossing = "no engine stays ahead up to the largest size";
  }
  t.measured = "percpu ÷ classic calls/s at " + m + "; crossing: " + crossing;
  t.v = !any16 ? verdict::not_measured : ok ? verdict::met : verdict::not_met;
  if (!any16) t.measured += " (sweep stopped below 16 CPUs)";
  return t;
}

/// Zero allocations per call.
target_line zero_allocations(const results& r) {
  target_line t;
  t.target = "zero allocations per call (once the caller's storage exists)";
  if (r.allocations.empty()) {
    t.measured = "not measured";
    return t;
  }
  double worst = 0;
  std::string where;
  for (const alloc_row& a : r.allocations) {
    if (a.per_call > worst) {
      worst = a.per_call;
      where = a.engine + " " + a.caller + " " + a.call;
    }
  }
  t.measured =
      fmt::format("{:.3f} per call at most over {} kinds of call", worst, r.allocations.size()) +
      (where.empty() ? "" : " (worst: " + where + ")");
  t.v = worst == 0 ? verdict::met : verdict::not_met;
  return t;
}

// ---- fan-out wakes (fan_out.cpp) ----

/// The fan-out points at the largest size measured, by engine and tree.
struct fan_pair {
  const fan_out_point* tree = nullptr;
  const fan_out_point* serial = nullptr;
};

std::map<std::string, fan_pair> fan_at_largest(const results& r, unsigned& largest) {
  largest = 0;
  for (const fan_out_point& p : r.fan_out) largest = std::max(largest, p.cpus);
  std::map<std::string, fan_pair> m;
  for (const fan_out_point& p : r.fan_out) {
    if (p.cpus != largest) continue;
    (p.wake_tree ? m[p.engine].tree : m[p.engine].serial) = &p;
  }
  return m;
}

/// The serial design's cost per wake: its on_each_cpu p50 ÷ the CPUs.
double per_wake_ns(const fan_out_point& serial) {
  return serial.cpus == 0 ? 0 : serial.each.p50 / serial.cpus;
}

/// "at 256 CPUs", or why the target's size was not reached.
void fan_verdict(target_line& t, const multi_check& c, unsigned largest) {
  const target_line l = c.line(t.target);
  t.measured = l.measured;
  t.v = l.v;
  if (largest == 0) return;
  t.measured = fmt::format("at {} CPUs: ", largest) + t.measured;
  if (largest < 256 && t.v != verdict::not_measured) {
    t.v = verdict::not_measured;
    t.measured += " (sweep stopped below 256 CPUs)";
  }
}

/// A no-wait call_function_many to 256 sleeping CPUs returns in at most 8 wakes.
target_line fan_out_return(const results& r) {
  target_line t;
  t.target =
      "a no-wait call_function_many to 256 sleeping CPUs returns to the caller in the time of at "
      "most 8 wakes (8 × the serial design's per-wake cost, its on_each_cpu p50 ÷ 256, same run)";
  unsigned largest = 0;
  multi_check c;
  for (const auto& [engine, p] : fan_at_largest(r, largest)) {
    if (p.tree == nullptr || p.serial == nullptr) continue;
    const double w = per_wake_ns(*p.serial);
    const double wakes = w > 0 ? p.tree->many_return.p50 / w : 0;
    c.add(engine, w > 0 && wakes <= 8,
          fmt::format("{} = {:.1f} wakes of {} (caller made {:.1f} futex wakes per call; the "
                      "serial design's no-wait call returned in {})",
                      fmt_ns(p.tree->many_return.p50), wakes, fmt_ns(w), p.tree->caller_wakes,
                      fmt_ns(p.serial->many_return.p50)));
  }
  fan_verdict(t, c, largest);
  return t;
}

/// on_each_cpu with wait over 256 sleeping CPUs at most half the serial design's.
target_line fan_out_each(const results& r) {
  target_line t;
  t.target =
      "on_each_cpu with wait over 256 sleeping CPUs, wake tree p50 ≤ 0.5× the serial design's "
      "p50 (same run)";
  unsigned largest = 0;
  multi_check c;
  for (const auto& [engine, p] : fan_at_largest(r, largest)) {
    if (p.tree == nullptr || p.serial == nullptr) continue;
    const double q = ratio(p.tree->each.p50, p.serial->each.p50);
    c.add(engine, q > 0 && q <= 0.5,
          fmt::format("{} ({} vs {})", fmt_ratio(q), fmt_ns(p.tree->each.p50),
                      fmt_ns(p.serial->each.p50)));
  }
  fan_verdict(t, c, largest);
  if (t.v == verdict::not_met) {
    t.measured += fmt::format(
        " [this machine has {} cores: the woken hosts queue for them, so the run time of {} "
        "wake-ups is serial whoever makes the wake system calls]",
        r.machine.cores, largest);
  }
  return t;
}

constexpr target_spec kTargets[] = {
    // name, text, reference, reference_named, parts, mode, what, paired, bound, limit,
    // shown, extra, custom
    {"poll vs cache line",
     "poll mode, call_function_single with wait, p50 ≤ 1.5× the cache-line floor ({})",
     "floor.cacheline", false, parts_kind::engines, "poll", "single_wait", pairing::or_reference,
     bound::at_most, 1.5, shown::ratio_vs_floor, add_bare_list, nullptr},
    {"adaptive past spin vs futex",
     "adaptive mode, target past its spin window, single wait p50 ≤ 1.1× futex ping-pong ({})",
     "floor.futex", false, parts_kind::engines, "adaptive_cold", "single_wait", pairing::none,
     bound::at_most, 1.1, shown::ratio_and_p50, nullptr, nullptr},
    {"adaptive past spin vs DPDK",
     "adaptive mode, target past its spin window, single wait p50 faster than DPDK remote "
     "launch ({})",
     "peer.dpdk.remote_launch", false, parts_kind::engines, "adaptive_cold", "single_wait",
     pairing::none, bound::below, 1.0, shown::ratio_and_p50, add_dpdk_note, nullptr},
    {"sleep vs futex", "sleep mode, single wait p50 ≤ 1.1× futex ping-pong ({})", "floor.futex",
     false, parts_kind::engines, "sleep", "single_wait", pairing::none, bound::at_most, 1.1,
     shown::ratio_and_p50, nullptr, nullptr},
    {"sleep vs DPDK", "sleep mode, single wait p50 faster than DPDK remote launch ({})",
     "peer.dpdk.remote_launch", false, parts_kind::engines, "sleep", "single_wait", pairing::none,
     bound::below, 1.0, shown::ratio_and_p50, add_dpdk_note, nullptr},
    {"on_each_cpu vs membarrier",
     "on_each_cpu with wait over sleeping CPUs, p50 faster than membarrier PRIVATE_EXPEDITED "
     "with the other CPUs busy ({})",
     "floor.membarrier.busy", false, parts_kind::engines, "sleep", "on_each_cpu", pairing::none,
     bound::below, 1.0, shown::ratio_and_p50, add_membarrier_ipis, nullptr},
    {"async 1→1 vs mutex queue",
     "async single calls, 1 producer → 1 target, ≥ 2× the mutex/condvar/std::function queue "
     "({}; percpu engine, per idle mode)",
     "peer.mutex_queue.async_1", true, parts_kind::modes, nullptr, "async_1", pairing::none,
     bound::at_least, 2.0, shown::ratio, nullptr, nullptr},
    {"async all→1 vs mutex queue",
     "async single calls, all producers → 1 target, ≥ 2× the mutex/condvar/std::function queue "
     "({}; percpu engine, per idle mode)",
     "peer.mutex_queue.async_all", true, parts_kind::modes, nullptr, "async_all", pairing::none,
     bound::at_least, 2.0, shown::ratio, nullptr, nullptr},
    {"async 1→1 vs bare list",
     "async single calls, 1 producer → 1 target, ≥ 0.8× a bare lock-free list push/take-all "
     "({}; percpu engine, per idle mode)",
     "peer.lockfree_list.async_1", true, parts_kind::modes, nullptr, "async_1",
     pairing::with_reference, bound::at_least, 0.8, shown::ratio, nullptr, nullptr},
    {"async all→1 vs bare list",
     "async single calls, all producers → 1 target, ≥ 0.8× a bare lock-free list push/take-all "
     "({}; percpu engine, per idle mode)",
     "peer.lockfree_list.async_all", true, parts_kind::modes, nullptr, "async_all",
     pairing::with_reference, bound::at_least, 0.8, shown::ratio, nullptr, nullptr},
    {"fd round trip vs eventfd through epoll",
     "fd delivery: call_function_single with wait to a host blocked in epoll_wait, p50 below an "
     "eventfd ping-pong whose two sides block in epoll_wait ({}; percpu engine, floor paired)",
     "floor.eventfd_epoll", false, parts_kind::engines, "attached_fd", "single_wait",
     pairing::or_reference, bound::below, 1.0, shown::ratio_vs_floor, add_libuv, nullptr},
    {"fd burst to a blocked host", nullptr, nullptr, false, parts_kind::engines, nullptr, nullptr,
     pairing::none, bound::at_most, 1, shown::ratio, nullptr, fd_burst_blocked},
    {"fd burst to a running host", nullptr, nullptr, false, parts_kind::engines, nullptr, nullptr,
     pairing::none, bound::at_most, 0, shown::ratio, nullptr, fd_burst_running},
    {"engines' crossing", nullptr, nullptr, false, parts_kind::engines, nullptr, nullptr,
     pairing::none, bound::at_least, 0, shown::ratio, nullptr, engines_crossing},
    {"fan-out return", nullptr, nullptr, false, parts_kind::engines, nullptr, nullptr,
     pairing::none, bound::at_most, 8, shown::ratio, nullptr, fan_out_return},
    {"fan-out on_each_cpu", nullptr, nullptr, false, parts_kind::engines, nullptr, nullptr,
     pairing::none, bound::at_most, 0.5, shown::ratio, nullptr, fan_out_each},
    {"allocations", nullptr, nullptr, false, parts_kind::engines, nullptr, nullptr, pairing::none,
     bound::at_most, 0, shown::ratio, nullptr, zero_allocations},
};

}  // namespace

std::string target_line::text() const {
  return "target: " + target + " — measured " + measured + " — " + verdict_name(v);
}

std::vector<target_line> evaluate_targets(const results& r) {
  std::vector<target_line> lines;
  for (const target_spec& t : kTargets) {
    lines.push_back(t.custom != nullptr ? t.custom(r) : evaluate_ratio(r, t));
  }
  return lines;
}

// ---- Markdown -------------------------------------------------------------------

namespace {

void machine_table(std::ostringstream& o, const results& r) {
  const machine_info& m = r.machine;
  o << "| machine | |\n|---|---|\n";
  o << "| CPU | " << m.cpu_model << ", " << m.cores << " host CPUs usable (" << m.online_cpus
    << " online) |\n";
  o << "| virtualized | "
    << (m.virtualized ? "yes" + (m.hypervisor.empty() ? std::string() : " (" + m.hypervisor + ")")
                      : std::string("no (no hypervisor flag)"))
    << " |\n";
  o << "| kernel | " << m.kernel << " |\n";
  o << "| xcall | " << m.git_revision << ", " << m.compiler << " |\n";
  o << "| run | "
    << (r.cfg.smoke   ? "--smoke"
        : r.cfg.quick ? "--quick"
                      : "full")
    << ", " << m.date << ", " << fmt::format("{:.0f} s", r.seconds) << " |\n";
  o << "| load average | " << m.load_before << " at start, " << m.load_after << " at end |\n";
  o << "| clock | " << m.clock << fmt::format(", {:.0f} ns per read", m.clock_read_ns) << " |\n\n";
}

/// The attached hosts (attached_cases.cpp), each beside the floor measured
/// just before it (its paired_floor_id says which) and the mechanism outside
/// xcall that does the same job.
void attached_rows(std::ostringstream& o, const results& r) {
  struct attached_row {
    const char* id;
    const char* label;
    std::initializer_list<const char*> peers;  ///< the first usable one
  };
  const attached_row rows[] = {
      // A polling host: the shape of every other single call.
      {"xcall.percpu.attached_poll.single_wait",
       "percpu · attached, poll delivery, host polls",
       {"peer.dpdk.remote_launch", "peer.mutex_queue.roundtrip"}},
      // A host blocked in read(): DPDK's worker waits for its launch that way.
      {"xcall.percpu.attached_proxy.single_wait",
       "percpu · attached, proxy, host parked in read()",
       {"peer.dpdk.remote_launch", "floor.eventfd"}},
      // Polling now and then, beside what a signal costs.
      {"xcall.percpu.attached_poll_20us.single_wait",
       "percpu · attached, poll delivery, host polls every 20 µs",
       {"floor.tgkill"}},
      // The kernel's own way to run something on a running CPU.
      {"xcall.percpu.attached_signal.single_wait",
       "percpu · attached, signal delivery, host busy",
       {"floor.membarrier.busy"}},
      // An event loop's doorbell, beside libuv's (the same caller wait).
      {"xcall.percpu.attached_fd.single_wait",
       "percpu · attached, fd delivery, host blocked in epoll_wait; caller spins ≤ 50 µs, then "
       "sleeps",
       {"peer.libuv.async_roundtrip", "floor.eventfd"}},
  };
  for (const attached_row& row : rows) {
    const measurement* x = r.find(row.id);
    if (x == nullptr || !usable(x)) continue;
    std::string floor_text = "–";
    double floor_ns = 0;
    if (x->paired_floor_ns > 0) {
      floor_text = short_name_of(x->paired_floor_id, x->paired_floor_id) + " " +
                   fmt_ns(x->paired_floor_ns) + " (paired)";
      floor_ns = x->paired_floor_ns;
    } else if (const measurement* fl = first_of(r, {x->paired_floor_id.c_str()}); fl != nullptr) {
      floor_text = with_value(fl);
      floor_ns = fl->lat.p50;
    }
    const measurement* pe = first_of(r, row.peers);
    o << "| " << row.label << " · call_function_single, wait | " << fmt_us(x->lat.p50) << " | "
      << fmt_us(x->lat.p99) << " | " << fmt_us(x->lat.p999) << " | " << floor_text << " | "
      << fmt_ratio(ratio(x->lat.p50, floor_ns)) << " | " << with_value(pe) << " | "
      << fmt_ratio(pe ? ratio(x->lat.p50, pe->lat.p50) : 0) << " |\n";
  }
}

void headline_table(std::ostringstream& o, const results& r) {
  o << "#### Every xcall figure beside its floor and nearest peer\n\n";
  o << "Latency rows: round trip with wait, µs; ratios are xcall p50 ÷ the other's p50 "
       "(below 1×: xcall is faster). Throughput rows: calls/s; ratios are xcall ÷ the other "
       "(above 1×: xcall is faster).\n\n";
  o << "| xcall figure | p50 | p99 | p99.9 | floor | × floor | nearest peer | × peer |\n";
  o << "|---|---|---|---|---|---|---|---|\n";
  struct call_kind {
    const char* id;
    const char* label;
  };
  const call_kind calls[] = {{"single_wait", "call_function_single, wait"},
                             {"on_each_cpu", "on_each_cpu, wait"},
                             {"many_wait", "call_function_many (all), wait"}};
  for (const char* e : kEngines) {
    for (const call_kind& c : calls) {
      for (const mode_row& mode : kModes) {
        const measurement* x = r.find(xid(e, mode.id, c.id));
        if (x == nullptr) continue;
        const measurement* fl = latency_floor(r, mode);
        const measurement* pe = latency_peer(r, c.id);
        std::string floor_text = with_value(fl);
        double floor_ns = fl ? fl->lat.p50 : 0;
        if (!mode.sleeping && x->paired_floor_ns > 0) {
          floor_text = "cache-line ping-pong " + fmt_ns(x->paired_floor_ns) + " (paired)";
          floor_ns = x->paired_floor_ns;
        }
        o << "| " << e << " · " << mode.label << " · " << c.label << " | " << fmt_us(x->lat.p50)
          << " | " << fmt_us(x->lat.p99) << " | " << fmt_us(x->lat.p999) << " | " << floor_text
          << " | " << fmt_ratio(ratio(x->lat.p50, floor_ns)) << " | " << with_value(pe) << " | "
          << fmt_ratio(pe ? ratio(x->lat.p50, pe->lat.p50) : 0) << " |\n";
      }
    }
  }
  attached_rows(o, r);
  for (const char* e : kEngines) {
    for (const char* shape : {"async_1", "async_all"}) {
      for (const mode_row& mode : kModes) {
        if (!mode.throughput) continue;
        const measurement* x = r.find(xid(e, mode.id, shape));
        if (x == nullptr) continue;
        const measurement* fl = first_of(r, {(std::string("peer.lockfree_list.") + shape).c_str()});
        const measurement* pe = first_of(r, {(std::string("peer.mutex_queue.") + shape).c_str()});
        const std::string label = x->label.substr(x->label.find("async"));
        std::string floor_text = with_value(fl);
        double floor_rate = fl ? fl->rate : 0;
        if (x->paired_floor_rate > 0) {
          floor_text = "bare lock-free list " + fmt_rate(x->paired_floor_rate) + " (paired)";
          floor_rate = x->paired_floor_rate;
        }
        o << "| " << e << " · " << mode.label << " · " << label << " | " << fmt_rate(x->rate)
          << " | | | " << floor_text << " | " << fmt_ratio(ratio(x->rate, floor_rate)) << " | "
          << with_value(pe) << " | " << fmt_ratio(pe ? ratio(x->rate, pe->rate) : 0) << " |\n";
      }
    }
  }
  o << "\n";
}

void floors_table(std::ostringstream& o, const results& r) {
  o << "#### Floors and peers (same run)\n\n";
  o << "| mechanism | p50 | p99 | p99.9 | throughput | how |\n|---|---|---|---|---|---|\n";
  for (const measurement& m : r.figures) {
    if (m.id.rfind("xcall.", 0) == 0) continue;
    if (!m.available) {
      o << "| " << m.label << " | – | – | – | – | " << m.note << " |\n";
    } else if (m.kind == figure_kind::latency) {
      o << "| " << m.label << " | " << fmt_ns(m.lat.p50) << " | " << fmt_ns(m.lat.p99) << " | "
        << fmt_ns(m.lat.p999) << " | | " << m.note << " |\n";
    } else {
      o << "| " << m.label << " | | | | " << fmt_rate(m.rate) << " | " << m.note << " |\n";
    }
  }
  o << "\n";
}

void notes_table(std::ostringstream& o, const results& r) {
  o << "<details><summary>How each xcall figure was taken</summary>\n\n";
  o << "| figure | samples | how |\n|---|---|---|\n";
  for (const measurement& m : r.figures) {
    if (m.id.rfind("xcall.", 0) != 0) continue;
    o << "| " << m.label << " | "
      << (m.kind == figure_kind::latency ? std::to_string(m.lat.n) : std::string("–")) << " | "
      << m.note << " |\n";
  }
  o << "\n</details>\n\n";
}

/// The senders' system calls for bursts of no-wait calls (burst_row).
void bursts_table(std::ostringstream& o, const results& r) {
  if (r.bursts.empty()) return;
  o << "#### Senders' system calls: bursts of no-wait calls to an event-loop host\n\n";
  o << "One sending thread, K calls (libuv: messages) per burst; the host takes the whole burst "
       "before the next one. Doorbell writes: xcall's count (`doorbell_fd_writes`); for libuv, "
       "the sender's write(2)s. write(2)s: the kernel's count for the sending thread "
       "(`/proc/thread-self/io`). Floor: one write per burst wakes a host blocked in its loop; "
       "a host running its own code needs none. × libuv: doorbell writes per burst ÷ libuv's, "
       "to the same kind of host.\n\n";
  o << "A burst is *split* when the host ran part of it and waited in its loop again before the "
       "sender had queued the rest (the sender was preempted): each wait may cost one write, "
       "and only writes beyond that count as excess.\n\n";
  o << "| sender → host | bursts × K | doorbell writes per burst (most in a whole burst; split "
       "bursts; excess writes) | per call | futex wakes per call | sender write(2)s per burst | "
       "floor | × floor | libuv, same host | × libuv |\n";
  o << "|---|---|---|---|---|---|---|---|---|---|\n";
  const auto per_call = [](const burst_row& b, std::int64_t n) {
    if (n < 0 || b.bursts == 0 || b.calls_per_burst == 0) return std::string("–");
    return fmt::format("{:.3f}", static_cast<double>(n) / (b.bursts * b.calls_per_burst));
  };
  for (const burst_row& b : r.bursts) {
    if (!b.available) {
      o << "| " << b.label << " | – | – | – | – | – | – | – | – | " << b.note << " |\n";
      continue;
    }
    const double writes = b.doorbell_writes >= 0 && b.bursts > 0
                              ? static_cast<double>(b.doorbell_writes) / b.bursts
                              : -1;
    std::string vs_floor = "–";
    if (writes >= 0) {
      vs_floor = b.host_blocked ? fmt::format("{:.2f}×", writes)
                 : writes == 0  ? std::string("at the floor")
                                : fmt::format("+{:.2f}", writes);
    }
    std::string uv_text = "–", vs_uv = "–";
    if (b.id.rfind("xcall.", 0) == 0) {
      const burst_row* uv =
          find_burst(r, b.host_blocked ? "peer.libuv.burst_blocked" : "peer.libuv.burst_running");
      if (uv != nullptr && uv->doorbell_writes >= 0) {
        const double uv_writes = static_cast<double>(uv->doorbell_writes) / uv->bursts;
        uv_text = fmt::format("{:.2f} per burst", uv_writes);
        if (uv_writes > 0 && writes >= 0) vs_uv = fmt::format("{:.2f}×", writes / uv_writes);
      }
    }
    o << "| " << b.label << " | " << b.bursts << " × " << b.calls_per_burst << " | "
      << per_burst(b, b.doorbell_writes)
      << (b.doorbell_writes >= 0 ? fmt::format(" ({}; {}; {})", b.max_writes_in_a_burst,
                                               b.split_bursts, b.excess_writes)
                                 : std::string())
      << " | " << per_call(b, b.doorbell_writes) << " | " << per_call(b, b.futex_wakes) << " | "
      << per_burst(b, b.sender_writes) << " | " << (b.host_blocked ? "1" : "0") << " | " << vs_floor
      << " | " << uv_text << " | " << vs_uv << " |\n";
  }
  o << "\n<details><summary>How each burst row was taken</summary>\n\n";
  o << "| row | how |\n|---|---|\n";
  for (const burst_row& b : r.bursts) o << "| " << b.label << " | " << b.note << " |\n";
  o << "\n</details>\n\n";
}

void scaling_table(std::ostringstream& o, const results& r) {
  if (r.scaling.empty()) return;
  o << "#### Scaling: domains larger than the machine (sleep mode, owned threads)\n\n";
  o << "on_each_cpu with wait from one outside caller (µs); call_function_many over all CPUs, "
       "no wait, from "
    << r.scaling.front().callers << " concurrent outside callers (calls/s).\n\n";
  o << "| CPUs | on_each_cpu p50 percpu | classic | p99 percpu | classic | many calls/s percpu "
       "| classic | percpu ÷ classic | futex wakes per CPU per many call, percpu | classic |\n";
  o << "|---|---|---|---|---|---|---|---|---|---|\n";
  std::map<unsigned, std::pair<const scaling_point*, const scaling_point*>> rows;
  for (const scaling_point& p : r.scaling) {
    auto& row = rows[p.cpus];
    (p.engine == "percpu" ? row.first : row.second) = &p;
  }
  for (const auto& [n, pc] : rows) {
    const scaling_point* p = pc.first;
    const scaling_point* c = pc.second;
    o << "| " << n << " | " << (p ? fmt_us(p->on_each_cpu.p50) : "–") << " | "
      << (c ? fmt_us(c->on_each_cpu.p50) : "–") << " | " << (p ? fmt_us(p->on_each_cpu.p99) : "–")
      << " | " << (c ? fmt_us(c->on_each_cpu.p99) : "–") << " | "
      << (p ? fmt_rate(p->many_calls_per_s) : "–") << " | "
      << (c ? fmt_rate(c->many_calls_per_s) : "–") << " | "
      << fmt_ratio(p && c ? ratio(p->many_calls_per_s, c->many_calls_per_s) : 0) << " | "
      << (p ? fmt::format("{:.2f}", p->many_wakes) : "–") << " | "
      << (c ? fmt::format("{:.2f}", c->many_wakes) : "–") << " |\n";
  }
  o << "\n";
}

void fan_out_table(std::ostringstream& o, const results& r) {
  if (r.fan_out.empty()) return;
  o << "#### Fan-out wakes: every CPU asleep before each call (sleep mode, owned threads)\n\n";
  o << "One outside caller, calls to all CPUs; every CPU has gone back to sleep before each "
       "call. Tree: the wake tree (on) or the serial design (off: the caller futex-wakes every "
       "sleeper itself). Wakes per call: futex wakes the caller made, and those made by woken "
       "CPUs (relayed), over both kinds of call. Levels: 1 up to 4 CPUs (the caller wakes them "
       "all), else floor(log2 n) + 1, the longest chain of "
       "sequential wakes when all sleep (computed from the heap's shape, not measured). Per "
       "wake: the serial design's on_each_cpu p50 ÷ n.\n\n";
  o << "| CPUs | engine | tree | many (no wait) returns p50 | p99 | on_each_cpu p50 | p99 | "
       "tree ÷ serial, on_each_cpu p50 | caller wakes / call | relayed / call | levels | per "
       "wake (serial) |\n";
  o << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const auto serial_of = [&r](const fan_out_point& p) -> const fan_out_point* {
    for (const fan_out_point& q : r.fan_out) {
      if (q.cpus == p.cpus && q.engine == p.engine && !q.wake_tree) return &q;
    }
    return nullptr;
  };
  for (const fan_out_point& p : r.fan_out) {
    const fan_out_point* s = serial_of(p);
    o << "| " << p.cpus << " | " << p.engine << " | " << (p.wake_tree ? "on" : "off") << " | "
      << fmt_us(p.many_return.p50) << " | " << fmt_us(p.many_return.p99) << " | "
      << fmt_us(p.each.p50) << " | " << fmt_us(p.each.p99) << " | "
      << (p.wake_tree && s != nullptr ? fmt_ratio(ratio(p.each.p50, s->each.p50))
                                      : std::string("–"))
      << " | " << fmt::format("{:.1f}", p.caller_wakes) << " | "
      << fmt::format("{:.1f}", p.relayed_wakes) << " | " << p.levels << " | "
      << (!p.wake_tree ? fmt_ns(per_wake_ns(p)) : std::string("–")) << " |\n";
  }
  o << "\n";
  // What the critical path gives on machines with a core per CPU.
  unsigned largest = 0;
  for (const auto& [engine, pair] : fan_at_largest(r, largest)) {
    if (pair.serial == nullptr) continue;
    const double w = per_wake_ns(*pair.serial);
    o << "With " << engine << "'s per-wake cost measured here (" << fmt_ns(w) << ", at " << largest
      << " CPUs), a machine with a core per CPU would wake all of them ";
    for (unsigned cores : {64u, 256u}) {
      unsigned levels = 0;
      for (unsigned n = cores; n != 0; n >>= 1) ++levels;
      o << (cores == 64 ? "" : "; ")
        << fmt::format(
               "at {} cores in {} sequential wakes ≈ {}, "
               "against {} serially",
               cores, levels, fmt_ns(levels * w), fmt_ns(cores * w));
    }
    o << " (each level also costs a wake-up latency; see BENCHMARKS.md).\n\n";
  }
}

void footprint_tables(std::ostringstream& o, const results& r) {
  if (!r.allocations.empty()) {
    o << "#### Allocations per call\n\n";
    o << "| engine | caller | call | first call | per call, warm |\n|---|---|---|---|---|\n";
    for (const alloc_row& a : r.allocations) {
      o << "| " << a.engine << " | " << a.caller << " | " << a.call << " | " << a.first_call
        << " | " << fmt::format("{:.3f}", a.per_call) << " (" << a.calls << " calls) |\n";
    }
    o << "\n";
  }
  if (!r.memory.empty()) {
    o << "#### Resident memory per CPU\n\n";
    o << "| what | CPUs | RSS growth | per CPU | built in | destroyed in |\n"
         "|---|---|---|---|---|---|\n";
    for (const memory_row& m : r.memory) {
      o << "| " << m.what << " | " << m.cpus << " | "
        << fmt::format("{} KiB", m.rss_after_kib - m.rss_before_kib) << " | "
        << fmt::format("{:.0f} B", m.bytes_per_cpu) << " | "
        << (m.construct_ms < 0 ? std::string("–") : fmt::format("{:.1f} ms", m.construct_ms))
        << " | " << (m.destroy_ms < 0 ? std::string("–") : fmt::format("{:.1f} ms", m.destroy_ms))
        << " |\n";
    }
    o << "\n";
  }
}

}  // namespace

std::string markdown_report(const results& r) {
  std::ostringstream o;
  o << "<!-- generated by xcall-bench --markdown; edit the prose outside these markers -->\n\n";
  machine_table(o, r);
  o << "#### Targets\n\n";
  for (const target_line& t : evaluate_targets(r)) o << "- " << t.text() << "\n";
  o << "\n";
  headline_table(o, r);
  floors_table(o, r);
  bursts_table(o, r);
  scaling_table(o, r);
  fan_out_table(o, r);
  footprint_tables(o, r);
  notes_table(o, r);
  if (!r.warnings.empty()) {
    o << "#### Warnings\n\n";
    for (const std::string& w : r.warnings) o << "- " << w << "\n";
    o << "\n";
  }
  return o.str();
}

bool write_markdown(const results& r, const std::string& path) {
  const std::string section = std::string(kBegin) + "\n" + markdown_report(r) + kEnd + "\n";
  std::string text;
  {
    std::ifstream in(path);
    if (in) {
      std::ostringstream s;
      s << in.rdbuf();
      text = s.str();
    }
  }
  // Markers count only alone on their line, so prose may quote them.
  const auto line_at = [&text](const std::string& marker, std::size_t from) {
    for (auto at = text.find(marker, from); at != std::string::npos;
         at = text.find(marker, at + 1)) {
      const auto end = at + marker.size();
      const bool starts = at == 0 || text[at - 1] == '\n';
      const bool ends = end == text.size() || text[end] == '\n';
      if (starts && ends) return at;
    }
    return std::string::npos;
  };
  const auto b = line_at(kBegin, 0);
  const auto e = b == std::string::npos ? b : line_at(kEnd, b);
  if (b != std::string::npos && e != std::string::npos) {
    auto after = e + std::string(kEnd).size();
    if (after < text.size() && text[after] == '\n') ++after;
    text = text.substr(0, b) + section + text.substr(after);
  } else if (!text.empty()) {
    text += "\n" + section;
  } else {
    text = section;
  }
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

// ---- JSON -------------------------------------------------------------------------

namespace {

// ordered_json keeps the keys in the order written, as the file always had them.
using json = nlohmann::ordered_json;

/// A figure as the JSON has always carried it: six significant digits
/// (enough for any figure the bench measures, and stable diffs between runs);
/// null when not finite.
json num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return std::strtod(fmt::format("{:.6g}", v).c_str(), nullptr);
}

json summary_json(const summary& s) {
  return {{"n", s.n},
          {"min_ns", num(s.min)},
          {"p50_ns", num(s.p50)},
          {"p90_ns", num(s.p90)},
          {"p99_ns", num(s.p99)},
          {"p999_ns", num(s.p999)},
          {"max_ns", num(s.max)},
          {"mean_ns", num(s.mean)}};
}

json machine_json(const machine_info& m) {
  return {{"cpu_model", m.cpu_model},
          {"cores", m.cores},
          {"online_cpus", m.online_cpus},
          {"kernel", m.kernel},
          {"virtualized", m.virtualized},
          {"hypervisor", m.hypervisor},
          {"git_revision", m.git_revision},
          {"compiler", m.compiler},
          {"date", m.date},
          {"load_before", m.load_before},
          {"load_after", m.load_after},
          {"clock", m.clock},
          {"clock_read_ns", num(m.clock_read_ns)}};
}

json figure_json(const measurement& f) {
  json j = {{"id", f.id},
            {"label", f.label},
            {"kind", f.kind == figure_kind::latency ? "latency" : "throughput"},
            {"available", f.available},
            {"note", f.note}};
  if (f.available && f.kind == figure_kind::latency) j["latency"] = summary_json(f.lat);
  if (f.paired_floor_ns > 0) {
    j["paired_floor"] = {{"id", f.paired_floor_id}, {"p50_ns", num(f.paired_floor_ns)}};
  }
  if (f.paired_floor_rate > 0) j["paired_rate_per_second"] = num(f.paired_floor_rate);
  if (f.available && f.kind == figure_kind::throughput) j["per_second"] = num(f.rate);
  return j;
}

json scaling_json(const scaling_point& p) {
  return {{"engine", p.engine},
          {"cpus", p.cpus},
          {"on_each_cpu", summary_json(p.on_each_cpu)},
          {"many_calls_per_s", num(p.many_calls_per_s)},
          {"many_runs_per_s", num(p.many_runs_per_s)},
          {"callers", p.callers},
          {"on_each_cpu_wakes_per_cpu", num(p.each_wakes)},
          {"many_wakes_per_cpu", num(p.many_wakes)}};
}

json fan_out_json(const fan_out_point& p) {
  return {{"engine", p.engine},
          {"cpus", p.cpus},
          {"wake_tree", p.wake_tree},
          {"many_no_wait_return", summary_json(p.many_return)},
          {"on_each_cpu", summary_json(p.each)},
          {"calls", p.calls},
          {"caller_wakes_per_call", num(p.caller_wakes)},
          {"relayed_wakes_per_call", num(p.relayed_wakes)},
          {"levels_computed", p.levels}};
}

json allocation_json(const alloc_row& a) {
  return {{"engine", a.engine},         {"caller", a.caller},          {"call", a.call},
          {"first_call", a.first_call}, {"per_call", num(a.per_call)}, {"calls", a.calls}};
}

/// A count, or null when it was not counted (-1).
json count(std::int64_t n) {
  if (n < 0) return nullptr;
  return n;
}

json burst_json(const burst_row& b) {
  return {{"id", b.id},
          {"label", b.label},
          {"available", b.available},
          {"note", b.note},
          {"host_blocked", b.host_blocked},
          {"bursts", b.bursts},
          {"calls_per_burst", b.calls_per_burst},
          {"doorbell_writes", count(b.doorbell_writes)},
          {"max_writes_in_a_burst", b.max_writes_in_a_burst},
          {"split_bursts", b.split_bursts},
          {"excess_writes", b.excess_writes},
          {"futex_wakes", count(b.futex_wakes)},
          {"sender_writes", count(b.sender_writes)}};
}

json memory_json(const memory_row& m) {
  return {{"what", m.what},
          {"cpus", m.cpus},
          {"rss_before_kib", m.rss_before_kib},
          {"rss_after_kib", m.rss_after_kib},
          {"bytes_per_cpu", num(m.bytes_per_cpu)},
          {"construct_ms", m.construct_ms < 0 ? json(nullptr) : num(m.construct_ms)},
          {"destroy_ms", m.destroy_ms < 0 ? json(nullptr) : num(m.destroy_ms)}};
}

/// Each element of `rows` through `to_json`, as a JSON array.
template <class Row, class ToJson>
json array_of(const std::vector<Row>& rows, ToJson to_json) {
  json a = json::array();
  for (const Row& row : rows) a.push_back(to_json(row));
  return a;
}

}  // namespace

bool write_json(const results& r, const std::string& path) {
  json j;
  j["machine"] = machine_json(r.machine);
  j["run"] = {{"quick", r.cfg.quick},
              {"seconds", num(r.seconds)},
              {"latency_samples", r.cfg.latency_samples},
              {"throughput_seconds", num(r.cfg.throughput_seconds)},
              {"scale_max_cpus", r.cfg.scale_max_cpus},
              {"fan_max_cpus", r.cfg.fan_max_cpus},
              {"smoke", r.cfg.smoke}};
  j["figures"] = array_of(r.figures, figure_json);
  j["scaling"] = array_of(r.scaling, scaling_json);
  j["fan_out"] = array_of(r.fan_out, fan_out_json);
  j["allocations"] = array_of(r.allocations, allocation_json);
  j["memory"] = array_of(r.memory, memory_json);
  j["bursts"] = array_of(r.bursts, burst_json);
  j["targets"] = array_of(evaluate_targets(r), [](const target_line& t) {
    return json{{"target", t.target}, {"measured", t.measured}, {"verdict", verdict_name(t.v)}};
  });
  j["warnings"] = r.warnings;
  j["count_errors"] = r.count_errors;
  std::ofstream out(path, std::ios::trunc);
  // Invalid UTF-8 in a note (a CPU model string, say) is replaced, not thrown.
  out << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  return static_cast<bool>(out);
}

}  // namespace xcall::bench
