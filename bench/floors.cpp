// floors.cpp — the floors every xcall figure is compared with, measured in
// the same run: what a round trip between two cores costs when nothing but
// one cache line moves, when the far side sleeps in a futex or an eventfd
// (read(), or epoll_wait as an event loop does), when it is interrupted by a signal, and what the
// kernel pays to run a function on every CPU of the process (membarrier, which is
// smp_call_function_many inside the kernel).
//
// Every two-party floor puts the answering thread on target_core() and the
// timing thread on caller_core() (affinity.hpp), as the xcall cases do.
// cacheline_samples(), tgkill_samples() and eventfd_epoll_samples() are also
// measured again just before the xcall series they are paired with
// (results.hpp).
//
// Ordering: each ping-pong publishes its "ping" with a release store and
// reads the "pong" with an acquire load; the two sides' stores and loads pair
// one to one. The futex/eventfd/signal paths add the kernel's own ordering.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <xcall_test_support/futex.hpp>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "sys.hpp"

namespace xcall::bench {
namespace {

using xcall::test_support::futex_wait;
using xcall::test_support::futex_wake;

struct alignas(64) line {
  std::atomic<std::uint32_t> v{0};
};

// ---- cache-line ping-pong: the physical floor of a round trip --------------

}  // namespace

std::vector<double> cacheline_samples(const config& cfg, std::size_t samples) {
  series_options opt = series(cfg);
  opt.samples = samples;
  line l;  // one line, moved to the partner and back per round trip
  std::thread partner([&l] {
    pin_self(target_core());
    for (;;) {
      std::uint32_t x;
      // acquire: pairs with the caller's release store of 1 (or 2: exit).
      while ((x = l.v.load(std::memory_order_acquire)) == 0) cpu_relax();
      if (x == 2) return;
      // release: pairs with the caller's acquire load; the pong.
      l.v.store(0, std::memory_order_release);
    }
  });
  pin_self(caller_core());
  auto ns = sample_latency(opt, [&l] {
    // release: the ping; pairs with the partner's acquire load.
    l.v.store(1, std::memory_order_release);
    // acquire: pairs with the partner's release store of 0.
    while (l.v.load(std::memory_order_acquire) != 0) cpu_relax();
  });
  l.v.store(2, std::memory_order_release);
  partner.join();
  return ns;
}

namespace {

measurement cacheline_pingpong(const config& cfg) {
  return latency_figure("floor.cacheline", "cache-line ping-pong (2 threads spinning)",
                        cacheline_samples(cfg, cfg.latency_samples),
                        "one line, written by each side in turn");
}

// ---- futex wait/wake ping-pong ---------------------------------------------

measurement futex_pingpong(const config& cfg) {
  line ping, pong;
  std::thread partner([&] {
    pin_self(target_core());
    for (;;) {
      std::uint32_t x;
      // acquire: pairs with the caller's release store to ping.
      while ((x = ping.v.load(std::memory_order_acquire)) == 0) futex_wait(&ping.v, 0);
      if (x == 2) return;
      // relaxed: only this thread reads ping as non-zero again after the
      // caller's next store, which the futex and the pong order.
      ping.v.store(0, std::memory_order_relaxed);
      // release: pairs with the caller's acquire load of pong.
      pong.v.store(1, std::memory_order_release);
      futex_wake(&pong.v);
    }
  });
  pin_self(caller_core());
  auto samples = sample_latency(series(cfg), [&] {
    ping.v.store(1, std::memory_order_release);  // pairs with the partner's acquire
    futex_wake(&ping.v);
    while (pong.v.load(std::memory_order_acquire) == 0) futex_wait(&pong.v, 0);
    pong.v.store(0, std::memory_order_relaxed);  // only the partner sets it, after the next ping
  });
  ping.v.store(2, std::memory_order_release);
  futex_wake(&ping.v);
  partner.join();
  return latency_figure("floor.futex", "futex wait/wake ping-pong (both sides sleep)",
                        std::move(samples), "FUTEX_WAKE each way; neither side spins");
}

// ---- eventfd ping-pong (Seastar's doorbell) ---------------------------------

measurement eventfd_pingpong(const config& cfg) {
  const int to_partner = eventfd(0, EFD_CLOEXEC);
  const int to_caller = eventfd(0, EFD_CLOEXEC);
  if (to_partner < 0 || to_caller < 0) {
    return unavailable("floor.eventfd", "eventfd ping-pong", figure_kind::latency,
                       std::string("eventfd: ") + std::strerror(errno));
  }
  std::thread partner([&] {
    pin_self(target_core());
    for (;;) {
      std::uint64_t v = 0;
      if (read(to_partner, &v, sizeof v) != sizeof v || v >= 2) return;
      const std::uint64_t one = 1;
      if (write(to_caller, &one, sizeof one) != sizeof one) return;
    }
  });
  pin_self(caller_core());
  auto samples = sample_latency(series(cfg), [&] {
    std::uint64_t v = 1;
    if (write(to_partner, &v, sizeof v) != sizeof v) return;
    if (read(to_caller, &v, sizeof v) != sizeof v) return;
  });
  const std::uint64_t quit = 2;
  (void)!write(to_partner, &quit, sizeof quit);
  partner.join();
  close(to_partner);
  close(to_caller);
  return latency_figure("floor.eventfd", "eventfd ping-pong (both sides block in read)",
                        std::move(samples), "a write() and a blocking read() each way");
}

// ---- eventfd ping-pong through epoll (an event loop's doorbell) ------------

/// An eventfd (non-blocking, as event loops use it) in an epoll set of its
/// own: block in wait() until it is readable, then read it.
class epoll_doorbell {
 public:
  epoll_doorbell()
      : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), ep_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0 || ep_ < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd_;
    ok_ = epoll_ctl(ep_, EPOLL_CTL_ADD, fd_, &ev) == 0;
  }
  ~epoll_doorbell() {
    if (fd_ >= 0) close(fd_);
    if (ep_ >= 0) close(ep_);
  }
  epoll_doorbell(const epoll_doorbell&) = delete;
  epoll_doorbell& operator=(const epoll_doorbell&) = delete;

  bool ok() const noexcept { return ok_; }
  bool ring(std::uint64_t v = 1) const noexcept { return write(fd_, &v, sizeof v) == sizeof v; }
  /// epoll_wait(-1), then the read: the value written (0 on error).
  std::uint64_t wait() const noexcept {
    for (;;) {
      epoll_event ev{};
      const int n = epoll_wait(ep_, &ev, 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1) return 0;
      std::uint64_t v = 0;
      if (read(fd_, &v, sizeof v) == sizeof v) return v;
      if (errno != EAGAIN && errno != EINTR) return 0;
    }
  }

 private:
  int fd_;
  int ep_;
  bool ok_ = false;
};

}  // namespace

std::vector<double> eventfd_epoll_samples(const config& cfg, std::size_t samples, double gap_ns) {
  epoll_doorbell to_partner, to_caller;
  if (!to_partner.ok() || !to_caller.ok()) return {};
  series_options opt = series(cfg, gap_ns);
  opt.samples = samples;
  std::thread partner([&] {
    pin_self(target_core());
    for (;;) {
      const std::uint64_t v = to_partner.wait();
      if (v == 0 || v >= 2 || !to_caller.ring()) return;
    }
  });
  pin_self(caller_core());
  auto ns = sample_latency(opt, [&] {
    if (to_partner.ring()) (void)to_caller.wait();
  });
  (void)to_partner.ring(2);
  partner.join();
  return ns;
}

namespace {

measurement eventfd_epoll_pingpong(const config& cfg) {
  std::vector<double> samples = eventfd_epoll_samples(cfg, cfg.latency_samples, 0);
  if (samples.empty()) {
    return unavailable("floor.eventfd_epoll", "eventfd ping-pong through epoll",
                       figure_kind::latency, std::string("eventfd/epoll: ") + std::strerror(errno));
  }
  return latency_figure("floor.eventfd_epoll",
                        "eventfd ping-pong (both sides block in epoll_wait, then read)",
                        std::move(samples),
                        "each side: a non-blocking eventfd in its own epoll set; write() the "
                        "other's, epoll_wait(-1), read() its own");
}

// ---- tgkill to a busy thread, handler acknowledges --------------------------

std::atomic<std::uint32_t> g_signal_ack{0};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "used from a signal handler");

extern "C" void ack_handler(int) {
  // release: pairs with the caller's acquire load of the ack.
  g_signal_ack.store(1, std::memory_order_release);
}

}  // namespace

std::vector<double> tgkill_samples(const config& cfg, std::size_t samples) {
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = ack_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR1, &sa, &old) != 0) return {};
  series_options opt = series(cfg);
  opt.samples = samples;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    pin_self(target_core());
    tid.store(this_tid(), std::memory_order_release);
    // Busy in user space: the signal must interrupt a running thread.
    while (!stop.load(std::memory_order_relaxed)) cpu_relax();
  });
  while (tid.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  pin_self(caller_core());
  const pid_t pid = getpid();
  const pid_t target = tid.load(std::memory_order_relaxed);
  auto ns = sample_latency(opt, [&] {
    g_signal_ack.store(0, std::memory_order_relaxed);  // only we reset it, before the signal
    tgkill(pid, target, SIGUSR1);
    while (g_signal_ack.load(std::memory_order_acquire) == 0) cpu_relax();
  });
  stop.store(true, std::memory_order_relaxed);
  partner.join();
  sigaction(SIGUSR1, &old, nullptr);
  return ns;
}

namespace {

measurement tgkill_busy(const config& cfg) {
  std::vector<double> samples = tgkill_samples(cfg, cfg.latency_samples);
  if (samples.empty()) {
    return unavailable("floor.tgkill", "tgkill to a busy thread", figure_kind::latency,
                       "sigaction failed");
  }
  return latency_figure("floor.tgkill", "tgkill to a busy thread, handler acknowledges",
                        std::move(samples), "SIGUSR1; the sender spins on the handler's flag");
}

// ---- membarrier(PRIVATE_EXPEDITED) -------------------------------------------

/// Function-call IPIs received so far by every host CPU but `except`: the
/// "CAL" row of /proc/interrupts (x86; 0 where the row does not exist).
std::uint64_t call_ipis_except(int except) {
  std::ifstream f("/proc/interrupts");
  std::string line;
  std::getline(f, line);  // header: CPU0 CPU1 ...
  std::vector<int> cpus;
  {
    std::istringstream h(line);
    std::string name;
    while (h >> name) cpus.push_back(std::atoi(name.c_str() + 3));
  }
  while (std::getline(f, line)) {
    std::istringstream row(line);
    std::string name;
    row >> name;
    if (name != "CAL:") continue;
    std::uint64_t sum = 0;
    for (int cpu : cpus) {
      std::uint64_t n = 0;
      if (!(row >> n)) break;
      if (cpu != except) sum += n;
    }
    return sum;
  }
  return 0;
}

measurement membarrier_expedited(const config& cfg, bool others_busy) {
  const char* id = others_busy ? "floor.membarrier.busy" : "floor.membarrier.idle";
  const char* label = others_busy ? "membarrier PRIVATE_EXPEDITED, other CPUs run our threads"
                                  : "membarrier PRIVATE_EXPEDITED, no other thread running";
  const int supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
    return unavailable(id, label, figure_kind::latency, "membarrier: not supported by this kernel");
  }
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
    return unavailable(id, label, figure_kind::latency,
                       std::string("membarrier register: ") + std::strerror(errno));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  if (others_busy) {
    for (int cpu : allowed_cpus()) {
      if (cpu == caller_core()) continue;
      busy.emplace_back([&stop, cpu] {
        pin_self(cpu);
        while (!stop.load(std::memory_order_relaxed)) cpu_relax();
      });
    }
  }
  pin_self(caller_core());
  spin_for_ns(2e6);  // let the busy threads get on their CPUs
  const std::uint64_t ipis0 = call_ipis_except(caller_core());
  auto samples = sample_latency(series(cfg), [] { membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED); });
  const std::uint64_t ipis = call_ipis_except(caller_core()) - ipis0;
  stop.store(true, std::memory_order_relaxed);
  for (auto& t : busy) t.join();
  // The kernel IPIs only CPUs that run one of our threads at that instant: on
  // a loaded host the busy threads are often preempted, and then the call is
  // a cheap no-op. The CAL count tells how many calls really interrupted.
  const double calls = static_cast<double>(series(cfg).warmup + samples.size());
  std::string note =
      others_busy
          ? fmt::format("busy threads on {} other CPU(s); the kernel's smp_call_function_many",
                        busy.size())
          : std::string("no IPI needed: no other CPU runs this process");
  note += fmt::format("; {:.2f} function-call IPIs per call (/proc/interrupts CAL)",
                      static_cast<double>(ipis) / calls);
  return latency_figure(id, label, std::move(samples), note);
}

void report(results& out, measurement m) {
  progress("floors", m.available ? fmt::format("{:<60} p50 {}", m.label, fmt_ns(m.lat.p50))
                                 : m.label + ": " + m.note);
  out.add(std::move(m));
}

}  // namespace

void run_floor_recheck(const config& cfg, results& out) {
  measurement m = latency_figure("floor.cacheline.end", "cache-line ping-pong, again at the end",
                                 cacheline_samples(cfg, cfg.latency_samples),
                                 "to see whether the floor moved during the run");
  unpin_self();
  const measurement* start = out.find("floor.cacheline");
  if (start != nullptr && start->lat.p50 > 0 && m.lat.p50 > 0) {
    const double drift = m.lat.p50 / start->lat.p50;
    if (drift > 1.5 || drift < 1 / 1.5) {
      out.warnings.push_back(fmt::format(
          "the cache-line floor moved during the run (p50 {} at the start, {} at the end): the "
          "hypervisor placed the vCPUs differently; poll-mode ratios use a floor measured just "
          "before each series",
          fmt_ns(start->lat.p50), fmt_ns(m.lat.p50)));
    }
  }
  report(out, std::move(m));
}

void run_floors(const config& cfg, results& out) {
  report(out, cacheline_pingpong(cfg));
  report(out, futex_pingpong(cfg));
  report(out, eventfd_pingpong(cfg));
  report(out, eventfd_epoll_pingpong(cfg));
  report(out, tgkill_busy(cfg));
  report(out, membarrier_expedited(cfg, /*others_busy=*/true));
  report(out, membarrier_expedited(cfg, /*others_busy=*/false));
  unpin_self();
}

}  // namespace xcall::bench
