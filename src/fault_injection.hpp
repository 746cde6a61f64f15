// fault_injection.hpp — named faults that tests switch on at run time to
// bring back the bugs xcall is built to avoid. Private, test builds only.
//
// Compiled in only when the library is built with the CMake option
// XCALL_FAULT_INJECTION=ON (which also keeps it from being installed);
// otherwise every XCALL_FAULT() is the constant false and costs nothing.
//
//   skip_seed_fix      classic engine: queue a call block even when its refs
//                      count is 0 (the bug the seed commit fixed: the block
//                      is never unlocked and its next csd_lock spins forever)
//   widen_mask_window  multi-CPU calls: sleep `param` microseconds between the
//                      fast-path look at the caller's mask and the snapshot
//                      of it (the race window the seed's race needs)
//   drop_doorbell      lose one doorbell in `param` (param 1: every one); the
//                      stall watchdog's re-ring is not affected
//   clear_after_run    classic engine: a walker clears its CPU's bit of a call
//                      block after running the function, not before (the
//                      kernel's order, which assumes handlers never nest): a
//                      nested drain inside the function runs the call again
//   borrow_second_slot classic engine: the one-target fast path of a multi-CPU
//                      call borrows a second caller storage (through the
//                      single-call path) while it holds one: with as many
//                      outside callers as slots, every caller waits for a slot
//                      that another caller holds
//   hotplug_mutex      cpu_down/cpu_up hold the CPU's hotplug mutex while they
//                      wait for the CPU (draining the caller's own CPU): a
//                      function drained there that does hotplug of the same
//                      CPU locks the mutex its own thread holds
//   fail_alloc         every `param`-th allocation inside xcall fails (caller
//                      storage, descriptors, call blocks, signal storage):
//                      the call reports not_enough_memory, attach throws
//                      std::bad_alloc
//   widen_proxy_window a proxy sleeps `param` microseconds between its last
//                      drain of a parked CPU and its release of the run lock
//                      (the window in which a no-wait sender finds the lock
//                      taken and leaves its call to the proxy)
//   skip_proxy_recheck a proxy releases a parked CPU's run lock without
//                      looking at its queue again: a no-wait call pushed
//                      while it held the lock waits for the host to leave its
//                      region, which may be waiting for that very call
//   skip_wake_relay    a host woken by a fan-out does not wake its children
//                      in the wake tree (wake_tree.hpp): the CPUs beneath it
//                      sleep on with their calls queued until the stall
//                      watchdog's re-ring delivers their owed wake-ups
//   proxy_one_target   percpu engine: a multi-CPU call's wait proxies only the
//                      parked target of the descriptor it waits on, not
//                      every parked target of its mask: a function on another
//                      target that waits for what the parked one runs holds
//                      up the descriptor waited on, and nobody runs the
//                      parked CPU's call (the bug of 2026-12-04)
//   forget_guarded_help a no-wait or async call sent inside an irq_guard to
//                      a parked proxy CPU is not run at the guard's end:
//                      it waits for the host to leave its region, which may
//                      be waiting for it (the nesting torture's TSan hang)
//   help_own_wait_only a wait helps only its own parked targets, and poll()
//                      none: a function run inside a wait (as a parked
//                      target's proxy, or on the waiter's own CPU) that waits
//                      for another parked target of that outer wait waits
//                      for ever (two parked targets that meet)
//
// Ordering: the fault words are relaxed atomics; tests arm them before the
// threads that read them start, or do not care which call sees them first.
#pragma once

#include <atomic>

namespace xcall::detail::fault {

enum class kind : unsigned {
  skip_seed_fix,
  widen_mask_window,
  drop_doorbell,
  clear_after_run,
  borrow_second_slot,
  hotplug_mutex,
  fail_alloc,
  widen_proxy_window,
  skip_proxy_recheck,
  skip_wake_relay,
  proxy_one_target,
  help_own_wait_only,
  forget_guarded_help,
  count
};

#if defined(XCALL_FAULT_INJECTION)

/// Arms a fault with its parameter (0 disarms it).
void arm(kind fault, unsigned param) noexcept;
/// Disarms every fault.
void disarm_all() noexcept;
/// The fault's parameter, 0 when it is not armed.
unsigned param(kind fault) noexcept;
/// drop_doorbell: whether this doorbell is the one in N to lose.
bool drop_this_doorbell() noexcept;
/// fail_alloc: whether this allocation is the one in N to fail.
bool fail_this_alloc() noexcept;

#else

// Production builds: constants the compiler folds away.
constexpr unsigned param(kind) noexcept { return 0; }
constexpr bool drop_this_doorbell() noexcept { return false; }
constexpr bool fail_this_alloc() noexcept { return false; }

#endif

#define XCALL_FAULT(name) (::xcall::detail::fault::param(::xcall::detail::fault::kind::name) != 0)
#define XCALL_FAULT_PARAM(name) (::xcall::detail::fault::param(::xcall::detail::fault::kind::name))

}  // namespace xcall::detail::fault
