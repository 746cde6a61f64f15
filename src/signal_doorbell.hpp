// signal_doorbell.hpp — the doorbell of delivery_mode::signal: a real-time
// signal sent to one host thread (tgkill), and its handler, which runs the
// host's queue unless the host masked it. Private to the library.
//
// One handler serves every domain of the process: it finds the CPU through
// the interrupted thread's context. It is installed once per signal and never
// removed, so a signal still in flight when a domain goes away meets a
// handler that ignores it, never the default action (which would kill the
// process).
//
// Ordering: the handler runs on the thread it interrupts; it reads the
// thread's context with relaxed loads ordered by signal fences
// (thread_context.hpp). Data published by senders is read through the queue's
// acquire, as in any drain.
#pragma once

#include <sys/types.h>

#include <string>

#include "cpu_state.hpp"

namespace xcall::detail {

/// Installs the doorbell handler for `requested` (0: the first real-time
/// signal that xcall already handles, else the first without a handler).
/// Returns the signal; throws std::system_error naming it when the signal is
/// owned by someone else (EBUSY) or none is free (EAGAIN).
int install_doorbell_signal(int requested);

/// SIGRTMIN+n as text, for messages.
std::string signal_name(int signo);

/// Sends the doorbell signal to the CPU's host thread; counts it. Returns
/// false when the kernel refused (the host thread is gone, or its queue of
/// real-time signals is full): a waiter's re-send will try again.
bool send_doorbell_signal(cpu_state& cpu, bool resend) noexcept;

/// What thread `tid` of this process does with `signo`, from
/// /proc/self/task/<tid>/status: whether it blocks it, whether one is pending
/// (sent, not yet delivered). Slow paths only; async-signal-safe (a waiter
/// may be a function running in a doorbell handler).
struct signal_status {
  bool blocked = false;
  bool pending = false;
};
signal_status thread_signal_status(pid_t tid, int signo) noexcept;

/// The CPU's host is running its own code with a doorbell signal sent and
/// not yet delivered: the signal is late (the thread is not scheduled, or
/// blocks it), not lost. Real-time signals queue, so re-sending would only
/// pile more onto it and eat the user's RLIMIT_SIGPENDING; re-ringing is
/// pointless too. The one home of that rule (nudge.cpp, stall_watch.cpp).
bool doorbell_signal_pending(const cpu_state& cpu) noexcept;

}  // namespace xcall::detail
