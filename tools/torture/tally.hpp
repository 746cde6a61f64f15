// tally.hpp — the run's counters: operations, events and the outcome of every
// check, kept per thread and summed on demand.
//
// Each thread that counts (invokers, CPU hosts running handlers, churners)
// gets its own block on first use, so counting never bounces a shared cache
// line between CPUs while the calls under test run. A failed check also goes
// through fail(), which prints what went wrong (rate-limited) and marks the
// run failed.
//
// Signal delivery (--delivery signal): a handler may run on a host thread in
// the middle of that thread's own add() of the same counter, so counters are
// bumped with one atomic read-modify-write, never load + store. add() and
// pass() are async-signal-safe once the thread's block exists
// (prepare_thread()); fail() is not (it allocates and locks), so a function
// that may run inside the doorbell handler reports through
// fail_signal_safe(), whose message is printed later by the main thread.
//
// Thread safety: add()/pass()/fail() from any thread; totals() from any
// thread at any time (each counter is read once; counters are not a snapshot
// of one instant).
//
// Memory ordering: every counter is a relaxed atomic written by one thread
// (and the signal handlers that interrupt it): a statistic orders nothing.
// any_failure() is relaxed too: the run's end reads it after joining the
// threads that could set it. A deferred failure's text is published by a
// release of its slot's state, read with acquire by the thread printing it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "options.hpp"

namespace xcall_torture {

/// The checks, each counted passed/failed and reported at the end.
enum class check : unsigned {
  caller_write,   ///< the handler saw the caller's write made before the call
  handler_write,  ///< the waiting caller saw the handler's write
  right_cpu,      ///< the handler ran on a CPU the call was sent to, none other
  exactly_once,   ///< each CPU held in the mask and online for the whole call ran it once
  at_most_once,   ///< no CPU ran one call twice
  enxio,          ///< single calls: ENXIO exactly when the target was offline
  freed,          ///< every no-wait argument was freed by its handler: no call lost
  cond,           ///< the predicate ran once per CPU on the caller; handlers only where true
  rpc,            ///< the RPC's completion flag was seen
  async,          ///< accepted async descriptors each ran once; EBUSY only in flight
  error_code,     ///< calls returned no unexpected error
  stall,          ///< no stall report
  hotplug,        ///< cpu_down/cpu_up/attach/detach did what they should
  irq_guard,      ///< no call ran for a CPU while its host was inside its guarded computation
  proxy,          ///< calls ran on their CPU's host thread, or by a proxy while it was parked
  delivery,       ///< --delivery signal / fd, --proxy were exercised: calls ran by each way
  deadlock,   ///< EDEADLK exactly where a composition cannot work (guard + wait, own CPU hotplug)
  exception,  ///< thrown callables / predicates reached the caller; a thrown predicate ran nothing
  region,     ///< inside a blocking_region a thread is an outside caller exactly when it parked
  attach_race,  ///< of two threads attaching one CPU one won, the other got EBUSY and a message
  hang,         ///< no thread stayed in one activity longer than --hang-timeout
  idle,         ///< idle_wait inside an irq_guard returned false at once
  doorbell_fd,  ///< --delivery fd: an open eventfd per attachment, readable only in a loop_wait
  rendezvous,   ///< the functions of one rendezvous call all started while the others waited
  count
};
inline constexpr unsigned kChecks = static_cast<unsigned>(check::count);

const char* check_name(check c) noexcept;
const char* check_description(check c) noexcept;

/// Events and counts that are not checks.
enum class event : unsigned {
  op_first,                        // one counter per op_kind, from here
  from_cpu = op_first + kOpKinds,  ///< operations issued from a CPU (handler or host)
  enxio,                           ///< ENXIO returns (offline / out-of-range targets)
  ebusy,                           ///< async descriptor found in flight (EBUSY or busy)
  fallback,                        ///< no-wait multi call done with wait (hotplug busy)
  handler_runs,                    ///< functions run for the tool's calls
  mask_flips,                      ///< bits flipped in the invokers' live masks
  cpu_down,
  cpu_up,
  detach,
  attach,
  nowait_allocated,  ///< no-wait records handed to the library
  nowait_freed,      ///< of those, freed (by the handler, or at ENXIO)
  probe_sent,        ///< async probe descriptors accepted
  probe_ran,         ///< async probe functions run
  stall_reports,     ///< reports from the library's stall watchdog
  stall_starved,     ///< of those, with the host or the process starved of CPUs (not failures)
  starved_timeouts,  ///< the tool's own timeouts (hang, RPC) excused the same way
  in_signal,         ///< tool functions run inside the doorbell handler
  by_proxy,          ///< tool functions run by a proxy (another thread)
  declined,          ///< trampolines declined inside the doorbell handler
  guarded_work,      ///< hosts' computations inside an irq_guard
  blocking_waits,    ///< hosts' blocking calls (in a region: --proxy)
  nested_ops,        ///< operations made by functions (depth >= 1)
  skipped,           ///< operations / nested steps left out (lock busy, ...)
  enomem,            ///< ENOMEM / bad_alloc with --fault fail_alloc armed
  exceptions,        ///< thrown callables / predicates caught by their caller
  crowd_calls,       ///< calls made by --crowd threads
  crowd_sent,        ///< of those, no-wait ones to an online CPU
  crowd_ran,         ///< of those, run
  attach_races,      ///< re-attaches raced by a second thread
  racer_won,         ///< of those, won by the racer (then it detached)
  idle_early,        ///< idle_wait(forever) returned with nothing run
  fd_waits,          ///< --delivery fd: loop_waits around epoll_wait that announced
  fd_no_block,       ///< of those, may_block() was false (calls already queued)
  fd_wakes,          ///< epoll_wait returned the doorbell fd
  fd_wake_runs,      ///< of those, the loop_wait's end ran tool functions on the host
  fd_doorbell_only,  ///< fd waits with no timer pending: only the doorbell could wake them
  timer_wakes,       ///< the fd host's timerfd fired
  nest_first,        // one counter per nest_kind, from here
  count = nest_first + kNestKinds
};
inline constexpr unsigned kEvents = static_cast<unsigned>(event::count);

inline event nest_event(nest_kind kind) noexcept {
  return static_cast<event>(static_cast<unsigned>(event::nest_first) + static_cast<unsigned>(kind));
}

inline event op_event(op_kind kind) noexcept {
  return static_cast<event>(static_cast<unsigned>(event::op_first) + static_cast<unsigned>(kind));
}

struct totals {
  std::array<std::uint64_t, kEvents> events{};
  std::array<std::uint64_t, kChecks> passed{};
  std::array<std::uint64_t, kChecks> failed{};

  std::uint64_t get(event e) const noexcept { return events[static_cast<unsigned>(e)]; }
  std::uint64_t ops() const noexcept;
  std::uint64_t checks_passed() const noexcept;
  std::uint64_t checks_failed() const noexcept;
};

/// Makes the calling thread's counter block now (that allocates and locks):
/// a thread whose counters a signal handler may bump calls it first.
void prepare_thread();
/// Counts for the calling thread.
void add(event e, std::uint64_t n = 1) noexcept;
void pass(check c, std::uint64_t n = 1) noexcept;
/// A failed check: counted, printed (the first 20 of each check; then only
/// counted), and the run is failed.
void fail(check c, const std::string& what);
/// The same from a function that may run inside a signal handler: counted
/// and the run failed at once; the text (copied) is printed by
/// flush_deferred_failures(). Async-signal-safe after prepare_thread().
void fail_signal_safe(check c, const char* what) noexcept;
/// Prints the failures fail_signal_safe() left (main or watchdog thread).
void flush_deferred_failures();

/// Sums every thread's block.
totals sum_totals();
/// True once any check failed (or the tool's watchdog fired).
bool any_failure() noexcept;
/// Marks the run failed without a check (the tool's own watchdog).
void mark_failed() noexcept;

}  // namespace xcall_torture
