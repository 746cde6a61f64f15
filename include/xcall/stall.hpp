// xcall/stall.hpp — the stall watchdog's report (the kernel's
// CONFIG_CSD_LOCK_WAIT_DEBUG diagnostics).
//
// When a caller has waited longer than domain_options::stall_timeout for one
// descriptor, the watchdog reports once who waits, for which CPU, how long,
// which function and argument, and what the target is doing; then it rings
// the target's doorbell again (lost wake-ups were a real cause of stalls in
// virtual machines). Reports repeat at doubling intervals while the wait
// lasts; when it ends, one "unstuck" report says after how long.
//
// Reports go to stderr, or to domain_options::on_stall when set. The
// callback runs on the waiting thread, in the middle of its wait: it must not
// call into the same domain with wait.
//
// Cost: the watchdog lives on the slow path of a wait (after the spin phase);
// a call that completes while its caller spins reads no clock for it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "xcall/export.h"
#include "xcall/types.hpp"

namespace xcall {

/// What a target's host was doing when the report was taken.
enum class host_activity {
  running,       ///< an attached host in its own code (calls wait for poll())
  polling,       ///< spinning on its queue or draining it
  sleeping,      ///< asleep, waiting for a doorbell
  handler,       ///< running a cross-call function (see stall_report::target_func)
  parked,        ///< an attached host inside a blocking_region
  loop_blocked,  ///< an fd-delivery host blocked in its event loop (loop_wait)
};

struct stall_report {
  bool unstuck = false;       ///< false: still waiting; true: the wait ended
  unsigned report = 0;        ///< 1 for the first report of this wait, 2, ...
  cpu_t waiter_cpu = no_cpu;  ///< the waiting CPU, or no_cpu (outside caller)
  pid_t waiter_tid = 0;       ///< the waiting thread
  cpu_t target = no_cpu;      ///< the CPU that owes the call
  std::chrono::nanoseconds waited{0};
  call_func_t func = nullptr;  ///< the function the caller waits for
  void* info = nullptr;
  std::string func_name;  ///< symbol name where the binary has one
  bool target_online = false;
  host_activity target_activity = host_activity::polling;
  call_func_t target_func = nullptr;  ///< what the target runs now (handler)
  std::string target_func_name;
  bool target_irqs_disabled = false;      ///< target's host is inside an irq_guard
  std::uint64_t target_queue_length = 0;  ///< calls queued to it, not yet taken
  /// Signal delivery: the doorbell signal (0 for poll delivery or owned CPUs)
  /// and whether the target's host thread blocks it (sigprocmask), in which
  /// case no re-send can reach it.
  int target_doorbell_signal = 0;
  bool target_blocks_signal = false;
  /// The target's host thread as the kernel's scheduler saw it: its tid (0:
  /// no host), its state letter from /proc ('R' running or runnable, 'S'
  /// asleep, 'D', 'T', ...; 0 unknown), and how long it was runnable but not
  /// running (schedstat's run_delay) during the last target_sched_window of
  /// the wait (-1: unknown). A host asleep with calls queued is a lost
  /// wake-up or a deadlock; one that was runnable for most of the window was
  /// starved of a CPU by an overloaded machine. The window is the last
  /// quarter of stall_timeout (at most 1 s) before a first report, and the
  /// time since the previous report otherwise. The kernel counts a wait when
  /// the thread gets a CPU, so one that began before the window counts whole
  /// (clamped to the window); a waiter that woke too late to sample before
  /// reporting leaves it unknown.
  pid_t target_tid = 0;
  char target_thread_state = 0;
  std::chrono::nanoseconds target_runnable_wait{-1};
  std::chrono::nanoseconds target_sched_window{0};
};

/// One line per report, as the default handler prints it on stderr.
XCALL_EXPORT std::string format_stall_report(const stall_report& report);

}  // namespace xcall
