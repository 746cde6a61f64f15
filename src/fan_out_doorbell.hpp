// fan_out_doorbell.hpp — the doorbells of a multi-CPU call, rung after all
// its pushes, as Linux's smp_call_function_many_cond() queues every
// descriptor and then sends one IPI to the CPUs whose queue was empty.
// Private.
//
// Ringing after the last push, not after each, lets the pushes of a second
// caller land while the first caller's wake-ups are still on their way, and
// lets one fence serve every target. The sleeping targets are claimed and
// woken through the wake tree (wake_tree.hpp), so the caller makes a few
// futex wakes however many CPUs sleep; the others are rung as
// ring_doorbell() would (a signal, an fd write, nothing for a polling host).
//
// Use: note(c) after each push that found c's queue empty, ring() once after
// the last push. Without a mask (its allocation failed, or the domain's
// wake_tree option is off) note() rings at once, as a single call does.
//
// Ordering: ring()'s one seq_cst fence orders every push before the loads
// of the targets' host_state; it pairs with the fence in host_sleep(), as
// ring_doorbell()'s fence does (doorbell.hpp). Claims go in ascending id
// order: a claimed CPU's parent in the tree has a higher id, so it is
// claimed after its child (wake_tree.hpp says why that matters).
#pragma once

#include "barriers.hpp"
#include "cpu_state.hpp"
#include "domain_impl.hpp"
#include "doorbell.hpp"
#include "fault_injection.hpp"
#include "wake_tree.hpp"

#include "xcall/cpumask.hpp"

namespace xcall::detail {

class fan_out_doorbell {
 public:
  /// `pending`: the caller's private, all-clear mask of CPUs to ring, or
  /// nullptr to ring each target at once.
  fan_out_doorbell(domain_impl& dom, cpumask* pending) noexcept
      : dom_(dom), pending_(dom.options().wake_tree ? pending : nullptr) {}
  fan_out_doorbell(const fan_out_doorbell&) = delete;
  fan_out_doorbell& operator=(const fan_out_doorbell&) = delete;

  /// A push onto c's queue found it empty: c needs a doorbell.
  void note(cpu_t c) noexcept {
    if (pending_ == nullptr) {
      ring_after_push(dom_.cpu(c));  // note() follows the push at once
      return;
    }
    pending_->set(c);
    any_ = true;
  }

  /// Rings every noted CPU; leaves the mask clear.
  void ring() noexcept {
    if (!any_) return;
    any_ = false;
    // seq_cst fence: orders every push above before the host_state loads
    // below; pairs with the fence in host_sleep().
    store_load_fence();
    claim_sleepers();
    deliver_to_roots();
    pending_->reset_all();
  }

 private:
  /// Claims the sleeping noted CPUs, children before parents (ascending
  /// ids); rings the others now and drops them from the mask.
  void claim_sleepers() noexcept {
    for (cpu_t c : *pending_) {
      cpu_state& t = dom_.cpu(c);
      if (XCALL_FAULT(drop_doorbell) && fault::drop_this_doorbell()) {
        pending_->reset(c);
        continue;
      }
      const std::uint32_t state = t.host_state.load(std::memory_order_relaxed);
      if (state == kHostSleeping && claim_sleeping_host(t)) continue;
      pending_->reset(c);
      // Lost the claim (another waker or claimer took it, or the host woke),
      // or not asleep: ring as a single call would. A CPU another fan-out
      // claimed is left to that fan-out's tree.
      if (state != kHostSleeping) ring_after_fence(t, state, /*may_be_lost=*/true);
    }
  }

  /// Wakes the claimed CPUs whose parent this caller did not claim; the
  /// others are woken by their parent's relay. A fan-out that claimed at
  /// most kCallerDeliveries CPUs wakes them all itself.
  void deliver_to_roots() noexcept {
    const wake_tree_shape tree{dom_.nr_cpu_ids()};
    const bool few = pending_->count() <= kCallerDeliveries;
    for (cpu_t c : *pending_) {
      const cpu_t parent = tree.parent(c);
      if (!few && parent != tree.n && pending_->test(parent)) continue;
      deliver_owed_wake(dom_.cpu(c));
    }
  }

  domain_impl& dom_;
  cpumask* pending_;
  bool any_ = false;
};

}  // namespace xcall::detail
