// wake_tree.hpp — waking many sleeping CPUs without making the caller pay a
// futex wake for each one: the woken CPUs wake the next ones. Private.
//
// A fan-out (a multi-CPU call, fan_out_doorbell.hpp) first *claims* every
// sleeping target whose push found its queue empty: a CAS of its host_state
// from sleeping to kHostWakeOwed, "a wake-up is owed to this CPU and will
// come". A claimed host can no longer go to sleep on its word (the futex
// compares against "sleeping"), so the claim alone wakes a host that has not
// entered the kernel yet; one inside the kernel still needs a FUTEX_WAKE, and
// that system call is what the tree spreads out.
//
// The tree is a fixed heap over the domain's CPU ids, mirrored so that the
// root is the highest id: rank(c) = n-1-c, the children of rank r are ranks
// 2r+1 and 2r+2. A caller delivers the wake-up (deliver_owed_wake: CAS owed
// -> polling, then FUTEX_WAKE) only to the claimed CPUs whose parent it did
// not claim (to all of them when it claimed at most kCallerDeliveries);
// every host that leaves its sleep having been claimed or woken relays: it
// delivers the owed wake-ups of its two children before it runs its own
// calls. For a full domain of sleeping CPUs the caller makes one or two wake
// system calls and the longest chain is the heap's depth, floor(log2 n) + 1;
// for a sparse mask the caller delivers at most one per target, as before.
//
// Why no owed wake-up is lost:
//  - A claimed CPU is delivered by its caller, or its caller also claimed
//    its parent (or both, in a fan-out of few: the CAS owed -> polling lets
//    one of the two make the FUTEX_WAKE), the parent — *after* it: a caller
//    claims in ascending id order, and a
//    parent's id is higher. The parent relays when it leaves its sleep, and
//    its exit is an acquire exchange of its own host_state that reads the
//    caller's release claim of the parent (or a CAS after it, in the claim's
//    release sequence), so the relay sees the child's claim: the child is
//    still owed (the relay delivers it) or has moved on (woken already).
//  - A claimed host that leaves its sleep by itself (a timeout, has_work()
//    true after the announcement) exchanges owed away, so it needs no
//    system call, and still relays.
//  - Two claimers, or a claimer and a plain sender: the CAS from sleeping
//    has one winner; a plain sender (ring_doorbell) that finds a CPU owed
//    leaves it to the claimer, except the stall watchdog and hotplug, which
//    deliver it themselves.
// model/wake_tree.pml checks the handshake, with the broken variants (claims
// parents first, a plain store at the host's exit, no relay, no fence).
//
// Ordering: claim_sleeping_host() is a release CAS; the host's exit in
// host_sleep() (doorbell.hpp) an acquire exchange; delivery and relay loads
// are relaxed (they order nothing but the futex word, which the kernel
// re-checks). The store-load handshake between pushes and the host's sleep
// announcement is doorbell.hpp's, with one fence for all the pushes.
#pragma once

#include <atomic>
#include <cstdint>

#include "counters.hpp"
#include "cpu_state.hpp"
#include "domain_impl.hpp"
#include "fault_injection.hpp"
#include "futex.hpp"
#include "trace.hpp"

namespace xcall::detail {

/// The heap's shape over a domain of `n` CPUs; the root is CPU n-1.
struct wake_tree_shape {
  cpu_t n;

  /// The CPU that relays c's wake-up when both are claimed (n: c is the root).
  cpu_t parent(cpu_t c) const noexcept {
    const cpu_t rank = n - 1 - c;
    return rank == 0 ? n : n - 1 - (rank - 1) / 2;
  }
  /// c's children (n: none). A child's id is always lower than its parent's.
  cpu_t child(cpu_t c, unsigned which) const noexcept {
    const std::uint64_t rank = std::uint64_t{n - 1 - c} * 2 + 1 + which;
    return rank < n ? static_cast<cpu_t>(n - 1 - rank) : n;
  }
};

/// A fan-out that claimed at most this many sleeping CPUs has its caller
/// wake them all, as the design before the tree did, even where a parent
/// would relay too (the CAS owed -> polling lets one of the two make the
/// FUTEX_WAKE): a small domain is woken at once instead of waiting a wake-up
/// latency per level (on a 2-core VM, about 20 us each: on_each_cpu over 2
/// sleeping CPUs took 7x the serial design's time). Larger fan-outs keep the
/// bare tree: a caller that woke more hosts itself would be preempted by
/// them before it returns (4 caller wakes per call at 256 CPUs made a no-wait
/// call return in 14 wakes' time instead of 4; BENCHMARKS.md, "Fan-out wakes").
inline constexpr cpu_t kCallerDeliveries = 4;

/// A fan-out's claim of a sleeping host. Returns whether it won: the claimer
/// then owes the host a delivery, itself or through the claimed parent.
inline bool claim_sleeping_host(cpu_state& host) noexcept {
  std::uint32_t expected = kHostSleeping;
  // release: the claims of this CPU's children, made before, happen-before
  // the relay the host runs after its acquire exchange in host_sleep().
  return host.host_state.compare_exchange_strong(expected, kHostWakeOwed, std::memory_order_release,
                                                 std::memory_order_relaxed);
}

/// Takes `host` from `from` (sleeping, or owed) to polling and, if this
/// call's CAS did it, futex-wakes it: the one system call of a wake-up,
/// shared by wake_host() (doorbell.hpp) and the tree's deliveries.
inline bool futex_wake_host_from(cpu_state& host, std::uint32_t from) noexcept {
  std::uint32_t expected = from;
  // relaxed: the state word carries no data; what the host will read is
  // published by the queue's or descriptor's own release operations (and
  // from owed, this CAS continues the claim's release sequence).
  if (!host.host_state.compare_exchange_strong(expected, kHostPolling, std::memory_order_relaxed,
                                               std::memory_order_relaxed)) {
    return false;
  }
  bump_shared(host.counters.doorbells_rung);  // a statistic, on a slow path
  XCALL_TRACE_DOORBELL_RING(host.id, kFutex);
  futex_wake(&host.host_state);
  return true;
}

/// Pays an owed wake-up: the one thread whose CAS takes `host` from owed to
/// polling makes the FUTEX_WAKE. Returns whether this call made it.
inline bool deliver_owed_wake(cpu_state& host) noexcept {
  return futex_wake_host_from(host, kHostWakeOwed);
}

/// The relay: a host that has just left its sleep having been claimed or
/// woken delivers the owed wake-ups of its children. Its caller did the
/// acquire exchange of host_state that makes their claims visible.
inline void relay_owed_wakes(cpu_state& self) noexcept {
  if (XCALL_FAULT(skip_wake_relay)) return;
  domain_impl& dom = *self.dom;
  const wake_tree_shape tree{dom.nr_cpu_ids()};
  for (unsigned which = 0; which < 2; ++which) {
    const cpu_t c = tree.child(self.id, which);
    if (c == tree.n) break;
    cpu_state& child = dom.cpu(c);
    if (child.host_state.load(std::memory_order_relaxed) != kHostWakeOwed) continue;
    if (deliver_owed_wake(child)) bump_shared(self.counters.wakes_relayed);
  }
}

}  // namespace xcall::detail
