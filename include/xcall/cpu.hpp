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

#include "xcall/types.hpp"

namespace xcall {

/// The CPU this thread hosts, or no_cpu. Inside a function run by a cross-call
/// it is the CPU the call was sent to.
cpu_t this_cpu() noexcept;

/// An attached host runs every call queued for its CPU, then returns. Does
/// nothing on a thread that hosts no CPU or inside an irq_guard.
void poll() noexcept;

/// An attached host runs what is queued; if that was nothing, it sleeps until
/// a call arrives or `timeout` passes and runs what arrived. Returns whether it
/// ran anything. On a thread that hosts no CPU, or inside an irq_guard, it
/// returns false at once (there is nothing it could run).
bool idle_wait(std::chrono::nanoseconds timeout);

/// While a guard lives, this CPU runs no cross-calls (the kernel's
/// local_irq_save): they stay queued until the last guard ends, and the end
/// of the last guard runs them. A call that would wait, made inside a guard,
/// fails with errc::resource_deadlock_would_occur. Nestable; not movable; must
/// end on the thread that made it.
class irq_guard {
 public:
  irq_guard() noexcept;
  ~irq_guard();
  irq_guard(const irq_guard&) = delete;
  irq_guard& operator=(const irq_guard&) = delete;
};

/// True while an irq_guard lives on this thread.
bool irqs_disabled() noexcept;

/// Marks the host as parked in something that does not touch its CPU's
/// per-CPU state: a blocking system call, a lock wait. Entering runs what is
/// queued for the CPU; leaving runs what arrived meanwhile. Inside the region
/// the thread acts as an outside caller (this_cpu() is no_cpu), and, on a CPU
/// attached with attach_options::proxy, a waiting caller may run the CPU's
/// calls itself while holding the CPU's run lock, which the region's end
/// waits for. Without proxy (or on a thread that hosts no CPU, or inside an
/// irq_guard) the region changes nothing. Not movable; must end on the thread
/// that made it.
class blocking_region {
 public:
  blocking_region() noexcept;
  ~blocking_region();
  blocking_region(const blocking_region&) = delete;
  blocking_region& operator=(const blocking_region&) = delete;

 private:
  void* parked_ = nullptr;        ///< the parked CPU's state, or nullptr
  unsigned resume_state_ = 0;     ///< the host's state before parking
};

}  // namespace xcall
