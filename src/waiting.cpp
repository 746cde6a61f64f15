// waiting.cpp — waiting until a descriptor is released (the kernel's
// csd_lock_wait) and releasing it (csd_unlock), including waking an owner
// that went to sleep.
//
// A waiter that hosts a CPU of this domain keeps draining its own queue while
// it waits (guarantee 6), so two CPUs whose functions call each other with
// wait cannot deadlock; when it sleeps it sleeps on its CPU's state word, so
// both a new call and the release wake it. Any other waiter (an outside
// thread, or a host inside an irq_guard) sleeps on the descriptor's flags.
// Either spins for idle_spin first: most calls finish well within it.
//
// Targets that cannot hear a doorbell by themselves get help from the waiter
// (nudge.hpp): a parked host's calls are run by the waiter as its proxy, a
// signal that may have been lost is re-sent. A signal-delivery host that
// waits tells senders it is polling (enter_polling), so they do not signal it
// while it drains its own queue anyway; its waits hold the doorbell mask.
//
// Ordering:
//  - csd_lock_wait(): acquire load of flags (csd_ops::is_locked) pairs with
//    the release exchange in csd_unlock(): the function's writes happen-before
//    the wait returns.
//  - Sleeper hand-off: the waiter sets kSleeper (plus its CPU) with a CAS on
//    flags; csd_unlock() is an exchange on the same word, so one of them comes
//    first in its modification order: either the waiter's CAS fails (already
//    released) or csd_unlock() sees kSleeper and wakes it.
//  - Host waiters additionally run the doorbell handshake (doorbell.hpp):
//    csd_unlock() stores flags=0, fences (seq_cst), loads host_state; the host
//    stores host_state=sleeping, fences (seq_cst), loads flags. Each fence
//    pairs with the other.
#include "csd_ops.hpp"
#include "deadline.hpp"
#include "domain_impl.hpp"
#include "doorbell.hpp"
#include "barriers.hpp"
#include "futex.hpp"
#include "nudge.hpp"
#include "stall_watch.hpp"
#include "thread_context.hpp"

namespace xcall::detail {
namespace {

using clock = std::chrono::steady_clock;

/// Announces that the waiter will sleep. Returns the flags value it left
/// (the value to sleep on), or 0 if the descriptor was released meanwhile.
/// `waiter` is 0 for a futex sleeper, CPU+1 for a host.
std::uint32_t mark_sleeper(call_single_data& csd, std::uint32_t waiter) noexcept {
  std::atomic<std::uint32_t>& flags = csd_ops::flags(csd);
  std::uint32_t old = flags.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & csd_ops::kLocked) == 0) return 0;
    const std::uint32_t marked = old | csd_ops::kSleeper | (waiter << csd_ops::kWaiterShift);
    if (old == marked) return marked;
    // relaxed: the hand-off needs only the single modification order of
    // flags (see the file comment); data comes with the final acquire load.
    if (flags.compare_exchange_weak(old, marked, std::memory_order_relaxed,
                                    std::memory_order_relaxed)) {
      return marked;
    }
  }
}

/// Outside waiter: sleep on the descriptor's own flags word. The futex
/// sleeps only while flags still holds the marked value, so a release
/// between the mark and the sleep makes the sleep return at once.
void sleep_on_flags(call_single_data& csd, stall_watch& watch, target_nudge& nudge) noexcept {
  while (const std::uint32_t marked = mark_sleeper(csd, 0)) {
    // A proxy waiting on another domain's call naps (nudge.budget()) and
    // runs the calls of the CPUs it holds between naps.
    futex_wait(&csd_ops::flags(csd), marked, shorter(watch.budget(), nudge.budget()));
    drain_held(this_thread_context());
    watch.check();
    nudge.tick();
  }
}

}  // namespace

bool domain_impl::spin_until_unlocked(call_single_data& csd, cpu_state* self, target_nudge& nudge,
                                      std::chrono::nanoseconds spin) noexcept {
  thread_context& ctx = this_thread_context();
  // The first 64 turns read no clock: a call that completes within them (a
  // polling target) pays nothing for the spin limit or the watchdog.
  clock::time_point spin_end{};
  for (unsigned i = 1;; ++i) {
    drain_acting(ctx, self);
    if (!csd_ops::is_locked(csd)) return true;
    // A parked target will not come back soon: run its calls at once.
    if (i == 1 || i % 64 == 0) nudge.help();
    cpu_relax();
    if (i % 64 != 0) continue;
    const auto now = clock::now();
    if (i == 64) {
      spin_end = deadline_after(now, spin);
    } else if (now >= spin_end) {
      return false;
    }
  }
}

void domain_impl::sleep_until_unlocked(call_single_data& csd, cpu_state& self, stall_watch& watch,
                                       target_nudge& nudge) noexcept {
  thread_context& ctx = this_thread_context();
  const std::uint32_t resume = self.host_state.load(std::memory_order_relaxed);
  while (mark_sleeper(csd, self.id + 1) != 0) {
    host_sleep(
        self, [&] { return self.has_calls() || !csd_ops::is_locked(csd); },
        shorter(watch.budget(), nudge.budget()), resume);
    drain_acting(ctx, &self);
    watch.check();
    nudge.tick();
  }
}

void domain_impl::csd_lock_wait(call_single_data& csd, const cpumask* owing) noexcept {
  csd_lock_wait(csd, owing, options_.idle_spin);
}

void domain_impl::csd_lock_wait(call_single_data& csd, const cpumask* owing,
                                std::chrono::nanoseconds spin) noexcept {
  if (!csd_ops::is_locked(csd)) return;
  doorbell_mask mask;  // the handler stays out of the state this wait uses
  cpu_state* const self = drainable_self();
  const bool polled = self != nullptr && enter_polling(*self);
  target_nudge nudge(*this, csd, owing);
  if (!spin_until_unlocked(csd, self, nudge, spin)) {
    stall_watch watch(*this, csd);
    if (self == nullptr) {
      sleep_on_flags(csd, watch, nudge);
    } else {
      sleep_until_unlocked(csd, *self, watch, nudge);
    }
  }
  // Calls that came while senders saw "polling" run at the mask's end.
  if (polled && leave_polling(*self)) {
    this_thread_context().doorbell_pending.store(true, std::memory_order_relaxed);
  }
  // acquire: pairs with csd_unlock(); the sleep loops above read flags relaxed.
  (void)csd_ops::is_locked(csd);
}

void domain_impl::csd_lock(call_single_data& csd, bool sync, const cpumask* owing) noexcept {
  csd_lock_wait(csd, owing);
  csd_ops::lock(csd, sync);
}

void domain_impl::csd_unlock(call_single_data& csd) noexcept {
  // Taken before the release: afterwards the descriptor may be gone.
  const void* const flags_word = &csd_ops::flags(csd);
  const std::uint32_t old = csd_ops::unlock(csd);
  if ((old & csd_ops::kSleeper) == 0) return;
  const std::uint32_t waiter = old >> csd_ops::kWaiterShift;
  if (waiter == 0) {
    // The owner may already have returned: futex_wake never touches memory.
    futex_wake(flags_word);
    return;
  }
  cpu_state& host = cpus_[waiter - 1];
  // seq_cst fence: orders the release above before the load of host_state  pairs with the fence in
  // host_sleep() (doorbell.hpp).
  store_load_fence();
  if (host.host_state.load(std::memory_order_relaxed) == kHostSleeping) wake_host(host);
}

}  // namespace xcall::detail
