// attached_cases.cpp — calls to a CPU hosted by an application thread
// (domain_options::start_threads = false): what each way of reaching an
// attached host (docs/attached-threads.md) costs a caller that waits.
//
// Every row is call_function_single(0, f, info, wait = true) from an outside
// thread on caller_core() to CPU 0 of a 1-CPU domain, whose host thread is
// pinned to target_core() and runs "application code" of four kinds:
//
//  - attached_poll: poll delivery, the host loops on xcall::poll(). The best
//    a host that is there to answer can do; the baseline of the proxy row.
//    Paired with a cache-line ping-pong measured just before, as the
//    poll-mode rows of xcall_cases.cpp are.
//  - attached_poll_20us: poll delivery, the host works in 20 µs slices and
//    polls between them. The caller waits a random 0..20 µs before each call,
//    so that calls land at random phases of the host's period (a fixed gap
//    would meet it at the same phase every time, and back-to-back calls
//    would always arrive just after a poll). Expected: half the period plus
//    the call. For context beside signal delivery, which costs about as much
//    without asking the host to poll at all. Compared with the polling host.
//  - attached_signal: signal delivery, the host spins on a relaxed stop flag
//    and never reaches a safe point; each call reaches it through the
//    doorbell signal and runs in the handler. Paired with the tgkill + ack
//    floor measured just before, on the same cores (floors.cpp): the same
//    signal round trip, from a sender that spins on the handler's flag to a
//    thread that spins the same way, with nothing of xcall's around it.
//  - attached_proxy: proxy (poll delivery), the host blocks in read() on a
//    pipe inside an xcall::blocking_region; the waiting caller runs the call
//    itself as CPU 0 (the bench writes the pipe's byte at the end to release
//    the host). Compared with attached_poll measured just before it: the
//    question proxy answers is "must a host keep polling (burning its core)
//    for its waiting callers to be served at once?", and the polling host is
//    that alternative. (The cache-line floor would compare a call that moves
//    no line between cores with a round trip between two cores; its ratio
//    would say nothing about xcall.)
//
// Only the percpu engine: single calls take the same path in both engines
// (domain_impl::call_single), and the signal and proxy machinery is shared.
// The domain idles adaptively (the default) with the default idle_spin of
// 50 µs: a waiting caller spins that long before it sleeps, which covers a
// signal round trip here; each note says how many calls outlasted the spin.
// Every row checks that each call ran exactly once, and its note gives the
// counters (xcall/stats.hpp) that show which path the calls really took:
// signals sent and handler runs for signal delivery, proxy runs for proxy.
//
// Ordering: a host announces itself with a release store of `state_` that
// the caller's acquire load pairs with (it is attached, hence CPU 0 is
// online, and error_ is written, before the store); `stop_` is a relaxed
// stop flag (it publishes nothing; join orders what the host wrote). The
// proxy host's `parked` and `read_done` flags are release stores paired with
// the caller's acquire loads. Everything else is xcall's own ordering, which
// is what is measured.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {
namespace {

constexpr double kPollEveryNs = 20e3;  ///< attached_poll_20us: the host's poll period

constexpr const char* kPollId = "xcall.percpu.attached_poll.single_wait";
constexpr const char* kPollEveryId = "xcall.percpu.attached_poll_20us.single_wait";
constexpr const char* kSignalId = "xcall.percpu.attached_signal.single_wait";
constexpr const char* kProxyId = "xcall.percpu.attached_proxy.single_wait";

/// The thread that hosts CPU 0 of a 1-CPU domain, pinned to target_core():
/// it attaches with `how`, announces itself, runs `work(stop)` (the
/// application's code, which returns once `stop` reads true or, for the
/// proxy host, once its read() returns) and detaches when work returns.
class host_thread {
 public:
  template <class Work>
  host_thread(domain& d, const attach_options& how, Work work) {
    thread_ = std::thread([this, &d, how, work = std::move(work)]() mutable {
      pin_self(target_core());
      try {
        cpu_attachment cpu = d.attach(0, how);
        // release: CPU 0 is online; pairs with the acquire load below.
        state_.store(kAttached, std::memory_order_release);
        work(stop_);
      } catch (const std::exception& e) {  // attach's std::system_error
        error_ = e.what();
        // release: publishes error_; pairs with the acquire load below.
        state_.store(kFailed, std::memory_order_release);
      }
    });
    // acquire: pairs with the host's release stores of state_.
    while (state_.load(std::memory_order_acquire) == kStarting) std::this_thread::yield();
  }
  ~host_thread() { stop_and_join(); }
  host_thread(const host_thread&) = delete;
  host_thread& operator=(const host_thread&) = delete;

  bool attached() const noexcept { return state_.load(std::memory_order_acquire) == kAttached; }
  const std::string& error() const noexcept { return error_; }

  /// Tells work() to stop and waits until the host has detached.
  void stop_and_join() {
    // relaxed: a stop flag; the join orders everything the host wrote.
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }

 private:
  enum : unsigned { kStarting, kAttached, kFailed };
  std::atomic<unsigned> state_{kStarting};
  std::atomic<bool> stop_{false};
  std::string error_;
  std::thread thread_;
};

/// CPU 0's counters (the domain has one CPU).
cpu_stats cpu0(const domain& d) { return d.stats().at(0); }

double per_call(std::uint64_t after, std::uint64_t before, std::size_t calls) {
  return calls ? static_cast<double>(after - before) / static_cast<double>(calls) : 0.0;
}

/// "; 3% of calls outlasted the caller's 50 µs spin": how many waits may
/// have slept (and then needed a futex wake to return).
std::string past_spin_note(const std::vector<double>& samples, const domain_options& o) {
  const double spin_ns = static_cast<double>(o.idle_spin.count());
  const auto n =
      std::count_if(samples.begin(), samples.end(), [spin_ns](double ns) { return ns > spin_ns; });
  return fmt::format("; {:.1f}% of calls outlasted the caller's {} spin",
                     samples.empty() ? 0.0 : 100.0 * static_cast<double>(n) / samples.size(),
                     fmt_ns(spin_ns));
}

domain_options attached_options() {
  return bench_options(engine::percpu, idle_mode::adaptive, 1, /*start_threads=*/false,
                       /*pin=*/false);
}

void report(results& out, measurement m) {
  if (!m.available) {
    progress("attached", m.label + ": " + m.note);
  } else {
    progress("attached", fmt::format("{:<46} p50 {:<9} p99 {:<9} p99.9 {}", m.label,
                                     fmt_ns(m.lat.p50), fmt_ns(m.lat.p99), fmt_ns(m.lat.p999)));
  }
  out.add(std::move(m));
}

/// The series every row takes: timed waiting single calls to CPU 0.
struct series_result {
  std::vector<double> samples;
  std::size_t calls = 0;  ///< warm-up included
  std::size_t errors = 0;
};

series_result call_series(domain& d, cpu_counters& runs, const series_options& opt) {
  series_result r;
  r.samples = sample_latency(opt, [&] {
    if (d.call_function_single(0, &cpu_counters::bump, &runs, true)) ++r.errors;
  });
  r.calls = opt.warmup + r.samples.size();
  return r;
}

// ---- poll delivery: a host that polls all the time, or every 20 µs ------------------

/// attached_poll, or attached_poll_20us with `period_ns` > 0. `baseline`: the
/// attached_poll figure of this run, for attached_poll_20us.
measurement polling_host(const config& cfg, results& out, double period_ns,
                         const measurement* baseline) {
  const bool every = period_ns > 0;
  const char* id = every ? kPollEveryId : kPollId;
  const std::string label =
      every ? fmt::format("percpu attached, poll delivery, host polls every {:.0f} µs",
                          period_ns / 1e3)
            : std::string("percpu attached, poll delivery, host polls");
  // The cache-line floor first, before the host exists (a polling host
  // would compete for the cores); attached_poll_20us compares with the
  // polling host instead.
  double floor_ns = 0;
  if (!every) {
    std::vector<double> floor =
        cacheline_samples(cfg, std::min<std::size_t>(cfg.latency_samples, 5000));
    floor_ns = summarize(floor).p50;
  }
  const domain_options o = attached_options();
  domain d(o);
  cpu_counters runs(1);
  host_thread host(d, {}, [period_ns](const std::atomic<bool>& stop) {
    // relaxed: a stop flag (see the file comment).
    while (!stop.load(std::memory_order_relaxed)) {
      if (period_ns > 0) spin_for_ns(period_ns);  // a slice of the application's work
      xcall::poll();                              // its safe point
    }
  });
  if (!host.attached()) {
    return unavailable(id, label, figure_kind::latency, "attach failed: " + host.error());
  }
  pin_self(caller_core());
  series_options opt = series(cfg);
  opt.gap_spread_ns = period_ns;  // a random phase of the host's period
  const cpu_stats s0 = cpu0(d);
  series_result r = call_series(d, runs, opt);
  const cpu_stats s1 = cpu0(d);
  host.stop_and_join();
  check_runs(out, id, runs.total(), r.calls - r.errors);
  std::string note = every ? fmt::format(
                                 "outside caller → attached CPU 0, whose host works in {0:.0f} µs "
                                 "slices and calls xcall::poll() between them; a random "
                                 "0–{0:.0f} µs gap before each call",
                                 period_ns / 1e3)
                           : std::string(
                                 "outside caller → attached CPU 0, whose host loops on "
                                 "xcall::poll()");
  note +=
      fmt::format("; {:.2f} signals per call", per_call(s1.signals_sent, s0.signals_sent, r.calls));
  if (every) note += past_spin_note(r.samples, o);
  measurement fig = latency_figure(id, label, std::move(r.samples), note);
  if (every) {
    if (baseline != nullptr && baseline->available) {
      fig.paired_floor_ns = baseline->lat.p50;
      fig.paired_floor_id = kPollId;
    }
  } else {
    fig.paired_floor_ns = floor_ns;  // paired_floor_id: floor.cacheline
  }
  return fig;
}

// ---- signal delivery: a busy host that never polls ---------------------------------

measurement signal_busy_host(const config& cfg, results& out) {
  const char* label = "percpu attached, signal delivery, host busy";
  // The floor first, before the host exists: both spin on the same cores.
  std::vector<double> floor = tgkill_samples(cfg, std::min<std::size_t>(cfg.latency_samples, 5000));
  const summary floor_sum = floor.empty() ? summary{} : summarize(floor);
  const domain_options o = attached_options();
  domain d(o);
  cpu_counters runs(1);
  host_thread host(d, {.delivery = delivery_mode::signal}, [](const std::atomic<bool>& stop) {
    // The application's computation: no poll(), no xcall call, no system
    // call; the same loop as the tgkill floor's partner. relaxed: a stop flag.
    while (!stop.load(std::memory_order_relaxed)) cpu_relax();
  });
  if (!host.attached()) {
    return unavailable(kSignalId, label, figure_kind::latency, "attach failed: " + host.error());
  }
  pin_self(caller_core());
  const cpu_stats s0 = cpu0(d);
  series_result r = call_series(d, runs, series(cfg));
  const cpu_stats s1 = cpu0(d);
  host.stop_and_join();
  // The host never polls, so every call that ran, ran in the handler. Not
  // one handler run per call, though: a call pushed while the handler is
  // still draining the previous one rides on that run without a signal.
  check_runs(out, kSignalId, runs.total(), r.calls - r.errors);
  std::string note = fmt::format(
      "outside caller → attached CPU 0, whose host spins on a relaxed flag and never polls; per "
      "call {:.2f} signals sent ({:.3f} re-sent), {:.2f} handler runs, {:.2f} deferred",
      per_call(s1.signals_sent, s0.signals_sent, r.calls),
      per_call(s1.signals_resent, s0.signals_resent, r.calls),
      per_call(s1.signal_runs, s0.signal_runs, r.calls),
      per_call(s1.signals_deferred, s0.signals_deferred, r.calls));
  note += past_spin_note(r.samples, o);
  // The floor's tail too: on a loaded host both tails are the scheduler's.
  if (!floor_sum.empty()) {
    note += fmt::format("; paired tgkill floor p50 {}, p99 {}", fmt_ns(floor_sum.p50),
                        fmt_ns(floor_sum.p99));
  }
  measurement fig = latency_figure(kSignalId, label, std::move(r.samples), note);
  fig.paired_floor_ns = floor_sum.p50;
  fig.paired_floor_id = "floor.tgkill";
  return fig;
}

// ---- proxy: a host parked in a blocking read() -------------------------------------

measurement proxy_parked_host(const config& cfg, results& out, const measurement* baseline) {
  const char* label = "percpu attached, proxy, host parked in read()";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return unavailable(kProxyId, label, figure_kind::latency, "pipe2 failed");
  }
  const domain_options o = attached_options();
  domain d(o);
  cpu_counters runs(1);
  std::atomic<bool> parked{false};
  std::atomic<bool> read_done{false};
  ssize_t read_result = 0;  // written by the host, read after the join
  host_thread host(d, {.delivery = delivery_mode::poll, .proxy = true},
                   [&, rfd = fds[0]](const std::atomic<bool>&) {
                     {
                       xcall::blocking_region region;  // read() touches none of CPU 0's state
                       // release: pairs with the caller's acquire load.
                       parked.store(true, std::memory_order_release);
                       char byte = 0;
                       read_result = read(rfd, &byte, 1);  // until the bench writes its byte
                       // release: pairs with the caller's acquire load.
                       read_done.store(true, std::memory_order_release);
                     }  // leaving waits for a proxy still running CPU 0's calls
                   });
  measurement fig;
  if (!host.attached()) {
    fig = unavailable(kProxyId, label, figure_kind::latency, "attach failed: " + host.error());
  } else {
    // acquire: pairs with the host's release store.
    while (!parked.load(std::memory_order_acquire)) std::this_thread::yield();
    pin_self(caller_core());
    const cpu_stats s0 = cpu0(d);
    series_result r = call_series(d, runs, series(cfg));
    const cpu_stats s1 = cpu0(d);
    // acquire: pairs with the host's release store.
    const bool stayed_blocked = !read_done.load(std::memory_order_acquire);
    const char byte = 1;
    const bool written = write(fds[1], &byte, 1) == 1;
    close(fds[1]);  // EOF: the host's read() returns even if the write failed
    fds[1] = -1;
    host.stop_and_join();
    check_runs(out, kProxyId, runs.total(), r.calls - r.errors);
    const std::uint64_t proxied = s1.proxy_runs - s0.proxy_runs;
    if (!stayed_blocked || !written || read_result != 1) {
      out.warnings.push_back(
          fmt::format("{}: the host did not stay blocked in read() until the "
                      "bench released it (read returned {})",
                      kProxyId, read_result));
    }
    if (proxied != r.calls) {
      out.warnings.push_back(fmt::format("{}: {} proxy runs for {} calls to a parked host",
                                         kProxyId, proxied, r.calls));
    }
    std::string note = fmt::format(
        "outside caller → attached CPU 0 (proxy), whose host blocks in read() on a pipe inside "
        "a blocking_region{}; per call {:.2f} proxy runs by the caller, {:.2f} signals",
        stayed_blocked ? " for the whole series" : " (it left early!)",
        per_call(s1.proxy_runs, s0.proxy_runs, r.calls),
        per_call(s1.signals_sent, s0.signals_sent, r.calls));
    fig = latency_figure(kProxyId, label, std::move(r.samples), note);
    if (baseline != nullptr && baseline->available) {
      fig.paired_floor_ns = baseline->lat.p50;
      fig.paired_floor_id = kPollId;
    }
  }
  close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  return fig;
}

}  // namespace

void run_attached(const config& cfg, results& out) {
  // Hosts pin themselves within our affinity: start unpinned, as the other
  // sections do.
  unpin_self();
  const bool want_every = cfg.selected(kPollEveryId);
  const bool want_proxy = cfg.selected(kProxyId);
  // The polling host is the baseline of the proxy and 20 µs rows: measure it
  // whenever one of them is wanted, just before them.
  if (cfg.selected(kPollId) || want_every || want_proxy) {
    report(out, polling_host(cfg, out, 0, nullptr));
    unpin_self();
  }
  if (want_proxy) {
    report(out, proxy_parked_host(cfg, out, out.find(kPollId)));
    unpin_self();
  }
  if (want_every) {
    report(out, polling_host(cfg, out, kPollEveryNs, out.find(kPollId)));
    unpin_self();
  }
  if (cfg.selected(kSignalId)) {
    report(out, signal_busy_host(cfg, out));
    unpin_self();
  }
}

}  // namespace xcall::bench
