// xcall/cpu.hpp — the calling thread's CPU context: which CPU it hosts, its
// safe points (poll, idle_wait) and its soft interrupt mask (irq_guard).
//
// A thread hosts at most one CPU at a time: an owned CPU's thread for its
// whole life, an application thread between domain::attach() and the end of
// the attachment. Every function here acts on the calling thread only.
//
// Thread safety: everything is thread-local; nothing here may be called for
// another thread.
//
// Memory ordering: a call run from poll()/idle_wait() sees everything its
// caller wrote before the call (see domain.hpp).
#pragma once

#include <chrono>

#include "xcall/export.h"
#include "xcall/types.hpp"

namespace xcall {

/// The CPU this thread hosts, or no_cpu. Inside a function run by a cross-call
/// it is the CPU the call was sent to.
XCALL_EXPORT cpu_t this_cpu() noexcept;

/// A host runs every call queued for its CPU (and, while it proxies, for every
/// CPU it holds), then returns: an attached host at a safe point, or a
/// function running on an owned CPU. Does nothing on a thread that hosts no
/// CPU or inside an irq_guard.
XCALL_EXPORT void poll() noexcept;

/// A host runs what is queued; if that was nothing, it waits until a call
/// arrives or `timeout` passes and runs what arrived (with idle_mode::poll it
/// spins instead of sleeping). Returns whether it ran anything. Works on
/// owned CPUs too, from a function running there. nanoseconds::max() means
/// "until a call arrives" (deadlines saturate, none wraps); a zero or
/// negative timeout returns at once after the drain. On a thread that hosts
/// no CPU, or inside an irq_guard, it returns false at once (there is
/// nothing it could run).
XCALL_EXPORT bool idle_wait(std::chrono::nanoseconds timeout);

/// While a guard lives, this CPU runs no calls sent to it by other threads
/// (the kernel's local_irq_save): they stay queued until the last guard
/// ends, and the end of the last guard runs them. Calls addressed to the
/// caller's own CPU (single, async, the local part of on_each_cpu*) still
/// run at once, as in the kernel. A call that would wait, and cpu_down/
/// cpu_up, made inside a guard fail with errc::resource_deadlock_would_occur;
/// so does a no-wait call when all 9 of the host's caller storages it may
/// use (its depth and 8 spares) still carry earlier calls in flight after a
/// 20 ms grace.
/// The library takes a guard itself around a function's local copy, so
/// irqs_disabled() is true there and false in its remote copies.
/// Nestable; not movable; must end on the thread that made it.
class XCALL_EXPORT irq_guard {
 public:
  irq_guard() noexcept;
  ~irq_guard();
  irq_guard(const irq_guard&) = delete;
  irq_guard& operator=(const irq_guard&) = delete;
};

/// True while an irq_guard lives on this thread.
XCALL_EXPORT bool irqs_disabled() noexcept;

/// Marks the host as parked in something that does not touch its CPU's
/// per-CPU state: a blocking system call, a lock wait. Entering runs what is
/// queued for the CPU; leaving runs what arrived meanwhile. Inside the region
/// the thread acts as an outside caller (this_cpu() is no_cpu), and, on a CPU
/// attached with attach_options::proxy, a waiting caller may run the CPU's
/// calls itself while holding the CPU's run lock, which the region's end
/// waits for. Without proxy (or on a thread that hosts no CPU, or inside an
/// irq_guard) the region changes nothing. A function run by a call may enter
/// and leave one too (a proxy never parks the CPU it borrows: the region
/// changes nothing there). Not movable; must end on the thread that made it.
class XCALL_EXPORT blocking_region {
 public:
  blocking_region() noexcept;
  ~blocking_region();
  blocking_region(const blocking_region&) = delete;
  blocking_region& operator=(const blocking_region&) = delete;

 private:
  void* parked_ = nullptr;     ///< the parked CPU's state, or nullptr
  unsigned resume_state_ = 0;  ///< the host's state before parking
};

/// Around the kernel wait of a host's event loop (epoll_wait, poll(2),
/// io_uring_wait_cqe), on a CPU attached with delivery_mode::fd: the start
/// announces "about to block", so a sender that queues a call meanwhile
/// makes the CPU's doorbell_fd() readable (one write per burst); the end says
/// "back", reads the descriptor if it was written, and runs what is queued
/// (a safe point, as poll()). may_block() is false when calls were already
/// queued at the start: then wait with a zero timeout, or not at all.
///
///   for (;;) {
///     xcall::loop_wait w;
///     int n = epoll_wait(ep, events, 64, w.may_block() ? -1 : 0);
///     ...  // the doorbell fd's own events need no handling
///   }
///
/// Changes nothing (and may_block() is true) on a thread that hosts no CPU
/// or another delivery mode, inside an irq_guard (calls run at its end),
/// while parked in a blocking_region or proxying, and inside another
/// loop_wait. The end may wait for a sender that is between its claim of
/// the wake-up and its write (a few microseconds), so that no write can land
/// after the attachment closed the descriptor. Ending the attachment inside
/// a loop_wait is a contract violation (abort, naming the CPU).
/// Not movable; must end on the thread that made it.
class XCALL_EXPORT loop_wait {
 public:
  loop_wait() noexcept;
  ~loop_wait();
  loop_wait(const loop_wait&) = delete;
  loop_wait& operator=(const loop_wait&) = delete;

  /// False when calls were queued before the announcement.
  bool may_block() const noexcept { return may_block_; }

 private:
  void* cpu_ = nullptr;  ///< the announcing CPU's state, or nullptr: inert
  unsigned resume_state_ = 0;
  bool may_block_ = true;
};

}  // namespace xcall
