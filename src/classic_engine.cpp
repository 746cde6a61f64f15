// classic_engine.cpp — multi-CPU calls the Linux 2.6.38–3.8 way: one call
// block per caller on one global list, a live cpumask of the CPUs that still
// owe a run and an atomic refs count; the last handler removes the block and
// unlocks it. Kept faithful, barrier for barrier, because it is the design
// the seed commit fixed and the yardstick of the percpu engine.
//
// State: classic_engine.hpp. Ordering: classic_engine.hpp lists every
// edge of the list and the blocks. Two more:
//  - classic_ipi.pending: the caller's exchange(true) (acq_rel) after publishing
//    the block pairs with the handler's exchange(false) (acq_rel) before its
//    walk, standing in for the kernel's IPI and the smp_mb() that opens the
//    handler: a handler that consumed the flag sees the published block.
//  - hotplug: a caller holds classic_->hotplug shared from the snapshot of the
//    online mask until refs is published; a dying CPU clears its online bit,
//    then takes it exclusively once before its last walk, so every block
//    that still names it is complete when it walks (the kernel got this from
//    stop_machine). The lock prefers the writer (writer_first_rwlock.hpp):
//    a stream of callers cannot starve the dying CPU.
#include <chrono>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "csd_ops.hpp"
#include "doorbell.hpp"
#include "fan_out_doorbell.hpp"
#include "domain_impl.hpp"
#include "error.hpp"
#include "fault_injection.hpp"
#include "trace.hpp"

namespace xcall::detail {

std::error_code domain_impl::classic_queue_many(caller_storage& st, const cpumask& mask, cpu_t self,
                                                call_func_t func, void* info, bool wait) {
  st.classic.queued = false;
  // Fast path: exactly one other online CPU in the mask -> a single call.
  cpu_t cpu = first_and(mask, online_);
  if (cpu == self) cpu = next_and(cpu, mask, online_);
  if (cpu >= nr_cpu_ids()) return {};
  cpu_t next = next_and(cpu, mask, online_);
  if (next == self) next = next_and(next, mask, online_);
  if (next >= nr_cpu_ids()) {
    // One target: a single call (ENXIO if it just went offline: nothing to
    // run). A no-wait one goes through the storage we hold: borrowing a
    // second outside slot while holding one deadlocks a crowd of callers.
    const std::error_code ec = wait || XCALL_FAULT(borrow_second_slot)
                                   ? call_single(cpu, func, info, wait)
                                   : call_single_nowait(st, cpu, func, info);
    return ec == std::errc::not_enough_memory ? ec : std::error_code();
  }
  if (const unsigned us = XCALL_FAULT_PARAM(widen_mask_window)) {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
  call_block* const block = st.classic.block(nr_cpu_ids());
  if (block == nullptr) return err(std::errc::not_enough_memory);
  call_block& b = *block;
  csd_lock(b.csd, wait, &b.cpumask);  // the block's previous call is complete
  b.csd.func = func;                  // the owner's copy, for stall reports
  b.csd.info = info;
  // "refs = 0 locally", func and info: relaxed; the release stores of the
  // mask below are the kernel's smp_wmb() (classic_engine.hpp).
  b.refs.store(0, std::memory_order_relaxed);
  b.func.store(func, std::memory_order_relaxed);
  b.info.store(info, std::memory_order_relaxed);
  std::shared_lock<writer_first_rwlock> hotplug(classic_->hotplug);
  b.cpumask.assign_and(mask, online_);
  if (self != no_cpu) b.cpumask.reset(self);
  const int refs = static_cast<int>(b.cpumask.count());
  csd_ops::set_target(b.csd, refs != 0 ? b.cpumask.first() : no_cpu);
  // The seed's fix (docs/design.md#the-seed): other CPUs may have cleared
  // the caller's mask since the fast path looked at it; a block with no
  // target must not be queued, or nobody would ever unlock it and the next
  // csd_lock would spin forever.
  if (refs == 0 && !XCALL_FAULT(skip_seed_fix)) {
    csd_ops::unlock_unqueued(b.csd);
    return {};
  }
  XCALL_TRACE_CSD_QUEUE_MASK(b.cpumask, func, &b.csd);  // before publication, as the kernel
  {
    std::lock_guard<std::mutex> list_lock(classic_->list.lock());
    classic_->list.add_head(b);  // at the head: walkers revisit, never skip
    // release: refs only after the add (else a fast handler could delete a
    // block not yet on the list); pairs with the acquire in classic_walk().
    b.refs.store(refs, std::memory_order_release);
  }
  hotplug.unlock();
  st.classic.queued = true;
  // The "IPI" to every CPU still in the live mask (it may be empty already:
  // handlers can run and clear their bits first — guarantee 5), rung after
  // the last flag through the wake tree (fan_out_doorbell.hpp).
  fan_out_doorbell doorbells(*this, st.ring_mask());
  for (cpu_t c : b.cpumask) {
    // acq_rel: publishes the block to the handler that consumes the flag;
    // pairs with the exchange in classic_take_pending().
    if (!cpus_[c].classic_ipi.pending.exchange(true, std::memory_order_acq_rel)) {
      doorbells.note(c);
    }
  }
  doorbells.ring();
  if (!wait) {  // a waiting caller proxies in its wait
    for (cpu_t c : b.cpumask) help_parked(cpus_[c]);
  }
  return {};
}

void domain_impl::classic_wait_many(caller_storage& st) {
  if (!st.classic.queued) return;
  call_block& b = *st.classic.block(nr_cpu_ids());  // made by classic_queue_many()
  csd_lock_wait(b.csd, &b.cpumask);
}

bool domain_impl::classic_take_pending(cpu_state& c) noexcept {
  // relaxed peek first: the percpu engine never sets the flag, and an idle
  // classic CPU should not write the line on every poll.
  if (!c.classic_ipi.pending.load(std::memory_order_relaxed)) return false;
  // acq_rel: pairs with the caller's exchange(true) in classic_queue_many().
  return c.classic_ipi.pending.exchange(false, std::memory_order_acq_rel);
}

unsigned domain_impl::classic_walk(cpu_state& c) noexcept {
  unsigned ran = 0;
  ++c.classic.walking;
  const call_function_list& list = classic_->list;
  for (list_node* n = list.first(); !list.is_end(n); n = call_function_list::next(n)) {
    call_block& b = static_cast<call_block&>(*n);
    if (!b.cpumask.test(c.id)) continue;  // acquire: pairs with the mask's release stores
    // acquire (the kernel's smp_rmb): pairs with the release store of refs.
    if (b.refs.load(std::memory_order_acquire) == 0) continue;  // not ready, or being reused
    const call_func_t func = b.func.load(std::memory_order_relaxed);
    void* const info = b.info.load(std::memory_order_relaxed);
    // Our bit goes before the run, not after it as in the kernel, whose
    // handlers never nest: a function that waits (or polls) drains this CPU
    // again, and the nested walk must not find the call still owed. The
    // block stays in flight (refs counts us) until the decrement below.
    const bool after_run = XCALL_FAULT(clear_after_run);
    if (!after_run && !claim_run(b, c)) continue;
    XCALL_TRACE_CSD_ENTRY(func, &b.csd, c.id);
    run_block_func(c, func, info);
    XCALL_TRACE_CSD_EXIT(func, &b.csd, c.id);
    ++ran;
    if (after_run && !claim_run(b, c)) continue;
    // acq_rel: the last decrement sees every other handler's run.
    if (b.refs.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
    {
      std::lock_guard<std::mutex> list_lock(classic_->list.lock());
      classic_->list.remove(b);
    }
    csd_unlock(b.csd);  // the owner may reuse the block at once
  }
  --c.classic.walking;
  return ran;
}

bool domain_impl::claim_run(call_block& b, cpu_state& c) noexcept {
  if (b.cpumask.test_and_reset(c.id)) return true;
  std::fprintf(stderr, "xcall: classic engine: CPU %u ran a call twice\n", c.id);
  return false;
}

void domain_impl::run_block_func(cpu_state& c, call_func_t func, void* info) noexcept {
  const call_func_t outer = c.running.load(std::memory_order_relaxed);
  c.running.store(func, std::memory_order_relaxed);
  func(info);
  c.running.store(outer, std::memory_order_relaxed);
  bump(c.counters.calls_run);
}

void domain_impl::classic_cpu_dying(cpu_state& c) noexcept {
  // Wait out every caller that may have snapshotted this CPU as online; the
  // walk that follows (finish_offline) then finds every block naming it.
  { std::lock_guard<writer_first_rwlock> barrier(classic_->hotplug); }
  c.classic_ipi.pending.store(false, std::memory_order_relaxed);  // walking anyway
}

}  // namespace xcall::detail
