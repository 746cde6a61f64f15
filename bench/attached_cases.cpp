// attached_cases.cpp — calls to a CPU hosted by an application thread
// (domain_options::start_threads = false): what each way of reaching an
// attached host (docs/attached-threads.md) costs a caller that waits.
//
// Every row is call_function_single(0, f, info, wait = true) from an outside
// thread on caller_core() to CPU 0 of a 1-CPU domain, whose host thread is
// pinned to target_core() and runs "application code" of five kinds:
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
//  - attached_fd: fd delivery, the host is an event loop: an xcall::loop_wait
//    around epoll_wait(-1) on a set holding its doorbell fd, and nothing
//    else. A 20 µs gap before each call lets it get back into epoll_wait, so
//    that every call finds it blocked there (the note counts the calls whose
//    loop_wait found work already queued). Paired with an eventfd ping-pong
//    measured just before on the same cores, whose two sides both block in
//    epoll_wait (floors.cpp), with the same gap; and beside libuv's
//    uv_async_send round trip to a loop blocked the same way, measured just
//    after (uv_peer.cpp), whose caller waits as xcall's does.
//
// The fd host also gives the senders' system calls (burst_row): bursts of
// kBurst no-wait calls (call_function_single_async, one descriptor each)
// from one thread, to the host blocked in its loop and to a host running its
// own code (spinning, no loop_wait, xcall::poll() once the burst is in). The
// doorbell writes are the library's count (doorbell_fd_writes), with the
// futex wakes (doorbells_rung) beside them; the sending thread's write(2)s
// are the kernel's count (sys.hpp), and libuv's bursts are counted the same
// way for comparison.
//
// Only the percpu engine: single calls take the same path in both engines
// (domain_impl::call_single), and the signal and proxy machinery is shared.
// The domain idles adaptively (the default) with the default idle_spin of
// 50 µs: a waiting caller spins that long before it sleeps, which covers a
// signal round trip here; each note says how many calls outlasted the spin.
// Every row checks that each call ran exactly once, and its note gives the
// counters (xcall/stats.hpp) that show which path the calls really took:
// signals sent and handler runs for signal delivery, proxy runs for proxy,
// doorbell fd writes and futex wakes for fd delivery.
//
// Ordering: a host announces itself with a release store of `state_` that
// the caller's acquire load pairs with (it is attached, hence CPU 0 is
// online, and error_ is written, before the store); `stop_` is a relaxed
// stop flag (it publishes nothing; join orders what the host wrote). The
// proxy host's `parked` and `read_done` flags are release stores paired with
// the caller's acquire loads. The event-loop host's counters are
// single-writer release stores paired with the bench's acquire loads, and so
// is the busy host's `go` (a release store after the burst's pushes, so that
// the poll() that follows finds them all); `quit` is a relaxed stop flag like
// `stop_` (the call that follows it wakes the host). Everything else is
// xcall's own ordering, which is what is measured.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "sys.hpp"
#include "xcall_support.hpp"

namespace xcall::bench {
namespace {

constexpr double kPollEveryNs = 20e3;  ///< attached_poll_20us: the host's poll period

constexpr const char* kPollId = "xcall.percpu.attached_poll.single_wait";
constexpr const char* kPollEveryId = "xcall.percpu.attached_poll_20us.single_wait";
constexpr const char* kSignalId = "xcall.percpu.attached_signal.single_wait";
constexpr const char* kProxyId = "xcall.percpu.attached_proxy.single_wait";
constexpr const char* kFdId = "xcall.percpu.attached_fd.single_wait";
constexpr const char* kFdBlockedBurstId = "xcall.percpu.attached_fd.burst_blocked";
constexpr const char* kFdRunningBurstId = "xcall.percpu.attached_fd.burst_running";

constexpr double kFdGapNs = 20e3;  ///< attached_fd: before each call, to let the host block again
constexpr unsigned kBurst = 16;    ///< no-wait calls per burst

/// The thread that hosts CPU 0 of a 1-CPU domain, pinned to target_core():
/// it attaches with `how`, announces itself, runs `work(stop)` or
/// `work(stop, attachment)` (the application's code, which returns once
/// `stop` reads true or, for the proxy host, once its read() returns, or for
/// the event-loop host once its own quit flag does) and detaches when work
/// returns.
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
        if constexpr (std::is_invocable_v<Work&, const std::atomic<bool>&, const cpu_attachment&>) {
          work(stop_, cpu);
        } else {
          work(stop_);
        }
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

// ---- fd delivery: a host blocked in its event loop ---------------------------------

void noop(void*) noexcept {}

/// An event-loop host (attach with delivery_mode::fd): loop_wait around
/// epoll_wait(-1) on a set that holds the doorbell fd, until `quit` (which a
/// call must follow, to wake it: stop()).
struct event_loop_host {
  std::atomic<bool> quit{false};
  std::atomic<bool> failed{false};  ///< epoll set-up failed: the host returned
  /// loop_waits entered with may_block(): announcements "about to block".
  std::atomic<std::uint64_t> blocked{0};
  /// loop_waits that found calls already queued (and did not block).
  std::atomic<std::uint64_t> not_blocking{0};
  /// loop_waits begun, counted before each one announces: a sender that
  /// finds the announcement finds this count too (on x86; elsewhere it may
  /// lag, and a split burst would show as excess writes, never hide them).
  std::atomic<std::uint64_t> entering{0};

  void run(int doorbell_fd) {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = doorbell_fd;
    if (ep < 0 || doorbell_fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, doorbell_fd, &ev) != 0) {
      // release: pairs with the bench's acquire load.
      failed.store(true, std::memory_order_release);
      if (ep >= 0) close(ep);
      return;
    }
    // relaxed: a stop flag; the call that follows it wakes the loop.
    while (!quit.load(std::memory_order_relaxed)) {
      entering.store(entering.load(std::memory_order_relaxed) + 1, std::memory_order_release);
      xcall::loop_wait w;
      // Single writer: a load and a release store; pairs with the bench's
      // acquire loads (the count says the host announced).
      if (w.may_block()) {
        blocked.store(blocked.load(std::memory_order_relaxed) + 1, std::memory_order_release);
      } else {
        not_blocking.store(not_blocking.load(std::memory_order_relaxed) + 1,
                           std::memory_order_release);
      }
      epoll_event out{};
      int n;
      do {
        n = epoll_wait(ep, &out, 1, w.may_block() ? -1 : 0);
      } while (n < 0 && errno == EINTR);
      // The doorbell's own event needs no handling: the loop_wait's end
      // reads the descriptor and runs what is queued.
    }
    close(ep);
  }

  /// Waits until the host announced once more than `seen` (or failed).
  bool await_blocked(std::uint64_t seen) const {
    // acquire: pairs with the host's release stores.
    spin_then_yield([&] {
      return blocked.load(std::memory_order_acquire) > seen ||
             failed.load(std::memory_order_acquire);
    });
    return !failed.load(std::memory_order_acquire);
  }

  /// Ends the host: the quit flag, then a call to wake it; then the join.
  void stop(domain& d, host_thread& host) {
    quit.store(true, std::memory_order_relaxed);
    (void)d.call_function_single(0, &noop, nullptr, true);
    host.stop_and_join();
  }
};

constexpr attach_options kFdDelivery{.delivery = delivery_mode::fd, .proxy = false};

measurement fd_blocked_host(const config& cfg, results& out) {
  const domain_options o = attached_options();
  const std::string label = fmt::format(
      "percpu attached, fd delivery, host blocked in epoll_wait; caller spins ≤ {}, then sleeps",
      fmt_ns(static_cast<double>(o.idle_spin.count())));
  // The floor first, before the host exists, with the same gap.
  std::vector<double> floor =
      eventfd_epoll_samples(cfg, std::min<std::size_t>(cfg.latency_samples, 5000), kFdGapNs);
  const summary floor_sum = floor.empty() ? summary{} : summarize(floor);
  unpin_self();
  domain d(o);
  cpu_counters runs(1);
  event_loop_host loop;
  host_thread host(d, kFdDelivery, [&loop](const std::atomic<bool>&, const cpu_attachment& cpu) {
    loop.run(cpu.doorbell_fd());
  });
  if (!host.attached()) {
    return unavailable(kFdId, label, figure_kind::latency, "attach failed: " + host.error());
  }
  if (!loop.await_blocked(0)) {
    host.stop_and_join();
    return unavailable(kFdId, label, figure_kind::latency, "epoll set-up failed");
  }
  pin_self(caller_core());
  const std::uint64_t skipped0 = loop.not_blocking.load(std::memory_order_acquire);
  const cpu_stats s0 = cpu0(d);
  const std::int64_t w0 = thread_write_syscalls();
  series_result r = call_series(d, runs, series(cfg, kFdGapNs));
  const std::int64_t w1 = thread_write_syscalls();
  const cpu_stats s1 = cpu0(d);
  const std::uint64_t skipped = loop.not_blocking.load(std::memory_order_acquire) - skipped0;
  loop.stop(d, host);
  check_runs(out, kFdId, runs.total(), r.calls - r.errors);
  std::string note = fmt::format(
      "outside caller → attached CPU 0 (fd delivery), whose host loops on xcall::loop_wait + "
      "epoll_wait(-1) over its doorbell fd and nothing else; a {} gap before each call; per "
      "call {:.2f} doorbell fd writes, {:.2f} futex wakes",
      fmt_ns(kFdGapNs), per_call(s1.doorbell_fd_writes, s0.doorbell_fd_writes, r.calls),
      per_call(s1.doorbells_rung, s0.doorbells_rung, r.calls));
  if (w0 >= 0 && w1 >= w0) {
    note += fmt::format(
        ", {:.2f} write(2) by the caller (the kernel's count)",
        per_call(static_cast<std::uint64_t>(w1), static_cast<std::uint64_t>(w0), r.calls));
  }
  note +=
      fmt::format("; {} of {} calls found the host's loop_wait not yet blocking", skipped, r.calls);
  note += past_spin_note(r.samples, o);
  if (!floor_sum.empty()) {
    note += fmt::format("; paired eventfd (epoll) floor p50 {}, p99 {}", fmt_ns(floor_sum.p50),
                        fmt_ns(floor_sum.p99));
  }
  measurement fig = latency_figure(kFdId, label, std::move(r.samples), note);
  fig.paired_floor_ns = floor_sum.p50;
  fig.paired_floor_id = "floor.eventfd_epoll";
  return fig;
}

/// kBurst descriptors that bump `runs`, sent as one burst.
class burst_sender {
 public:
  explicit burst_sender(cpu_counters& runs) {
    for (unsigned i = 0; i < kBurst; ++i) {
      csds_.push_back(std::make_unique<call_single_data>(&cpu_counters::bump, &runs));
    }
  }
  /// Queues every descriptor on CPU 0; returns how many were refused.
  unsigned send(domain& d) {
    unsigned errors = 0;
    for (auto& c : csds_) {
      if (d.call_function_single_async(0, *c)) ++errors;
    }
    return errors;
  }
  /// Waits until every descriptor has left flight (the host took them all).
  void await_taken() const {
    for (const auto& c : csds_) spin_then_yield([&c] { return !c->in_flight(); });
  }

 private:
  std::vector<std::unique_ptr<call_single_data>> csds_;
};

unsigned burst_count(const config& cfg) {
  return static_cast<unsigned>(std::max<std::size_t>(cfg.latency_samples / 10, 50));
}

burst_row fd_burst_row(const char* id, std::string label, bool blocked) {
  burst_row row;
  row.id = id;
  row.label = std::move(label);
  row.host_blocked = blocked;
  row.calls_per_burst = kBurst;
  return row;
}

/// Fills the counts of a burst row from two snapshots.
void count_bursts(burst_row& row, const cpu_stats& s0, const cpu_stats& s1, std::int64_t w0,
                  std::int64_t w1) {
  row.doorbell_writes = static_cast<std::int64_t>(s1.doorbell_fd_writes - s0.doorbell_fd_writes);
  row.futex_wakes = static_cast<std::int64_t>(s1.doorbells_rung - s0.doorbells_rung);
  row.sender_writes = w0 >= 0 && w1 >= w0 ? w1 - w0 : -1;
}

/// Bursts to a host blocked in epoll_wait: each burst waits until the host
/// has announced again and for kFdGapNs more (into epoll_wait), then sends.
burst_row fd_bursts_blocked(const config& cfg, results& out) {
  burst_row row =
      fd_burst_row(kFdBlockedBurstId,
                   "xcall fd delivery → host blocked in epoll_wait (inside a loop_wait)", true);
  domain d(attached_options());
  cpu_counters runs(1);
  event_loop_host loop;
  host_thread host(d, kFdDelivery, [&loop](const std::atomic<bool>&, const cpu_attachment& cpu) {
    loop.run(cpu.doorbell_fd());
  });
  if (!host.attached() || !loop.await_blocked(0)) {
    row.available = false;
    row.note = host.attached() ? "epoll set-up failed" : "attach failed: " + host.error();
    if (host.attached()) host.stop_and_join();
    return row;
  }
  pin_self(caller_core());
  burst_sender sender(runs);
  const unsigned bursts = burst_count(cfg);
  unsigned errors = 0;
  // acquire: pairs with the host's release stores.
  std::uint64_t announced = loop.blocked.load(std::memory_order_acquire);
  const std::uint64_t skipped0 = loop.not_blocking.load(std::memory_order_acquire);
  const cpu_stats first = cpu0(d);
  const std::int64_t w0 = thread_write_syscalls();
  for (unsigned b = 0; b < bursts; ++b) {
    // The host announced after it ran the last burst (a loop_wait that may
    // block); then into epoll_wait.
    if (b > 0 && !loop.await_blocked(announced)) break;
    announced = loop.blocked.load(std::memory_order_acquire);
    spin_for_ns(kFdGapNs);
    const std::uint64_t before = cpu0(d).doorbell_fd_writes;
    // acquire: pairs with the host's release stores.
    const std::uint64_t entered = loop.entering.load(std::memory_order_acquire);
    errors += sender.send(d);
    // loop_waits the host began while the burst was being queued: each may
    // have cost one more write.
    const std::uint64_t rewaits = loop.entering.load(std::memory_order_acquire) - entered;
    sender.await_taken();
    const std::uint64_t writes = cpu0(d).doorbell_fd_writes - before;
    if (rewaits == 0) {
      row.max_writes_in_a_burst = std::max(row.max_writes_in_a_burst, writes);
    } else {
      ++row.split_bursts;
    }
    if (writes > 1 + rewaits) row.excess_writes += writes - 1 - rewaits;
    ++row.bursts;
  }
  const std::int64_t w1 = thread_write_syscalls();
  const cpu_stats last = cpu0(d);
  const std::uint64_t skipped = loop.not_blocking.load(std::memory_order_acquire) - skipped0;
  loop.stop(d, host);
  count_bursts(row, first, last, w0, w1);
  check_runs(out, kFdBlockedBurstId, runs.total(),
             static_cast<std::uint64_t>(row.bursts) * kBurst - errors);
  row.note = fmt::format(
      "{} bursts of {} call_function_single_async (one descriptor each) from one outside thread; "
      "before each, the host had announced a new loop_wait and {} passed; {} bursts split (the "
      "host ran part of the burst and waited again before the rest was queued); {} loop_waits "
      "found calls already queued",
      row.bursts, kBurst, fmt_ns(kFdGapNs), row.split_bursts, skipped);
  return row;
}

/// Bursts to a host running its own code: it spins (no loop_wait, no
/// poll()) until the burst is in, then calls xcall::poll() once.
burst_row fd_bursts_running(const config& cfg, results& out) {
  burst_row row = fd_burst_row(
      kFdRunningBurstId, "xcall fd delivery → host running its own code (no loop_wait)", false);
  domain d(attached_options());
  cpu_counters runs(1);
  std::atomic<std::uint64_t> go{0};  // bursts sent; the host polls after each
  host_thread host(d, kFdDelivery, [&go](const std::atomic<bool>& stop) {
    std::uint64_t done = 0;
    // relaxed: a stop flag.
    while (!stop.load(std::memory_order_relaxed)) {
      // acquire: pairs with the bench's release store of go, after the
      // burst's pushes: poll() below finds them all.
      const std::uint64_t now = go.load(std::memory_order_acquire);
      if (now == done) {
        cpu_relax();  // the application's computation
        continue;
      }
      done = now;
      xcall::poll();  // its safe point, once the burst is in
    }
  });
  if (!host.attached()) {
    row.available = false;
    row.note = "attach failed: " + host.error();
    return row;
  }
  pin_self(caller_core());
  burst_sender sender(runs);
  const unsigned bursts = burst_count(cfg);
  unsigned errors = 0;
  const cpu_stats first = cpu0(d);
  const std::int64_t w0 = thread_write_syscalls();
  for (unsigned b = 0; b < bursts; ++b) {
    const std::uint64_t before = cpu0(d).doorbell_fd_writes;
    errors += sender.send(d);
    // release: pairs with the host's acquire load.
    go.store(b + 1, std::memory_order_release);
    sender.await_taken();
    const std::uint64_t writes = cpu0(d).doorbell_fd_writes - before;
    row.max_writes_in_a_burst = std::max(row.max_writes_in_a_burst, writes);
    row.excess_writes += writes;  // a running host needs none
    ++row.bursts;
  }
  const std::int64_t w1 = thread_write_syscalls();
  const cpu_stats last = cpu0(d);
  host.stop_and_join();
  count_bursts(row, first, last, w0, w1);
  check_runs(out, kFdRunningBurstId, runs.total(),
             static_cast<std::uint64_t>(row.bursts) * kBurst - errors);
  row.note = fmt::format(
      "{} bursts of {} call_function_single_async from one outside thread to a host that spins on "
      "a relaxed counter (its own code: no loop_wait, no system call) and calls xcall::poll() "
      "once the burst is in; {:.2f} signals per burst",
      row.bursts, kBurst,
      row.bursts ? static_cast<double>(last.signals_sent - first.signals_sent) / row.bursts : 0.0);
  return row;
}

void report_bursts(results& out, burst_row row) {
  if (!row.available) {
    progress("attached", row.label + ": " + row.note);
  } else {
    const auto per_burst = [&row](std::int64_t n) {
      return n < 0 || row.bursts == 0 ? std::string("–")
                                      : fmt::format("{:.2f}", static_cast<double>(n) / row.bursts);
    };
    progress("attached",
             fmt::format("{:<66} per burst of {}: {} doorbell writes (max {}, {} split), {} "
                         "futex wakes, {} write(2)",
                         row.label, row.calls_per_burst, per_burst(row.doorbell_writes),
                         row.max_writes_in_a_burst, row.split_bursts, per_burst(row.futex_wakes),
                         per_burst(row.sender_writes)));
  }
  out.bursts.push_back(std::move(row));
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
  if (cfg.selected(kFdId)) {
    report(out, fd_blocked_host(cfg, out));
    unpin_self();
    // libuv's doorbell, measured just after, the same way.
    report(out, libuv_async_roundtrip(
                    cfg, static_cast<double>(attached_options().idle_spin.count()), kFdGapNs));
    unpin_self();
  }
  const bool want_blocked = cfg.selected(kFdBlockedBurstId);
  const bool want_running = cfg.selected(kFdRunningBurstId);
  if (want_blocked) {
    report_bursts(out, fd_bursts_blocked(cfg, out));
    unpin_self();
  }
  if (want_running) {
    report_bursts(out, fd_bursts_running(cfg, out));
    unpin_self();
  }
  if (want_blocked || want_running) {
    for (burst_row& row : libuv_bursts(burst_count(cfg), kBurst, kFdGapNs)) {
      if (row.host_blocked ? want_blocked : want_running) report_bursts(out, std::move(row));
    }
    unpin_self();
  }
}

}  // namespace xcall::bench
