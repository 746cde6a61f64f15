// xcall/options.hpp — how a domain is built: its size, who hosts its CPUs,
// how idle CPUs wait, which engine queues multi-CPU calls; and how calls
// reach an application thread that attaches itself (attach_options).
//
// Thread safety: plain value types. domain's constructor validates them and
// throws std::invalid_argument naming the offending option.
#pragma once

#include <chrono>
#include <functional>

#include "xcall/stall.hpp"
#include "xcall/types.hpp"

namespace xcall {

/// How an idle owned CPU (and a waiting host, and idle_wait()) waits for work.
enum class idle_mode {
  poll,      ///< spin on the queue forever: lowest latency, burns its core
             ///< (idle_wait() spins until its timeout instead of sleeping)
  adaptive,  ///< spin for idle_spin, then sleep on a futex
  sleep,     ///< sleep once idle: a call to a sleeping CPU costs a futex wake;
             ///< polls up to 20 µs first only while calls keep cutting its
             ///< sleeps short (adapted like cpuidle-haltpoll, docs/api.md)
};

/// How multi-CPU calls are queued (see docs/design.md).
enum class engine {
  percpu,   ///< per-CPU lock-free lists of descriptors (Linux 3.9+)
  classic,  ///< global list of per-caller call blocks (Linux 2.6.38–3.8)
};

/// How calls reach an attached CPU whose thread is running its own code
/// (docs/attached-threads.md).
enum class delivery_mode {
  /// Calls run only at the host's safe points: poll(), idle_wait(), while it
  /// waits for a call of its own, and (with proxy) at the edges of a
  /// blocking_region.
  poll,
  /// As poll, and a doorbell signal interrupts the host: the handler runs the
  /// queued calls unless the host is inside an irq_guard or already running
  /// calls (then they run when that ends). Functions sent to such a CPU may
  /// run in signal context and must be async-signal-safe.
  signal,
  /// As poll, and the CPU has a doorbell file descriptor (an eventfd,
  /// cpu_attachment::doorbell_fd()) for the host's event loop: it becomes
  /// readable when a call is queued while the host is inside a loop_wait
  /// (xcall/cpu.hpp), about to block in epoll_wait, poll(2) or io_uring.
  /// Senders write it only then, once per burst; a host running its own code
  /// costs them no system call.
  fd,
};

/// How an application thread hosts the CPU it attaches (domain::attach).
struct attach_options {
  delivery_mode delivery = delivery_mode::poll;
  /// While the host is inside a blocking_region, a waiting caller may run the
  /// host's queued calls itself, on the host's behalf: this_cpu() reports the
  /// host's CPU and the host cannot leave the region until they finish. Off
  /// by default: some functions must run on the host thread itself.
  bool proxy = false;
};

struct domain_options {
  /// Number of CPUs, 1 .. kMaxCpus; 0 means std::thread::hardware_concurrency().
  cpu_t nr_cpus = 0;
  /// true: the domain starts one thread per CPU (owned CPUs, all online).
  /// false: every CPU starts offline and comes online when a thread attaches.
  bool start_threads = true;
  /// Owned CPU i runs on host CPU i modulo the host's CPUs: the CPUs the
  /// thread that constructs the domain may run on (its affinity mask, which
  /// the owned threads inherit). Construct the domain from a thread that is
  /// not pinned to one core, or every owned CPU lands on that core.
  bool pin_threads = false;
  idle_mode idle = idle_mode::adaptive;
  /// adaptive: poll this long before sleeping; also how long a waiting caller
  /// spins before it sleeps. At most one second.
  std::chrono::nanoseconds idle_spin = std::chrono::microseconds(50);
  engine engine_kind = engine::percpu;
  /// Multi-CPU calls wake their sleeping targets through a wake tree: the
  /// caller futex-wakes one or two, and every CPU woken wakes two more, so
  /// the caller's cost does not grow with the number of sleepers
  /// (docs/engines.md). false: the caller wakes each sleeping target itself,
  /// one system call after another (the design before the tree; a baseline).
  bool wake_tree = true;
  /// Stall watchdog: a caller that waits longer than this for one descriptor
  /// reports it (xcall/stall.hpp). 0 turns the watchdog off; a huge value
  /// (up to nanoseconds::max()) saturates and never gives a false report. The
  /// environment variable XCALL_STALL_TIMEOUT_MS, when set, overrides it: a
  /// whole number of milliseconds, at most a year; anything else makes the
  /// domain constructor throw std::invalid_argument naming the variable.
  std::chrono::nanoseconds stall_timeout = std::chrono::seconds(5);
  /// Receives stall reports instead of stderr. Runs on the waiting thread.
  std::function<void(const stall_report&)> on_stall{};
  /// The real-time signal of delivery_mode::signal: 0 picks the first signal
  /// at or after SIGRTMIN that has no handler (or one xcall already installed);
  /// otherwise SIGRTMIN .. SIGRTMAX. Installed (SA_RESTART) by the first
  /// attach with signal delivery and kept for the life of the process, so a
  /// late signal never meets the default action. attach() throws
  /// std::system_error if the application owns the signal.
  int doorbell_signal = 0;
};

}  // namespace xcall
