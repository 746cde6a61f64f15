// doorbell.hpp — telling a CPU's host that work arrived (the kernel's IPI,
// and its TIF_POLLING_NRFLAG trick). Private to the library.
//
// A sender rings only after a push that found the queue empty (later pushes
// ride on the first one's ring), and the ring is a system call only when the
// host announced it sleeps. Everything else costs one fence and one load of
// a line the polling host already shares.
//
// Ordering: the sleep/wake race is the classic store-then-load pattern.
//   sender: push (store to queue)  ; seq_cst fence ; load host_state
//   host:   store host_state=sleep ; seq_cst fence ; load queue (and its other
//                                                     wake conditions)
// With both fences, at least one side sees the other's store: either the
// sender sees "sleeping" and wakes the host, or the host sees the work and
// does not sleep. The futex re-checks host_state == sleeping atomically with
// queuing the sleeper, so a wake between the host's check and its sleep turns
// the sleep into an immediate return. The same handshake, with "the
// descriptor was released" as the store, wakes a host that sleeps in a wait
// (waiting.cpp), and with "control changed" wakes it for hotplug.
//
// Signal delivery (signal_doorbell.cpp) adds one state that needs a ring:
// an attached host "running" its own code gets the doorbell signal. The host
// leaves "running" for "polling" while the library works for it, and going
// back runs the same handshake (leave_polling): store running ; seq_cst
// fence ; load queue.
//
// A multi-CPU call rings its sleeping targets through a wake tree
// (wake_tree.hpp, fan_out_doorbell.hpp): it claims them (sleeping -> owed),
// wakes a few, and every host woken relays to two more; host_sleep() ends
// with an exchange that tells a host it was claimed, and relays.
//
// File-descriptor delivery (fd_doorbell.cpp) adds the other: a host inside a
// loop_wait is "loop-blocked", and a sender writes its eventfd instead of a
// futex wake; the same handshake, with the host's may_block() as its load.
#pragma once

#include <atomic>
#include <chrono>

#include "cpu_state.hpp"
#include "deadline.hpp"
#include "domain_impl.hpp"
#include "fault_injection.hpp"
#include "barriers.hpp"
#include "fd_doorbell.hpp"
#include "futex.hpp"
#include "signal_doorbell.hpp"
#include "wake_tree.hpp"
#include "trace.hpp"

namespace xcall::detail {

/// Wakes the host if it sleeps. Caller: has just made the host's wake
/// condition true and executed the seq_cst fence of the handshake.
inline void wake_host(cpu_state& cpu) noexcept { futex_wake_host_from(cpu, kHostSleeping); }

/// The sender's half of the handshake, after a push that found the queue
/// empty (or after changing cpu.control). A call's doorbell may be lost on
/// purpose in fault-injection builds (drop_doorbell); hotplug requests and
/// the stall watchdog's re-ring pass may_be_lost = false.
/// The rest of ring_doorbell() once its fence is done and `state` loaded;
/// fan_out_doorbell.hpp calls it for targets it does not claim.
inline void ring_after_fence(cpu_state& cpu, std::uint32_t state, bool may_be_lost) noexcept {
  if (state == kHostWakeOwed) {
    // A fan-out's wake-up is on its way (wake_tree.hpp). Hotplug and the
    // stall watchdog do not wait for a relay that may be slow to come.
    if (!may_be_lost) deliver_owed_wake(cpu);
    return;
  }
  if (state == kHostLoopBlocked) {
    if (may_be_lost && XCALL_FAULT(drop_doorbell) && fault::drop_this_doorbell()) return;
    write_doorbell_fd(cpu);
    return;
  }
  if (state != kHostSleeping && state != kHostRunning) return;  // polling, parked
  // A running host hears only signals; one reached by polling is not rung.
  if (state == kHostRunning && cpu.doorbell_signo.load(std::memory_order_relaxed) == 0) return;
  if (may_be_lost && XCALL_FAULT(drop_doorbell) && fault::drop_this_doorbell()) return;
  if (state == kHostSleeping) {
    wake_host(cpu);
  } else {
    send_doorbell_signal(cpu, /*resend=*/false);
  }
}

inline void ring_doorbell(cpu_state& cpu, bool may_be_lost = true) noexcept {
  // seq_cst fence: orders the push before the load of host_state; pairs with
  // the fence in host_sleep().
  store_load_fence();
  ring_after_fence(cpu, cpu.host_state.load(std::memory_order_relaxed), may_be_lost);
}

/// ring_doorbell() for the sender of a push that found the queue empty, with
/// no fence: the push's CAS is seq_cst (call_queue.hpp), and a seq_cst load
/// after a seq_cst store is the store-load pattern without one. Against the
/// host's store, fence, load, C++20 [atomics.order]/4 orders the host's fence
/// before the CAS if its load missed the push, and the load below before the
/// fence if it missed the host's store; both cannot happen. On x86 this saves
/// the MFENCE: the CAS's lock prefix is the full barrier.
inline void ring_after_push(cpu_state& cpu) noexcept {
  // seq_cst: pairs with the fence in host_sleep() (and park(), leave_polling(),
  // the fd doorbell's announcement), through the push's seq_cst CAS.
  ring_after_fence(cpu, cpu.host_state.load(std::memory_order_seq_cst), /*may_be_lost=*/true);
}

/// A signal-delivery host that is running its own code (state running) tells
/// senders it is polling: the library works for it now, no signal needed.
/// Returns whether it changed the state (leave_polling() must follow).
inline bool enter_polling(cpu_state& cpu) noexcept {
  if (cpu.doorbell_signo.load(std::memory_order_relaxed) == 0) return false;  // never signalled
  if (cpu.host_state.load(std::memory_order_relaxed) != kHostRunning) return false;
  cpu.host_state.store(kHostPolling, std::memory_order_relaxed);
  return true;
}

/// Back to running. Returns whether calls arrived that no sender signalled
/// for (they saw "polling"): the caller must see that they run.
inline bool leave_polling(cpu_state& cpu) noexcept {
  cpu.host_state.store(kHostRunning, std::memory_order_relaxed);
  // seq_cst fence: orders the store before the queue loads; pairs with the
  // push and seq_cst load in ring_after_push().
  store_load_fence();
  return cpu.has_calls();
}

/// The host's half: announce sleep, re-check, sleep at most `timeout`
/// (negative: no limit). `has_work()` must read every condition a waker may
/// set. On return the state is `resume_state`.
template <class HasWork>
void host_sleep(cpu_state& cpu, HasWork&& has_work, std::chrono::nanoseconds timeout,
                std::uint32_t resume_state) noexcept {
  cpu.host_state.store(kHostSleeping, std::memory_order_relaxed);
  // seq_cst fence: orders the store above before has_work()'s loads; pairs
  // with the push and load of ring_after_push(), the fence of
  // ring_doorbell() and of the release path in waiting.cpp.
  store_load_fence();
  const bool slept = !has_work();
  if (slept) {
    bump(cpu.counters.sleeps);
    XCALL_TRACE_HOST_SLEEP(cpu.id);
    futex_wait(&cpu.host_state, kHostSleeping, timeout);
  }
  // An exchange, not a store: a fan-out may have claimed this host (owed)
  // since the announcement, and relies on it to wake its children in the
  // wake tree even if it never slept. acquire: pairs with the claim's
  // release CAS (wake_tree.hpp), so the relay sees the children's claims.
  const std::uint32_t was = cpu.host_state.exchange(resume_state, std::memory_order_acquire);
  // A waker's CAS moved the word to polling or owed; a timeout left it sleeping.
  if (slept) {
    cpu.woken = was != kHostSleeping;
    XCALL_TRACE_HOST_WAKE(cpu.id, cpu.woken);
  }
  if (was != kHostSleeping) relay_owed_wakes(cpu);
}

/// Sleep mode's grace (cpu_state::sleep_grace): how long an idle host polls
/// before it announces sleep, adapted as Linux's cpuidle-haltpoll adapts its
/// poll window. A sleep that a call cut short within kSleepGraceMax would
/// have been saved by polling longer: the grace doubles (from
/// kSleepGraceStart). A sleep that lasted longer, polling would not have
/// saved: the grace halves, and below kSleepGraceStart it is zero. A stream
/// of calls therefore costs one futex wake, not one per call, and a host
/// whose calls come rarely sleeps at once, as sleep mode promises. The
/// ceiling is about what one futex wake-up costs a caller in a VM (its
/// round trip is 20-30 us here): polling longer than a wake costs is never
/// worth it.
inline constexpr std::chrono::nanoseconds kSleepGraceStart = std::chrono::microseconds(1);
inline constexpr std::chrono::nanoseconds kSleepGraceMax = std::chrono::microseconds(20);

/// The grace after a sleep of `slept` (see kSleepGraceMax); a host that
/// found work while it announced sleep counts as a very short sleep.
inline std::chrono::nanoseconds next_sleep_grace(std::chrono::nanoseconds grace,
                                                 std::chrono::nanoseconds slept) noexcept {
  if (slept < kSleepGraceMax) {  // polling longer would have caught the call
    if (grace < kSleepGraceStart) return kSleepGraceStart;
    return grace >= kSleepGraceMax / 2 ? kSleepGraceMax : grace * 2;
  }
  const std::chrono::nanoseconds halved = grace / 2;  // polling would not have
  return halved < kSleepGraceStart ? std::chrono::nanoseconds(0) : halved;
}

/// domain_impl::idle_until, the one way a host waits for work: spin (poll
/// mode forever, adaptive for idle_spin, sleep mode for its adapted grace),
/// then sleep on its state word (host_sleep above).
template <class HasWork>
void domain_impl::idle_until(cpu_state& c, HasWork&& has_work,
                             std::chrono::steady_clock::time_point deadline,
                             std::uint32_t resume_state) {
  using clock = std::chrono::steady_clock;
  const bool poll_forever = options_.idle == idle_mode::poll;
  const bool sleep_mode = options_.idle == idle_mode::sleep;
  const auto spin_end =
      deadline_after(clock::now(), sleep_mode ? c.sleep_grace : options_.idle_spin);
  for (unsigned i = 1;; ++i) {
    if (has_work()) return;
    cpu_relax();
    if (i % 64 != 0) continue;  // read the clock only now and then
    const auto now = clock::now();
    if (now >= deadline) return;
    if (!poll_forever && now >= spin_end) break;
  }
  const auto now = clock::now();
  if (now >= deadline) return;
  host_sleep(c, has_work, time_left(deadline, now), resume_state);
  if (sleep_mode) {
    const auto slept = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - now);
    c.sleep_grace = next_sleep_grace(c.sleep_grace, slept);
  }
}

}  // namespace xcall::detail
