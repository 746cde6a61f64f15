// outside_slots.cpp — where a call finds its caller storage: a host uses its
// own, one per nesting depth; any other thread borrows a slot from the
// domain's pool for the length of the call.
//
// Descriptors in a slot may still be in flight from a previous no-wait call
// when the slot changes hands: the next user waits for each before reuse
// (csd_lock), exactly as a CPU reuses its own.
//
// Ordering:
//  - slot.busy: acquire exchange on borrow, release store on return; they
//    pair so that the next borrower sees the storage the previous one
//    initialised and the descriptors it filled.
//  - A caller that found every slot busy sleeps on slot_returns_: it counts
//    itself in slot_sleepers_, fences (seq_cst), scans; a returner stores
//    busy = false, fences (seq_cst), loads slot_sleepers_ and, if any,
//    bumps slot_returns_ and wakes one. The two fences make at least one
//    side see the other (doorbell.hpp's handshake); the futex re-checks
//    slot_returns_ atomically with queuing the sleeper.
#include <functional>
#include <thread>

#include "barriers.hpp"
#include "caller_scope.hpp"
#include "domain_impl.hpp"
#include "error.hpp"
#include "futex.hpp"
#include "thread_context.hpp"

namespace xcall::detail {

cpu_t outside_slot_count(cpu_t nr_cpus) noexcept {
  const cpu_t hw = std::thread::hardware_concurrency();
  const cpu_t wanted = 4 * (hw == 0 ? 1 : hw) + nr_cpus;
  return wanted < 16 ? 16 : (wanted > 1024 ? 1024 : wanted);
}

outside_slot* domain_impl::try_acquire_slot(cpu_t& hint) noexcept {
  for (cpu_t i = 0; i < nr_slots_; ++i) {
    const cpu_t index = (hint + i) % nr_slots_;
    // relaxed peek first: a full pool costs loads, not a line bounced per slot.
    if (slots_[index].busy.load(std::memory_order_relaxed)) continue;
    // acquire: pairs with the release in release_slot().
    if (!slots_[index].busy.exchange(true, std::memory_order_acquire)) {
      hint = index;
      return &slots_[index];
    }
  }
  return nullptr;
}

outside_slot& domain_impl::acquire_slot() noexcept {
  // Each thread starts where it succeeded last, so a steady caller keeps its
  // slot (and its already allocated storage) without contention.
  thread_local cpu_t hint =
      static_cast<cpu_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  if (outside_slot* slot = try_acquire_slot(hint)) return *slot;
  // More concurrent outside callers than slots: sleep until one comes back.
  slot_sleepers_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    const std::uint32_t returns = slot_returns_.load(std::memory_order_relaxed);
    // seq_cst fence: orders the sleeper count above before the scan's loads
    // of busy; pairs with the fence in release_slot(). Either the releaser
    // sees us counted and bumps slot_returns_ (our futex_wait then returns
    // at once or is woken), or we see its slot free.
    store_load_fence();
    if (outside_slot* slot = try_acquire_slot(hint)) {
      slot_sleepers_.fetch_sub(1, std::memory_order_relaxed);
      return *slot;
    }
    futex_wait(&slot_returns_, returns);
  }
}

void domain_impl::release_slot(outside_slot& slot) noexcept {
  // release: pairs with the acquire in try_acquire_slot().
  slot.busy.store(false, std::memory_order_release);
  // seq_cst fence: orders the store above before the load of the sleeper
  // count; pairs with the fence in acquire_slot().
  store_load_fence();
  if (slot_sleepers_.load(std::memory_order_relaxed) == 0) return;
  slot_returns_.fetch_add(1, std::memory_order_relaxed);
  futex_wake(&slot_returns_, 1);
}

caller_storage* domain_impl::storage_at(std::vector<std::unique_ptr<caller_storage>>& stack,
                                        unsigned depth) noexcept {
  while (stack.size() <= depth) {
    std::unique_ptr<caller_storage> st = try_make<caller_storage>(nr_cpu_ids());
    if (!st) return nullptr;
    try {
      stack.push_back(std::move(st));
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  return stack[depth].get();
}

caller_scope::caller_scope(domain_impl& dom) noexcept : dom_(dom) {
  const thread_context& ctx = this_thread_context();
  cpu_state* const host = ctx.current();
  if (host != nullptr && host->dom == &dom) {
    // The depth is the CPU's, not the thread's: a proxy continues the
    // parked host's nesting.
    use_stack(dom, host->storage, host->call_depth, ctx.irqs_off());
    return;
  }
  if (ctx.parked != nullptr && ctx.parked->dom == &dom) {
    // A parked host calls as an outside caller, but from storage of its own:
    // it may be running, further down its stack, a function of a call from
    // an outside slot (a classic block stays in flight while its functions
    // run), and the callers holding the slots may be waiting for its CPU.
    use_stack(dom, ctx.parked->parked_storage, ctx.parked->parked_depth, ctx.irqs_off());
    return;
  }
  // An outside thread runs no calls of its own: waiting for its slot's
  // earlier calls is safe even inside an irq_guard.
  slot_ = &dom.acquire_slot();
  if (!slot_->storage) slot_->storage = try_make<caller_storage>(dom.nr_cpu_ids());
  storage_ = slot_->storage.get();
  if (storage_ == nullptr) {
    dom.release_slot(*slot_);
    slot_ = nullptr;
    error_ = err(std::errc::not_enough_memory);
  }
}

void caller_scope::use_stack(domain_impl& dom, storage_stack& stack, unsigned& depth_now,
                             bool guarded) noexcept {
  // Counted only once the storage is there.
  const unsigned first = depth_now;
  caller_storage* const base = dom.storage_at(stack, first);
  if (base == nullptr) {
    error_ = err(std::errc::not_enough_memory);
    return;
  }
  caller_storage* chosen = base;
  unsigned depth = first;
  // Waiting for our earlier calls is safe while they are only queued (their
  // targets take them at any drain) and we run our own calls meanwhile.
  // It is not when a classic block's functions are running (one may be
  // waiting for a function below us), nor inside an irq_guard. Then give
  // the earlier call a grace period (most finish within moments: a steady
  // caller keeps to the storage it has and allocates nothing), and take a
  // spare if it is still in flight.
  const bool may_cycle = guarded || base->classic.in_flight();
  if (may_cycle && !dom.await_idle(*base, guarded)) {
    chosen = nullptr;
    for (unsigned d = first + 1; d <= first + kSpareDepths; ++d) {
      caller_storage* const st = dom.storage_at(stack, d);
      if (st == nullptr) {
        error_ = err(std::errc::not_enough_memory);
        return;
      }
      if (st->idle()) {
        chosen = st;
        depth = d;
        break;
      }
    }
  }
  if (chosen == nullptr) {
    // Every spare is still in flight: wait for the first (backpressure, as
    // the kernel's csd_lock), unless we cannot run our calls meanwhile.
    if (guarded) {
      error_ = err(std::errc::resource_deadlock_would_occur);
      return;
    }
    chosen = base;
  }
  storage_ = chosen;
  depth_ = &depth_now;
  saved_depth_ = first;
  depth_now = depth + 1;
}

bool domain_impl::await_idle(const caller_storage& st, bool guarded) noexcept {
  using clock = std::chrono::steady_clock;
  thread_context& ctx = this_thread_context();
  cpu_state* const self = guarded ? nullptr : drainable_self();
  clock::time_point end{};
  for (unsigned i = 1; !st.idle(); ++i) {
    if (self != nullptr) {
      drain_acting(ctx, self);
    }
    cpu_relax();
    if (i % 64 != 0) continue;  // read the clock only now and then
    const auto now = clock::now();
    if (i == 64) {
      end = now + kStorageGrace;
    } else if (now >= end) {
      return false;
    }
  }
  return true;
}

caller_scope::~caller_scope() {
  if (slot_ != nullptr) {
    dom_.release_slot(*slot_);
  } else if (depth_ != nullptr) {
    *depth_ = saved_depth_;
  }
}

}  // namespace xcall::detail
